"""The crash suite's oracle for the loop's closing half: what feedback must have done, computed from
the event log alone (the topics, read from the beginning), never from a service's tables.

- ``follow_ups``: the follow-up requests (回访) of each (case, round, reporter), by distinct
  ``ce_id`` (a record published again after a crash keeps its ``ce_id``).
- ``applied_ratings``: the ratings feedback must have applied: per requested token, its first
  submission in partition order (a token is single-use; a later copy is rejected), unless feedback
  said that token had expired (``feedback.rejected`` "token expired" with the request's reporter
  and round: a round-1 rating read after the case's second resolution). Which of a case's topics
  feedback read first is not in the log; that it said so, is.
- ``metric_inputs``: the rows ``services.feedback.formulas`` takes for one unit and one period,
  chosen from the events as docs/feedback.md defines them (cases by where they are, departments by
  dispatch; each fact by its own time). The arithmetic then is the formulas' own: what this checks
  is that the read model, built under kills and restarts, holds exactly the facts of the log.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cli.client import Record
from services.feedback.formulas import (
    AcceptRow,
    AgencyRow,
    CardRow,
    CaseFacts,
    DispatchRow,
    MetricInputs,
    RatingRow,
    ResolutionRow,
)
from services.feedback.periods import Period
from tests.feedback.helpers import token_of

LEVELS = ("district", "street", "community", "grid")


def _time(value: str | None, rec: Record) -> datetime:
    return datetime.fromisoformat(value or rec.headers["ce_time"])


def distinct(records: list[Record]) -> list[Record]:
    """Each event once: the first record of each ``ce_id``, in log order per partition."""
    seen: set[str] = set()
    out = []
    for rec in sorted(records, key=lambda r: (r.partition, r.offset)):
        if rec.headers["ce_id"] not in seen:
            seen.add(rec.headers["ce_id"])
            out.append(rec)
    return out


@dataclass
class EventLog:
    opened: dict[str, dict[str, Any]] = field(default_factory=dict)
    dispatches: list[tuple[dict[str, Any], datetime]] = field(default_factory=list)
    accepts: list[dict[str, Any]] = field(default_factory=list)
    resolutions: list[dict[str, Any]] = field(default_factory=list)
    escalated: set[str] = field(default_factory=set)
    reopened: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)
    expired: set[tuple[str, int, str]] = field(default_factory=set)  # (case, round, reporter)
    reporters: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    cards: list[tuple[CardRow, datetime]] = field(default_factory=list)  # 黄牌/红牌, when
    agents: list[tuple[AgencyRow, datetime]] = field(default_factory=list)  # 三代, when

    @classmethod
    def read(cls, of: Any) -> EventLog:
        """From a reader's records: ``of(topic)`` gives a topic's records."""
        log = cls()
        for rec in distinct(of("cases.opened")):
            ev = rec.json()
            log.opened[ev["case_id"]] = ev
            log.reporters[ev["case_id"]].add(ev["reporter_ref"])
        for rec in distinct(of("cases.merged")):
            ev = rec.json()
            log.reporters[ev["case_id"]].add(ev["reporter_ref"])
        for rec in distinct(of("cases.dispatched")):
            ev = rec.json()
            log.dispatches.append((ev, _time(ev.get("dispatched_at"), rec)))
        log.accepts = [r.json() for r in distinct(of("cases.accepted"))]
        log.resolutions = [r.json() for r in distinct(of("cases.resolved"))]
        log.escalated = {r.json()["case_id"] for r in distinct(of("cases.escalated"))}
        log.reopened = {r.json()["case_id"] for r in distinct(of("cases.reopened"))}
        for rec in distinct(of("cases.warned")):
            ev = rec.json()
            card = CardRow(ev["case_id"], ev["stage"], "yellow")
            log.cards.append((card, datetime.fromisoformat(ev["warned_at"])))
        for rec in distinct(of("cases.overdue")):
            ev = rec.json()
            card = CardRow(ev["case_id"], ev["deadline"], "red")
            log.cards.append((card, _time(ev.get("overdue_at"), rec)))
        # opened as the notifier does: the token in clear (feedback seals it)
        for rec in distinct(of("cases.agent_assigned")):
            ev = rec.json()
            agent = AgencyRow(ev["case_id"], ev["agency_mode"], "assigned")
            log.agents.append((agent, datetime.fromisoformat(ev["assigned_at"])))
        log.requests = [
            {**r.json(), "rating_token": token_of(r.json())}
            for r in distinct(of("feedback.requested"))
        ]
        log.submissions = [r.json() for r in distinct(of("feedback.submitted"))]
        log.expired = {
            (ev["case_id"], ev["round"], ev["reporter_ref"])
            for ev in (r.json() for r in distinct(of("feedback.rejected")))
            if ev["reason"] == "token expired" and ev.get("reporter_ref")
        }
        return log

    def follow_ups(self) -> dict[tuple[str, int, str], int]:
        """(case, round, reporter) -> how many distinct follow-up requests it got."""
        counts: dict[tuple[str, int, str], int] = defaultdict(int)
        for r in self.requests:
            counts[(r["case_id"], r.get("round", 1), r["reporter_ref"])] += 1
        return dict(counts)

    def applied_ratings(self) -> dict[tuple[str, int, str], dict[str, Any]]:
        """(case, round, reporter) -> the rating that must have been applied for it."""
        by_token = {r["rating_token"]: r for r in self.requests}
        applied: dict[tuple[str, int, str], dict[str, Any]] = {}
        used: set[str] = set()
        for s in self.submissions:
            req = by_token.get(s["rating_token"])
            if req is None or s["rating_token"] in used or req["case_id"] != s["case_id"]:
                continue
            key = (req["case_id"], req.get("round", 1), req["reporter_ref"])
            if key in self.expired:
                continue
            used.add(s["rating_token"])
            applied[key] = s
        return applied

    def cases_of(self, code: str, level: str) -> set[str]:
        if level == "department":
            return {ev["case_id"] for ev, _ in self.dispatches if ev["unit"] == code}
        return {c for c, ev in self.opened.items() if (ev.get("location") or {}).get(level) == code}

    def metric_inputs(self, code: str, level: str, period: Period) -> MetricInputs:
        cases = self.cases_of(code, level)
        inside = period.contains
        opened = [
            CaseFacts(c, ev["category"], datetime.fromisoformat(ev["opened_at"]))
            for c, ev in self.opened.items()
            if c in cases and inside(datetime.fromisoformat(ev["opened_at"]))
        ]
        dispatches = [
            DispatchRow(ev["case_id"], at, ev["attempt"])
            for ev, at in self.dispatches
            if ev["case_id"] in cases and inside(at)
        ]
        dispatched = {d.case_id for d in dispatches}
        accepts = [
            AcceptRow(a["case_id"], datetime.fromisoformat(a["accepted_at"]), a["on_time"])
            for a in self.accepts
            if a["case_id"] in dispatched
        ]
        resolutions = [
            ResolutionRow(
                r["case_id"], datetime.fromisoformat(r["resolved_at"]), r["tier"], r["on_time"]
            )
            for r in self.resolutions
            if r["case_id"] in cases and inside(datetime.fromisoformat(r["resolved_at"]))
        ]
        ratings = [
            RatingRow(s["resolved"], s["satisfaction"])
            for (case_id, _, _), s in self.applied_ratings().items()
            if case_id in cases and inside(datetime.fromisoformat(s["at"]))
        ]
        return MetricInputs(
            opened=opened,
            dispatches=dispatches,
            accepts=accepts,
            resolutions=resolutions,
            ratings=ratings,
            facts={c: self.facts(c) for c in {r.case_id for r in resolutions}},
            cards=[c for c, at in self.cards if c.case_id in cases and inside(at)],
            agency=[a for a, at in self.agents if a.case_id in cases and inside(at)],
        )

    def facts(self, case_id: str) -> CaseFacts:
        ev = self.opened.get(case_id, {})
        mine = sorted(
            (
                (d.get("attempt", 1), at, d["tier"])
                for d, at in self.dispatches
                if d["case_id"] == case_id
            )
        )
        return CaseFacts(
            case_id,
            ev.get("category"),
            datetime.fromisoformat(ev["opened_at"]) if ev else None,
            mine[0][2] if mine else ev.get("default_tier"),
            case_id in self.escalated,
            case_id in self.reopened,
            ev.get("default_tier"),  # 大事不出社区率 leaves out the street's and district's own
        )
