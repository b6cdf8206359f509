"""The follow-up request events (pure): what ``feedback.requested`` carries for one reporter.

Version 2 (``FeedbackRequestedV2``) seals the rating token, and the case's status token, for the
notifier (``shared.contract.notify``); version 1 (``FeedbackRequested``, the token in clear) is
published beside it only while the operator opts in (``WANGGE_FEEDBACK_REQUESTED_V1``, the
transition of docs/feedback.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.contract.events import FeedbackRequested, FeedbackRequestedV2, Message
from shared.contract.links import RATING_PATH, STATUS_PATH, status_token, url_template
from shared.contract.notify import seal

from .keys import FeedbackKeys


@dataclass(frozen=True)
class FollowUpRequests:
    keys: FeedbackKeys = field(repr=False)
    public_url: str | None = None  # WANGGE_PUBLIC_FEEDBACK_URL
    emit_v1: bool = False  # WANGGE_FEEDBACK_REQUESTED_V1

    def events(
        self,
        *,
        case_id: str,
        reporter_ref: str,
        channel: str,
        rating_token: str,
        expires_at: datetime,
        round: int,
    ) -> list[Message]:
        """The request to one reporter: v2, and v1 after it when opted in."""
        sealed = seal(
            self.keys.notify,
            {
                "rating_token": rating_token,
                "status_token": status_token(self.keys.link, case_id),
            },
            case_id=case_id,
            round=round,
            reporter_ref=reporter_ref,
        )
        out: list[Message] = [
            FeedbackRequestedV2(
                case_id=case_id,
                reporter_ref=reporter_ref,
                channel=channel,
                expires_at=expires_at,
                round=round,
                sealed_links=sealed,
                rating_url=url_template(self.public_url, RATING_PATH),
                status_url=url_template(self.public_url, STATUS_PATH),
            )
        ]
        if self.emit_v1:
            out.append(
                FeedbackRequested(
                    case_id=case_id,
                    reporter_ref=reporter_ref,
                    channel=channel,
                    rating_token=rating_token,
                    expires_at=expires_at,
                    round=round,
                )
            )
        return out
