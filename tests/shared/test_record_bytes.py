"""Header and key checks, the lossless encoding of a dead letter's bytes, and aiokafka reading a
header name that is not UTF-8 (pure: no broker)."""

from __future__ import annotations

import json

from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from hypothesis import given
from hypothesis import strategies as st

from shared.runtime.record_bytes import (
    MAX_HEADERS,
    NAME_MARKER,
    _TolerantMemoryRecords,
    decode_raw,
    encode_raw,
    header_problem,
    text_safe,
)
from tests.shared.raw_records import _RawName

GOOD = [("ce_id", b"e-1"), ("ce_type", b"org.wangge.x.v1"), ("traceparent", b"00-ab-cd-01")]


def test_the_contract_accepts_cloudevents_headers_and_any_bytes_elsewhere() -> None:
    assert header_problem(GOOD, b"C1") is None
    assert header_problem([*GOOD, ("x-bin", b"\x00\xff")], None) is None


def test_the_contract_names_what_is_wrong() -> None:
    cases = {
        "ce_id": header_problem([("ce_id", b"a\x00b")], None),
        "ce_type": header_problem([("ce_type", b"\xff")], None),
        "ce_source": header_problem([("ce_source", None)], None),
        "name": header_problem([("a\udcffb", b"x")], None),
        "NUL name": header_problem([("a\x00", b"x")], None),
        "headers": header_problem([("h", b"")] * (MAX_HEADERS + 1), None),
        "bytes": header_problem([("h", b"x" * 100_000)], None),
        "key": header_problem([], b"k" * 1_000_000),
    }
    for what, problem in cases.items():
        assert problem, what
    assert "ce_id" in (cases["ce_id"] or "")
    assert "1000000" in (cases["key"] or "")


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@given(
    key=st.one_of(st.none(), st.binary(max_size=64)),
    headers=st.lists(
        st.tuples(st.binary(max_size=16).map(_name), st.one_of(st.none(), st.binary(max_size=32))),
        max_size=8,
    ),
)
def test_the_raw_encoding_keeps_every_byte(
    key: bytes | None, headers: list[tuple[str, bytes | None]]
) -> None:
    stored = json.loads(json.dumps(encode_raw(key, headers)))  # as jsonb gives it back
    got_key, got = decode_raw(stored)
    assert got_key == key
    assert [v for _, v in got] == [v for _, v in headers]
    for (name, _), (out, _) in zip(headers, got, strict=True):
        raw = name.encode("utf-8", "surrogateescape")
        try:
            assert out == raw.decode("utf-8")
        except UnicodeDecodeError:
            assert out.startswith(NAME_MARKER)


@given(st.text())
def test_text_safe_is_storable_text(text: str) -> None:
    out = text_safe(text)
    assert "\x00" not in out
    out.encode("utf-8")  # no lone surrogate
    if "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert out == text


def test_a_header_name_that_is_not_utf8_is_read_not_stalled_on() -> None:
    builder = _DefaultRecordBatchBuilderPy(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=100_000,
    )
    builder.append(0, timestamp=None, key=b"k", value=b"v1", headers=[("ok", b"1")])
    builder.append(1, timestamp=None, key=b"k", value=b"v2", headers=[(_RawName(b"\xff\xfe"), b"")])
    data = bytes(builder.build())
    records = _TolerantMemoryRecords(data)
    batch = records.next_batch()
    out = list(batch)
    assert [r.value for r in out] == [b"v1", b"v2"]
    assert out[1].headers[0][0].encode("utf-8", "surrogateescape") == b"\xff\xfe"
    assert header_problem(out[1].headers, None)
    assert not records.has_next()
