"""Two intake replicas share reports.submitted and still merge duplicates (附议) correctly: the
merge decision for a matter takes a database lock, so however the reports are partitioned, one
matter opens one case."""

from __future__ import annotations

from collections import Counter

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.runtime.service import Service
from tests.samples import report, sample_registry, wait_registry

MATTERS = [
    ("WC-YY-OJY-G01-B03", "sanitation"),
    ("WC-YY-OJY-G01-B05", "noise"),
    ("WC-YY-HPY-G01-B01", "ebike_charging"),
]
PER_MATTER = 12


def reports_sub(svc: Service) -> set[int]:
    [sub] = [s for s in svc.subscriptions if s.topic == "reports.submitted"]
    return sub.assigned_partitions()


async def test_two_replicas_one_case_per_matter(bed: Testbed) -> None:
    a = await bed.start("intake")
    b = await bed.start("intake")
    await publish_registry(bed.settings(), sample_registry())
    await wait_registry(bed)

    async def split() -> bool:  # each replica owns one of the two partitions
        return reports_sub(a) | reports_sub(b) == {0, 1} and bool(reports_sub(a))

    await eventually(split, timeout=60, what="the two replicas to share the partitions")

    s = bed.settings()
    async with Publisher(s) as pub, TopicReader(s, "cases.opened", "cases.merged") as reader:
        for i in range(PER_MATTER):
            for building, category in MATTERS:
                r = report(
                    report_id=f"dup-{building}-{i}",
                    category=category,
                    location={"building_code": building},
                    reporter={"phone": f"1390000{i:04d}"},
                )
                await pub.send("reports.submitted", r, key=r["report_id"], wait=False)
        total = PER_MATTER * len(MATTERS)
        await reader.wait_for(
            lambda r: len(r.of("cases.opened")) + len(r.of("cases.merged")) >= total,
            timeout=60,
            what="every report answered",
        )
        opened = [x.json() for x in reader.of("cases.opened")]
        merged = [x.json() for x in reader.of("cases.merged")]

    assert sorted((c["location"]["building"], c["category"]) for c in opened) == sorted(MATTERS)
    per_case = Counter(m["case_id"] for m in merged)
    assert sorted(per_case.values()) == [PER_MATTER - 1] * len(MATTERS)
    assert max(m["supporter_count"] for m in merged) == PER_MATTER
    # both replicas did part of the work
    consumed = [svc.metrics.consumed.labels("reports.submitted")._value.get() for svc in (a, b)]
    assert all(n > 0 for n in consumed) and sum(consumed) == total
