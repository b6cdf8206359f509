"""The tier decision and its rules file (pure)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.dispatch.tiers import (
    CaseFacts,
    DispatchRules,
    decide_tier,
    higher,
    load_rules,
    next_tier,
    parse_duration,
)
from shared.contract.events import Tier

RULES = load_rules()


def decide(
    default: Tier = "grid",
    *,
    category: str = "sanitation",
    households_affected: int | None = None,
    supporter_count: int = 1,
    urgent: bool = False,
) -> tuple[Tier, list[str], timedelta | None]:
    facts = CaseFacts(category, households_affected, supporter_count, urgent)
    d = decide_tier(default, facts, RULES)
    return d.tier, d.reasons, d.respond_within


def test_category_default_when_no_rule_fires() -> None:
    tier, reasons, within = decide("grid", households_affected=3, supporter_count=2)
    assert (tier, reasons, within) == ("grid", ["category default: grid"], None)


@pytest.mark.parametrize(
    ("default", "households", "expected"),
    [
        ("grid", 9, "grid"),
        ("grid", 10, "community"),
        ("grid", 99, "community"),
        ("grid", 100, "street"),
        ("community", 50, "community"),
        ("street", 12, "street"),
        ("district", 500, "district"),
        ("community", 100, "street"),
    ],
)
def test_households_raise_the_tier(default: Tier, households: int, expected: str) -> None:
    assert decide(default, households_affected=households)[0] == expected


def test_rules_never_lower_a_tier_and_list_only_what_raised() -> None:
    tier, reasons, _ = decide("street", households_affected=150)
    assert tier == "street" and reasons == ["category default: street"]
    tier, reasons, _ = decide("grid", households_affected=150)
    assert tier == "street"
    assert reasons[1:] == [
        "households_affected >= 10: at least community",
        "households_affected >= 100: at least street",
    ]


@pytest.mark.parametrize(
    ("supporters", "expected"), [(4, "grid"), (5, "community"), (9, "community")]
)
def test_merged_reports_raise_to_community(supporters: int, expected: str) -> None:
    assert decide("grid", supporter_count=supporters)[0] == expected


def test_urgent_and_safety_hazard_shorten_the_response() -> None:
    assert decide("grid", urgent=True)[2] == timedelta(minutes=30)
    tier, reasons, within = decide("community", category="safety_hazard")
    assert tier == "community" and within == timedelta(minutes=30)
    assert "safety hazard: respond within 30 minutes" in reasons
    assert decide("grid", urgent=False, category="noise")[2] is None


def test_default_sla_per_tier() -> None:
    assert RULES.sla["grid"].respond.span == timedelta(hours=2)
    assert RULES.sla["grid"].resolve.span == timedelta(hours=24)
    assert RULES.sla["community"].resolve.span == timedelta(days=3)
    assert RULES.sla["street"].respond.span == timedelta(hours=8)
    assert RULES.sla["district"].resolve.span == timedelta(days=15)


def test_a_rules_file_overrides_the_default(tmp_path: Path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text(
        """
rules:
  - when: {supporter_count_at_least: 3, category_in: [noise]}
    min_tier: street
sla:
  grid: {respond: 1h, resolve: 12h}
  community: {respond: PT2H, resolve: 2d}
  street: {respond: 3600, resolve: 5d}
  district: {respond: 1d, resolve: 10d}
""",
        encoding="utf-8",
    )
    rules = load_rules(f)
    d = decide_tier("grid", CaseFacts("noise", supporter_count=3), rules)
    assert d.tier == "street"
    assert d.reasons[1] == "supporter_count_at_least=3, category_in=['noise']: at least street"
    assert decide_tier("grid", CaseFacts("sanitation", supporter_count=3), rules).tier == "grid"
    assert rules.sla["community"].respond.span == timedelta(hours=2)
    assert rules.sla["street"].respond.span == timedelta(hours=1)


@pytest.mark.parametrize(
    "bad",
    [
        {"rules": [{"when": {}, "min_tier": "street"}], "sla": RULES.model_dump()["sla"]},
        {"rules": [{"when": {"urgent": True}}], "sla": RULES.model_dump()["sla"]},
        {
            "rules": [{"when": {"colour": "red"}, "min_tier": "grid"}],
            "sla": RULES.model_dump()["sla"],
        },
        {"rules": [], "sla": {"grid": {"respond": "2h", "resolve": "1d"}}},
        {
            "rules": [{"when": {"urgent": True}, "min_tier": "city"}],
            "sla": RULES.model_dump()["sla"],
        },
    ],
)
def test_a_bad_rules_file_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DispatchRules.model_validate(bad)


def test_durations_and_tier_helpers() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration(90) == timedelta(seconds=90)
    assert parse_duration("P1D") == "P1D"  # left to pydantic
    assert next_tier("grid") == "community" and next_tier("district") is None
    assert higher("grid", "street") == "street" and higher("district", "street") == "district"
