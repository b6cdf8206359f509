"""Deadlines (pure): per tier, scaled, shortened by rules, overridden by a category's SLA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.dispatch.sla import SlaPolicy, extend
from services.dispatch.tiers import load_rules
from shared.contract.taxonomy import SlaOverride

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
POLICY = SlaPolicy(load_rules())


def test_tier_defaults() -> None:
    for tier, respond, resolve in (
        ("grid", timedelta(hours=2), timedelta(hours=24)),
        ("community", timedelta(hours=4), timedelta(days=3)),
        ("street", timedelta(hours=8), timedelta(days=7)),
        ("district", timedelta(hours=24), timedelta(days=15)),
    ):
        dl = POLICY.deadlines(tier, T0)  # type: ignore[arg-type]
        assert (dl.respond_by - T0, dl.resolve_by - T0) == (respond, resolve)


def test_scale_multiplies_every_duration() -> None:
    fast = SlaPolicy(load_rules(), scale=1 / 3600)  # an hour becomes a second
    dl = fast.deadlines("grid", T0, respond_within=timedelta(minutes=30))
    assert dl.respond_by - T0 == timedelta(seconds=0.5)
    assert dl.resolve_by - T0 == timedelta(seconds=24)


def test_rule_only_shortens_the_response() -> None:
    assert POLICY.deadlines("grid", T0, respond_within=timedelta(minutes=30)).respond_by == (
        T0 + timedelta(minutes=30)
    )
    assert POLICY.deadlines("grid", T0, respond_within=timedelta(hours=5)).respond_by == (
        T0 + timedelta(hours=2)
    )
    # the resolution deadline is untouched
    assert POLICY.deadlines("grid", T0, respond_within=timedelta(minutes=30)).resolve_by == (
        T0 + timedelta(hours=24)
    )


def test_category_sla_replaces_the_tier_default() -> None:
    override = SlaOverride(resolve=timedelta(hours=6))
    dl = POLICY.deadlines("grid", T0, category_sla=override)
    assert dl.respond_by == T0 + timedelta(hours=2)
    assert dl.resolve_by == T0 + timedelta(hours=6)


def test_pause_extends_a_deadline() -> None:
    assert extend(T0, timedelta(days=2)) == T0 + timedelta(days=2)
    assert extend(T0, timedelta(seconds=-5)) == T0
    assert extend(None, timedelta(days=1)) is None
