"""The short-lived photo links dispatch signs and intake checks (pure)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from shared.media.links import link_valid, media_link

KEY = bytes(range(32))
PHOTO = "ab" * 32


def _parts(link: str) -> tuple[str, str, str]:
    url = urlsplit(link)
    q = parse_qs(url.query)
    return url.path.rsplit("/", 1)[1], q["exp"][0], q["sig"][0]


def test_a_link_is_valid_until_it_expires() -> None:
    link = media_link("https://wangge.example.gov.cn/intake/", KEY, PHOTO, 1_000)
    assert link.startswith("https://wangge.example.gov.cn/intake/media/" + PHOTO + "?exp=1000&sig=")
    photo, exp, sig = _parts(link)
    assert link_valid(KEY, photo, exp, sig, now=999)
    assert link_valid(KEY, photo, exp, sig, now=1_000)
    assert not link_valid(KEY, photo, exp, sig, now=1_001)


def test_a_link_is_bound_to_its_photo_expiry_and_key() -> None:
    photo, exp, sig = _parts(media_link(None, KEY, PHOTO, 5_000))
    assert media_link(None, KEY, PHOTO, 5_000).startswith("/media/")
    assert not link_valid(KEY, "cd" * 32, exp, sig, now=0)
    assert not link_valid(KEY, photo, "5001", sig, now=0)
    assert not link_valid(bytes(32), photo, exp, sig, now=0)
    assert not link_valid(KEY, photo, exp, sig[:-1] + ("A" if sig[-1] != "A" else "B"), now=0)
    for bad_exp in ("", "-1", "1e9", "９９９"):
        assert not link_valid(KEY, photo, bad_exp, sig, now=0)
    assert not link_valid(KEY, "../etc/passwd", exp, sig, now=0)
    assert not link_valid(KEY, photo, exp, "\udcff" * 22, now=0)
