"""The docs' copies of who writes and reads which topic are the ACL module's
(``shared/contract/acls.py``): the principals' table of docs/operations.md ("Kafka identity") and
the services table of the README. A topic added to a service, or an upstream kind, shows here
until both are written out again."""

from __future__ import annotations

import re
from pathlib import Path

from shared.contract.acls import SERVICE_TOPICS, UPSTREAM, UPSTREAM_KINDS

ROOT = Path(__file__).resolve().parents[2]
TOPIC = re.compile(r"`([a-z0-9_]+(?:\.[a-z0-9_]+)+)`")


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            rows.append(cells)
    return rows


def topics(cell: str) -> set[str]:
    """The topics a cell names (the .dlq and consumer groups left out)."""
    return {t for t in TOPIC.findall(cell) if not t.endswith(".dlq") and "<" not in t}


def test_the_principals_table_of_operations_is_the_acl_module() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for service, st in SERVICE_TOPICS.items():
        (row,) = table_rows(text, f"`wangge-{service}`")
        assert topics(row[2]) == set(st.publishes), f"{service} writes"
        assert topics(row[3]) == set(st.consumes), f"{service} reads"
    for p in UPSTREAM:
        kind = UPSTREAM_KINDS[p.kind]
        found = [
            [c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines()
            if line.startswith("|") and f"`{p.name}`" in line.split("|")[1]
        ]
        assert len(found) == 1, p.name
        assert topics(found[0][2]) == set(kind.writes), f"{p.name} writes"
        assert topics(found[0][3]) == set(kind.reads), f"{p.name} reads"


def test_the_readmes_services_table_is_the_acl_module() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for service, st in SERVICE_TOPICS.items():
        (row,) = table_rows(text, f"`services/{service}`")
        assert topics(row[1]) == set(st.consumes), f"{service} consumes"
        assert topics(row[2]) == set(st.publishes), f"{service} publishes"
