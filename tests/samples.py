"""Sample data for tests: the sample city registry and report builders (Chinese texts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.contract.taxonomy import default_taxonomy
from shared.registry.file import load_registry_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_REGISTRY = ROOT / "deploy" / "samples" / "registry.yaml"
# A handler of each community and grid of the sample registry: who verifies (核查) a resolution
# whose cases.resolved names that unit its verifier_unit
VERIFIER_OF = {
    "WC-YY-OJY": "h-0010",
    "WC-YY-HPY": "h-0011",
    "WC-ZHL-QHJ": "h-0012",
    "WC-YY-OJY-G01": "h-0001",
    "WC-YY-OJY-G02": "h-0003",
    "WC-YY-HPY-G01": "h-0004",
    "WC-ZHL-QHJ-G01": "h-0005",
}


def sample_registry() -> list[Any]:
    return load_registry_file(SAMPLE_REGISTRY, default_taxonomy())


def report(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": f"r-{uuid.uuid4().hex[:12]}",
        "source": "weixin_grid_group",
        "submitted_at": datetime.now(UTC).isoformat(),
        "reporter": {"name": "王阿姨", "phone": "13812345678"},
        "location": {"building_code": "WC-YY-OJY-G01-B03"},
        "description": "3栋楼道垃圾堆了三天没人清运，异味很大",
    }
    body.update(over)
    return body


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def wait_registry(bed: Testbed, handler_id: str = "h-0030") -> None:
    """Wait until every running service has read the sample registry up to ``handler_id``
    (the last record of the sample file, on the single partition of registry.units)."""
    for svc in bed.running:
        await eventually(
            partial(svc.pool.fetchval, "SELECT 1 FROM handlers WHERE id = $1", handler_id),
            timeout=30,
            what=f"{svc.name} to read the registry",
        )
