"""插花地 in dispatch (pure): a case located in a building served by another community is routed,
escalated, verified and approved along the serving chain; the administrative chain is kept beside
it, reads the case and acts on nothing.

The sample city's 钢都花园8栋 (QS-HWL-GDHY-G01-B08) belongs to 青山区 and is served by 武昌区's
和平苑社区 (WC-YY-HPY), in whose grid WC-YY-HPY-G01 it stands."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.dispatch.assignment import Dept, Location, route
from services.dispatch.model import Case
from services.dispatch.planning import opened_case
from services.dispatch.states import (
    Actor,
    approver_of,
    authorization_refusal,
    verifier_of,
)
from services.dispatch.tiers import CaseFacts, TierDecision
from shared.contract.events import (
    AdministrativeLocation,
    CaseLocation,
    CaseOpened,
    Classification,
    Tier,
)

B08 = "QS-HWL-GDHY-G01-B08"
SERVED = CaseLocation(
    district="WC",
    street="WC-YY",
    community="WC-YY-HPY",
    grid="WC-YY-HPY-G01",
    building=B08,
    administrative=AdministrativeLocation(
        district="QS", street="QS-HWL", community="QS-HWL-GDHY", grid="QS-HWL-GDHY-G01"
    ),
)
# departments of both chains: the administrative chain's are never chosen
DEPTS = [
    Dept("WC-CGJ", "WC", ("illegal_construction",)),
    Dept("WC-YY-SZ", "WC-YY", ("municipal_facility",)),
    Dept("QS-CGJ", "QS", ("illegal_construction",)),
    Dept("QS-HWL-SZ", "QS-HWL", ("municipal_facility",)),
]
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def opened(location: CaseLocation = SERVED, category: str = "sanitation") -> CaseOpened:
    return CaseOpened(
        case_id="c-0000000001",
        report_ids=["r-1"],
        source="weixin_grid_group",
        opened_at=NOW,
        category=category,
        category_name="环境卫生",
        agency_mode="proxy_petition",
        classification=Classification(method="given", terms=[], confidence=1.0),
        location=location,
        description="楼道垃圾堆了三天",
        reporter_ref="ref-1",
    )


def case_at(tier: Tier, unit: str, location: CaseLocation = SERVED) -> Case:
    return opened_case(
        opened(location),
        CaseFacts("sanitation"),
        TierDecision(tier),
        tier=tier,
        unit=unit,
        handler_id=None,
        state="dispatched",
        reasons=[],
        now=NOW,
    )


def test_the_case_keeps_the_serving_chain_as_its_place_and_the_administrative_beside_it() -> None:
    case = case_at("grid", "WC-YY-HPY-G01")
    assert case.location == Location("WC", "WC-YY", "WC-YY-HPY", "WC-YY-HPY-G01")
    assert case.building == B08
    assert case.administrative == ("QS", "QS-HWL", "QS-HWL-GDHY", "QS-HWL-GDHY-G01")
    ordinary = case_at(
        "grid",
        "WC-YY-OJY-G01",
        CaseLocation(district="WC", street="WC-YY", community="WC-YY-OJY", grid="WC-YY-OJY-G01"),
    )
    assert ordinary.administrative == ()


@pytest.mark.parametrize(
    ("tier", "category", "unit"),
    [
        ("grid", "sanitation", "WC-YY-HPY-G01"),  # the serving community's grid
        ("community", "parking", "WC-YY-HPY"),  # the serving community
        ("street", "municipal_facility", "WC-YY-SZ"),  # the serving street's department
        ("street", "noise", "WC-YY"),  # the serving street office
        ("district", "illegal_construction", "WC-CGJ"),  # the serving district's department
        ("district", "noise", "WC"),
    ],
)
def test_every_tier_routes_along_the_serving_chain(tier: Tier, category: str, unit: str) -> None:
    case = case_at(tier, unit)
    where = route(tier, case.location, category, DEPTS)
    assert where is not None and (where.tier, where.unit) == (tier, unit)


def test_a_served_building_without_a_serving_grid_goes_to_the_serving_community() -> None:
    no_grid = SERVED.model_copy(update={"grid": None})
    where = route("grid", case_at("grid", "WC-YY-HPY", no_grid).location, "sanitation", DEPTS)
    assert where is not None and (where.tier, where.unit) == ("community", "WC-YY-HPY")
    assert where.notes == ["no grid unit left for the case: community"]


def test_verification_and_extensions_stay_with_the_serving_chain() -> None:
    case = case_at("grid", "WC-YY-HPY-G01")
    assert verifier_of("grid", case.codes) == "WC-YY-HPY"
    assert verifier_of("street", case.codes) == "WC-YY-HPY-G01"
    assert approver_of("grid", case.codes) == "WC-YY-HPY"
    assert approver_of("community", case.codes) == "WC-YY"


def test_the_administrative_chain_acts_on_nothing() -> None:
    case = case_at("grid", "WC-YY-HPY-G01")
    serving = Actor("h-0004", "WC-YY-HPY-G01", "grid_worker")
    assert authorization_refusal(serving, case.view, "accept") is None
    for admin in (
        Actor("h-9001", "QS-HWL-GDHY-G01", "grid_worker"),
        Actor("h-9002", "QS-HWL-GDHY", "community_staff"),
        Actor("command_centre.QS", "QS", "command_centre"),
    ):
        for action in ("accept", "transfer", "escalate"):
            assert authorization_refusal(admin, case.view, action) is not None, (admin, action)
    # the serving district's command centre may reassign (改派) it
    centre = Actor("command_centre.WC", "WC", "command_centre")
    assert authorization_refusal(centre, case.view, "transfer") is None
