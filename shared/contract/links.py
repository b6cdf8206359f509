"""The residents' links (pure): the rating page and the case's status page, and the status token.

A resident gets two links, both served by feedback (``WANGGE_PUBLIC_FEEDBACK_URL`` is where they
point; relative without it):

- ``/r/{rating_token}``: the rating page of one follow-up request (回访). The token is random,
  single use, and reaches the resident only sealed for the notifier (``shared.contract.notify``).
- ``/s/{status_token}``: the case's status, without personal data, for as long as the case
  exists. The status token is the case id and a MAC over it: anyone holding ``WANGGE_LINK_KEY``
  (intake, which answers a report with the link, and feedback, which serves the page and puts the
  link in its follow-up requests) derives it from the case id alone, with no shared state, and
  nobody without the key can make one for another case id:

      status_token = case_id + "." + base64url(HMAC-SHA256(link_key, STATUS_LABEL + case_id)[:16])

  (base64url without padding: 22 characters; 128 bits of MAC). A token is checked in constant
  time. Changing ``WANGGE_LINK_KEY`` invalidates every status link given out before.
"""

from __future__ import annotations

import hashlib
import hmac

from shared.contract.keys import b64url

RATING_PATH = "/r/{rating_token}"
STATUS_PATH = "/s/{status_token}"
STATUS_LABEL = b"wangge/status-link/v1\n"
MAC_BYTES = 16
_MAC_CHARS = 22  # base64url of 16 bytes, unpadded
MAX_CASE_ID = 128


def status_token(key: bytes, case_id: str) -> str:
    """The status token of ``case_id`` under the link key."""
    return f"{case_id}.{_mac(key, case_id)}"


def case_of_status_token(key: bytes, token: str) -> str | None:
    """The case id a status token stands for, or None when it was not made with ``key`` (a
    guessed, tampered or truncated token)."""
    case_id, dot, mac = token.rpartition(".")
    if not dot or not case_id or len(case_id) > MAX_CASE_ID or len(mac) != _MAC_CHARS:
        return None
    if not hmac.compare_digest(mac.encode(), _mac(key, case_id).encode()):
        return None
    return case_id


def rating_url(base: str | None, rating_token: str) -> str:
    return url_template(base, RATING_PATH).replace("{rating_token}", rating_token)


def status_url(base: str | None, token: str) -> str:
    return url_template(base, STATUS_PATH).replace("{status_token}", token)


def url_template(base: str | None, path: str) -> str:
    """``path`` under ``base`` (``WANGGE_PUBLIC_FEEDBACK_URL``), e.g.
    ``https://wangge.example.gov.cn/feedback/r/{rating_token}``; the path alone without one."""
    return f"{(base or '').rstrip('/')}{path}"


def _mac(key: bytes, case_id: str) -> str:
    digest = hmac.new(key, STATUS_LABEL + case_id.encode(), hashlib.sha256).digest()
    return b64url(digest[:MAC_BYTES])
