"""The simulated workload (pure and seeded): residents' reports, handlers' actions in answer to
``cases.dispatched``, and residents' ratings in answer to ``feedback.requested``.

Reports are JSON bodies of ``shared.events.ReportSubmitted`` (or deliberately invalid ones);
actions and ratings are bodies of ``HandlerAction`` and ``FeedbackSubmitted`` without their ``at``
time, which the driver sets when it sends them. Delays are in simulated seconds; the driver
multiplies them by its time scale.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sim.names import mobile, person
from sim.territory import Building, Territory
from sim.texts import (
    ESCALATE_NOTES,
    PROGRESS_NOTES,
    RATING_COMMENTS,
    RESOLVE_NOTES,
    RETURN_NOTES,
    report_text,
)

# A realistic mix of categories (share of reports), from the kind of figures district 12345
# and grid platforms publish: property, sanitation and parking dominate.
CATEGORY_WEIGHTS: dict[str, float] = {
    "property_repair": 14,
    "sanitation": 12,
    "parking": 10,
    "noise": 8,
    "civility": 7,
    "ebike_charging": 6,
    "neighbor_dispute": 5,
    "municipal_facility": 5,
    "greening": 4,
    "safety_hazard": 4,
    "public_service": 4,
    "consultation": 4,
    "illegal_construction": 3,
    "market_order": 3,
    "welfare": 3,
    "elderly_care": 3,
    "suggestion": 3,
    "owners_committee": 2,
    "elevator_retrofit": 2,
    "legal_petition": 2,
    "demolition": 1,
}
SOURCES: dict[str, float] = {
    "weixin_grid_group": 38,
    "app": 22,
    "hotline_12345": 18,
    "door_knock": 10,
    "visit": 8,
    "suggestion_box": 4,
}
TIER_RESPONSE_MEDIAN_S = {"grid": 1200, "community": 2400, "street": 7200, "district": 14400}
TIER_RESOLVE_MEDIAN_S = {"grid": 6 * 3600, "community": 36 * 3600, "street": 72 * 3600}
TIER_RESOLVE_MEDIAN_S["district"] = 7 * 86400
VERIFY_MEDIAN_S = 2 * 3600  # from a resolve to its verification on site (核查)
INVALID_KINDS = ("empty_description", "bad_phone", "unknown_building", "no_location")


@dataclass(frozen=True)
class Mix:
    """Shares of the report stream (0..1)."""

    urgent: float = 0.05
    duplicate: float = 0.08  # same building and category as a recent report (附议)
    invalid: float = 0.02
    given_category: float = 0.25  # upstream (e.g. 12345) already chose the category
    anonymous: float = 0.05
    # how the location is given (the rest: building_code)
    by_grid_code: float = 0.05
    by_point: float = 0.10
    by_address: float = 0.15

    @classmethod
    def clean(cls) -> Mix:
        """Every report opens a case: no duplicates, no invalid ones (for latency runs)."""
        return cls(duplicate=0.0, invalid=0.0)


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _lognormal(rng: random.Random, median: float, sigma: float = 0.8) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class ReportFactory:
    """Draws reports one at a time; ``kinds`` counts what it drew (new, duplicate, invalid)."""

    territory: Territory
    seed: int = 1
    mix: Mix = field(default_factory=Mix)
    run_tag: str = "sim"
    rng: random.Random = field(init=False)
    kinds: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    _recent: deque[tuple[str, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=500))
    _n: int = 0
    _last_category: str = ""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        if not self.territory.buildings:
            raise ValueError("the territory has no buildings")

    def _report_id(self) -> str:
        self._n += 1
        return f"{self.run_tag}-{self._n:08d}"

    def _reporter(self) -> dict[str, Any]:
        if self.rng.random() < self.mix.anonymous:
            return {"anonymous": True}
        return {"name": person(self.rng), "phone": mobile(self.rng)}

    def _location(self, b: Building) -> dict[str, Any]:
        roll = self.rng.random()
        m = self.mix
        if roll < m.by_grid_code:
            return {"grid_code": b.grid}
        if roll < m.by_grid_code + m.by_point:
            return {"lon": b.lon, "lat": b.lat}
        if roll < m.by_grid_code + m.by_point + m.by_address:
            return {"address": b.address}
        return {"building_code": b.code}

    def next(self) -> tuple[str, dict[str, Any]]:
        """The next report: (Kafka key: the community it is about, JSON body)."""
        roll = self.rng.random()
        if roll < self.mix.invalid:
            return self._invalid()
        if roll < self.mix.invalid + self.mix.duplicate and self._recent:
            return self._duplicate()
        return self._new()

    def _new(self) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        category = _pick(rng, CATEGORY_WEIGHTS)
        b = rng.choice(self.territory.buildings)
        place = b.name.replace("小区", "") if rng.random() < 0.6 else b.name
        text, example = report_text(category, place, rng)
        source = example.source if example and rng.random() < 0.7 else _pick(rng, SOURCES)
        urgent = (example.urgent if example else False) or rng.random() < (
            0.5 if category == "safety_hazard" else self.mix.urgent
        )
        households = example.households if example and example.households else None
        if households is None:
            r = rng.random()
            households = (
                1
                if r < 0.7
                else rng.randint(2, 9)
                if r < 0.85
                else rng.randint(10, 60)
                if r < 0.97
                else rng.randint(100, 400)
            )
        body: dict[str, Any] = {
            "report_id": self._report_id(),
            "source": source,
            "submitted_at": now_iso(),
            "reporter": self._reporter(),
            "location": self._location(b),
            "description": text,
            "households_affected": households,
            "urgent": urgent,
        }
        if rng.random() < self.mix.given_category:
            body["category"] = category
        self._recent.append((b.community, {**body, "location": {"building_code": b.code}}))
        self.kinds["new"] += 1
        self.categories[category] += 1
        self._last_category = category
        return b.community, body

    def _duplicate(self) -> tuple[str, dict[str, Any]]:
        """Another resident reports the same problem of the same building (附议)."""
        key, first = self.rng.choice(self._recent)
        body = {
            **first,
            "report_id": self._report_id(),
            "submitted_at": now_iso(),
            "reporter": self._reporter(),
            "source": _pick(self.rng, SOURCES),
        }
        self.kinds["duplicate"] += 1
        return key, body

    def _invalid(self) -> tuple[str, dict[str, Any]]:
        kind = self.rng.choice(INVALID_KINDS)
        key, body = self._new()
        self.kinds["new"] -= 1
        self.categories[self._last_category] -= 1
        self._recent.pop()
        if kind == "empty_description":
            body["description"] = ""
        elif kind == "bad_phone":
            body["reporter"] = {"name": person(self.rng), "phone": "12345"}
        elif kind == "unknown_building":
            body["location"] = {"building_code": f"{self.territory.district.code}-NOWHERE-B999"}
        else:
            body["location"] = {}
        self.kinds["invalid"] += 1
        self.kinds[f"invalid:{kind}"] += 1
        return key, body


@dataclass(frozen=True)
class Planned:
    """Something to send later: ``delay_s`` simulated seconds after the event it answers."""

    delay_s: float
    topic: str
    key: str
    body: dict[str, Any]  # without "at": the driver stamps the time it sends it


@dataclass
class HandlerModel:
    """Handlers answer ``cases.dispatched``: most accept then resolve, some return (退单),
    escalate (上报) or let the response deadline pass; party volunteers sometimes take a case.
    Verifiers answer ``cases.resolved`` (``verify``)."""

    territory: Territory
    seed: int = 2
    no_response: float = 0.05
    returns: float = 0.03
    escalates: float = 0.04
    volunteer: float = 0.03
    progress: float = 0.3
    rng: random.Random = field(init=False)
    kinds: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _staff(self, unit: str) -> list[str]:
        return [
            h.id
            for h in self.territory.handlers_by_unit.get(unit, [])
            if h.role != "party_volunteer"
        ]

    def _action(
        self, delay: float, case_id: str, handler: str, action: str, **extra: Any
    ) -> Planned:
        body = {
            "action_id": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "case_id": case_id,
            "handler_id": handler,
            "action": action,
            **extra,
        }
        return Planned(delay, "handler.actions", case_id, body)

    def react(self, dispatched: dict[str, Any]) -> list[Planned]:
        rng = self.rng
        case_id, tier, unit = dispatched["case_id"], dispatched["tier"], dispatched["unit"]
        attempt = int(dispatched.get("attempt", 1))
        staff = self._staff(unit)
        handler = dispatched.get("handler_id") or (rng.choice(staff) if staff else None)
        if handler is None:
            self.kinds["nobody"] += 1
            return []
        respond = _lognormal(rng, TIER_RESPONSE_MEDIAN_S[tier])
        roll = rng.random()
        if roll < self.no_response and attempt == 1:
            self.kinds["no_response"] += 1
            return []
        roll -= self.no_response
        if roll < self.returns and attempt == 1:
            self.kinds["return"] += 1
            return [
                self._action(respond, case_id, handler, "return", note=rng.choice(RETURN_NOTES))
            ]
        roll -= self.returns
        if roll < self.escalates and attempt == 1 and tier != "district":
            self.kinds["escalate"] += 1
            return [
                self._action(respond, case_id, handler, "escalate", note=rng.choice(ESCALATE_NOTES))
            ]
        roll -= self.escalates
        if roll < self.volunteer and tier in ("grid", "community"):
            community = self._community_of(dispatched, unit)
            volunteers = [
                h.id
                for h in self.territory.handlers_by_unit.get(community or "", [])
                if h.role == "party_volunteer"
            ]
            if volunteers:
                handler = rng.choice(volunteers)
                self.kinds["volunteer"] += 1
        self.kinds["accept"] += 1
        plan = [self._action(respond, case_id, handler, "accept")]
        resolve = respond + _lognormal(rng, TIER_RESOLVE_MEDIAN_S[tier])
        if rng.random() < self.progress:
            plan.append(
                self._action(
                    (respond + resolve) / 2,
                    case_id,
                    handler,
                    "progress",
                    note=rng.choice(PROGRESS_NOTES),
                )
            )
        plan.append(
            self._action(resolve, case_id, handler, "resolve", note=rng.choice(RESOLVE_NOTES))
        )
        return plan

    def verify(self, resolved: dict[str, Any]) -> list[Planned]:
        """A resolution awaiting its verification (核查, ``verifier_unit``): a staff member of that
        unit other than the resolver verifies it, after a while on site (most within the hour)."""
        unit = resolved.get("verifier_unit")
        if not unit:
            return []
        staff = [h for h in self._staff(unit) if h != resolved.get("handler_id")]
        if not staff:
            self.kinds["no_verifier"] += 1
            return []
        self.kinds["verify"] += 1
        delay = _lognormal(self.rng, VERIFY_MEDIAN_S)
        verifier = self.rng.choice(staff)
        return [self._action(delay, resolved["case_id"], verifier, "verify", note="现场已核实")]

    def _community_of(self, dispatched: dict[str, Any], unit: str) -> str | None:
        if dispatched["tier"] == "community":
            return unit
        # a grid code is <community>-Gnn
        return unit.rsplit("-", 1)[0] if "-G" in unit else None


@dataclass
class ResidentModel:
    """Residents answer ``feedback.requested``: a realistic satisfaction mix, some never rate.
    ``react`` takes the request opened (its ``rating_token`` in clear: the driver opens the
    sealed request as the notifier does)."""

    seed: int = 3
    never: float = 0.12
    satisfied: float = 0.72
    basically: float = 0.18  # the rest: unsatisfied
    median_delay_s: float = 6 * 3600
    max_delay_s: float = 3 * 86400
    rng: random.Random = field(init=False)
    kinds: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def react(self, requested: dict[str, Any]) -> list[Planned]:
        rng = self.rng
        if rng.random() < self.never:
            self.kinds["never"] += 1
            return []
        r = rng.random()
        verdict = (
            "satisfied"
            if r < self.satisfied
            else "basically_satisfied"
            if r < self.satisfied + self.basically
            else "unsatisfied"
        )
        self.kinds[verdict] += 1
        resolved = verdict != "unsatisfied" or rng.random() < 0.4
        body: dict[str, Any] = {
            "case_id": requested["case_id"],
            "rating_token": requested["rating_token"],
            "resolved": resolved,
            "satisfaction": verdict,
        }
        comment = rng.choice(RATING_COMMENTS[verdict])
        if comment:
            body["comment"] = comment
        delay = min(_lognormal(rng, self.median_delay_s, 1.0), self.max_delay_s)
        return [Planned(delay, "feedback.submitted", requested["case_id"], body)]
