"""The board's event stream with deltas and the map's counts, against dispatch as a process
(uvicorn): ``GET /console/api/events?deltas=true`` sends the board without its buildings on
connect, then after a new case only the units whose counts moved (its street, community, grid
and building), with the totals and lists; the stream without ``deltas`` still sends the whole
board, buildings included; ``GET /console/api/map?counts=true`` gives each grid and building
the counts the whole board gives it; ``GET /console/api/board?buildings=false`` leaves out the
buildings and nothing else; ``GET /console/api/counts`` gives the same counts without the
geometry, and the map is answered 304 for its ETag until the registry changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx

from cli.client import Publisher
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.contract.events import Unit
from tests.dispatch.process import dispatch_process
from tests.dispatch.support import OJY_G01, case_opened

BUILDING = "WC-YY-OJY-G01-B03"
TIMEOUT = 30.0


async def events(client: httpx.AsyncClient, path: str) -> AsyncGenerator[tuple[str, Any]]:
    """The server-sent events of ``path``: (event, data)."""
    async with client.stream("GET", path) as resp:
        assert resp.status_code == 200
        name, data = "", []
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                yield name, json.loads("\n".join(data))
                name, data = "", []


async def test_deltas_name_what_moved_and_the_map_counts_the_buildings(
    bed: Testbed, tmp_path: Path
) -> None:
    token = bed.token("command_centre", "WC")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        dispatch_process(bed, tmp_path, cases=2) as dispatch,
        httpx.AsyncClient(base_url=dispatch.url, headers=headers, timeout=TIMEOUT) as client,
    ):
        whole = (await client.get("/console/api/board")).json()
        alone = (await client.get("/console/api/board", params={"buildings": "false"})).json()
        assert {u["level"] for u in whole["units"]} >= {"grid", "building"}
        assert [u for u in whole["units"] if u["level"] != "building"] == alone["units"]
        assert alone["totals"] == whole["totals"] and alone["totals"]["open"] == 2

        geo = (await client.get("/console/api/map", params={"counts": "true"})).json()
        rows = {u["code"]: u for u in whole["units"]}
        counted = {f["properties"]["code"]: f["properties"] for f in geo["features"]}
        assert counted and "now" in geo
        for code, props in counted.items():
            for key in ("open", "due_soon", "overdue", "by_tier"):
                assert props[key] == rows[code][key], (code, key)
        plain = (await client.get("/console/api/map")).json()
        assert "open" not in plain["features"][0]["properties"]

        stream = events(client, "/console/api/events?deltas=true")
        legacy = events(client, "/console/api/events")
        async with asyncio.timeout(TIMEOUT):
            name, first = await anext(stream)
            assert name == "board"
            assert first["units"] == alone["units"]
            assert first["totals"]["open"] == 2
            name, old = await anext(legacy)
            assert name == "board" and old["units"] == whole["units"]

            case = case_opened(location={**OJY_G01, "building": BUILDING})
            async with Publisher(bed.settings(), source="test/intake") as pub:
                await pub.send("cases.opened", case, key=case.case_id, subject=case.case_id)
            while True:  # a delta may come first for a refresh: the one counting the case
                name, delta = await anext(stream)
                assert name == "delta"
                if delta["totals"]["open"] == 3:
                    break
            moved = {u["code"]: u["open"] for u in delta["units"]}
            assert moved == {
                "WC-YY": rows["WC-YY"]["open"] + 1,
                "WC-YY-OJY": rows["WC-YY-OJY"]["open"] + 1,
                "WC-YY-OJY-G01": rows["WC-YY-OJY-G01"]["open"] + 1,
                BUILDING: rows[BUILDING]["open"] + 1,
            }
            assert case.case_id in {c["case_id"] for c in delta["recent"]}
            while True:  # the stream without deltas: the whole board again
                name, old = await anext(legacy)
                assert name == "board"
                if old["totals"]["open"] == 3:
                    break
            assert {u["code"]: u["open"] for u in old["units"]}[BUILDING] == moved[BUILDING]
        await stream.aclose()
        await legacy.aclose()


async def test_the_counts_alone_and_the_map_kept_until_the_registry_changes(
    bed: Testbed, tmp_path: Path
) -> None:
    """``GET /console/api/counts`` gives every unit the whole board's counts (buildings too) in
    the order of its ``fields``; the map carries an ETag, a 304 for it, and another map with
    another ETag once the registry has a new building, which the board lists too."""
    headers = {"Authorization": f"Bearer {bed.token('command_centre', 'WC')}"}
    async with (
        dispatch_process(bed, tmp_path, cases=2) as dispatch,
        httpx.AsyncClient(base_url=dispatch.url, headers=headers, timeout=TIMEOUT) as client,
    ):
        whole = (await client.get("/console/api/board")).json()
        tallies = (await client.get("/console/api/counts")).json()
        fields = tallies["fields"]
        assert fields == ["open", "due_soon", "overdue", "grid", "community", "street", "district"]

        def row(counts: dict[str, Any]) -> list[int]:
            return [counts[f] for f in fields[:3]] + [counts["by_tier"][t] for t in fields[3:]]

        assert tallies["totals"] == row(whole["totals"])
        having = {u["code"]: row(u) for u in whole["units"] if u["open"]}
        assert tallies["units"] == having and BUILDING not in having  # zero: not named

        first = await client.get("/console/api/map")
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        again = await client.get("/console/api/map", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert (await client.get("/console/api/map", headers={"If-None-Match": '"x"'})).content

        new = Unit(
            code="WC-YY-OJY-G01-B99",
            name="新楼99栋",
            level="building",
            parent="WC-YY-OJY-G01",
            lon=114.3,
            lat=30.58,
        )
        await publish_registry(bed.settings(), [new], prune=False)

        async def redrawn() -> list[httpx.Response]:
            resp = await client.get("/console/api/map", headers={"If-None-Match": etag})
            return [resp] if resp.status_code == 200 else []

        [changed] = await eventually(redrawn, timeout=TIMEOUT, interval=0.2, what="a new map")
        assert changed.headers["etag"] != etag
        codes = {f["properties"]["code"] for f in changed.json()["features"]}
        before = {f["properties"]["code"] for f in first.json()["features"]}
        assert codes == before | {new.code}
        board = (await client.get("/console/api/board")).json()
        assert new.code in {u["code"] for u in board["units"]}
