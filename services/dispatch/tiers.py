"""The tier decision (pure): 小事不出网格、大事不出社区 — start low, raise by the rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.events import TIERS, Tier


def higher(a: Tier, b: Tier) -> Tier:
    return a if TIERS.index(a) >= TIERS.index(b) else b


def next_tier(t: Tier) -> Tier | None:
    i = TIERS.index(t)
    return TIERS[i + 1] if i + 1 < len(TIERS) else None


@dataclass(frozen=True)
class TierDecision:
    tier: Tier
    reasons: list[str] = field(default_factory=list)
    urgent_response: bool = False


def decide_tier(
    default: Tier, *, households: int | None, supporters: int, urgent: bool, category: str
) -> TierDecision:
    tier = default
    reasons = [f"category default: {default}"]
    if households is not None and households >= 100 and TIERS.index(tier) < TIERS.index("street"):
        tier = "street"
        reasons.append("households_affected >= 100: at least street")
    elif households is not None and households >= 10 and tier == "grid":
        tier = "community"
        reasons.append("households_affected >= 10: at least community")
    if supporters >= 5 and tier == "grid":
        tier = "community"
        reasons.append("5 or more merged reports: at least community")
    fast = urgent or category == "safety_hazard"
    if fast:
        reasons.append("urgent or safety hazard: respond within 30 minutes")
    return TierDecision(tier, reasons, fast)
