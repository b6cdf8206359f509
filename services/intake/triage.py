"""Which new cases go to the command centre's triage queue (人工分拨) instead of being dispatched
on the classifier's guess (pure): ``triage_reasons``. Dispatch holds them (services/dispatch/
triage.py); the command centre's decision comes back as ``cases.reclassified``."""

from __future__ import annotations

from shared.contract.events import CaseOpened

LOW_CONFIDENCE = "low_confidence"  # the classifier's probability below the threshold
MODERATION = "moderation"  # words in the text flagged for moderation (审核)


def triage_reasons(case: CaseOpened, min_confidence: float) -> list[str]:
    """Why ``case`` needs a person to decide its category (empty: dispatch it). A category the
    channel gave (``method`` "given") is never doubted."""
    reasons = []
    c = case.classification
    if c.method != "given" and c.confidence < min_confidence:
        reasons.append(LOW_CONFIDENCE)
    if case.moderation:
        reasons.append(MODERATION)
    return reasons
