"""Feedback's keys, read from the settings once at start: a missing or malformed one stops the
service with one line naming the variable (``shared.runtime.service.run``: exit 2).

- ``WANGGE_NOTIFY_KEY`` seals the residents' tokens in ``feedback.requested`` for the notifier
  (``shared.contract.notify``); the rating form's nonces are MACs under a key derived from it.
- ``WANGGE_LINK_KEY`` makes and checks the cases' status links (``shared.contract.links``),
  shared with intake.

Feedback does not start without both: a follow-up request it could not seal would either carry
the token in clear (the leak the sealing ends) or reach no resident.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.contract.keys import KeyFormatError, parse_key, subkey
from shared.contract.notify import NotifyKey
from shared.runtime.settings import ConfigurationError, Settings

FORM_LABEL = b"wangge/rating-form/v1"


class FeedbackKeyError(ConfigurationError):
    """A key feedback needs is missing or malformed (the message never contains it)."""


@dataclass(frozen=True)
class FeedbackKeys:
    notify: NotifyKey = field(repr=False)
    link: bytes = field(repr=False)
    form: bytes = field(repr=False)  # the rating form's nonces

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackKeys:
        notify = _secret(settings.notify_key)
        link = _secret(settings.link_key)
        try:
            raw_notify = parse_key(notify, "WANGGE_NOTIFY_KEY")
            raw_link = parse_key(link, "WANGGE_LINK_KEY")
        except KeyFormatError as exc:
            raise FeedbackKeyError(str(exc)) from None
        return cls(NotifyKey.from_raw(raw_notify), raw_link, subkey(raw_notify, FORM_LABEL))


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return get() if callable(get) else None
