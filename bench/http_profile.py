"""``python -m bench.http_profile``: where intake's CPU goes per Open311 POST, deterministically.

Intake in-process on a testbed (the city and api key of ``bench.http``), 3,000 distinct POSTs
through its ASGI app (httpx's ASGI transport, 32 at a time, after 500 to warm up) under cProfile;
prints the functions by cumulative time. cProfile roughly doubles the cost of Python calls, so
read the shares, not the absolute times; ``bench.http`` measures the real rate."""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import time

import httpx

from bench.http import PATH, issue_key, targets
from bench.seed import seed_registry
from bench.vegeta import Target
from devstack.infra import resolve
from devstack.paths import RUN
from devstack.testbed import create_testbed, destroy_testbed
from shared.runtime.logging import configure_logging
from sim.territory import TerritorySize, generate_territory

POSTS, WARM, AT_ONCE = 3000, 500, 32


async def main() -> None:
    configure_logging("intake", "INFO", once=True)
    infra = await asyncio.to_thread(resolve, RUN / "bench", for_tests=True)
    bed = await create_testbed(infra.bootstrap, infra.admin_dsn)
    try:
        svc = await bed.start("intake")
        size = TerritorySize(streets=4, communities=40, grids=360, buildings=6000)
        territory = generate_territory(size, seed=7)
        await seed_registry(bed, territory, ("intake",))
        key = await issue_key(bed)
        posts = targets("http://intake", key, territory, WARM + POSTS, 7)
        transport = httpx.ASGITransport(app=svc.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            gate = asyncio.Semaphore(AT_ONCE)

            async def post(t: Target) -> None:
                async with gate:
                    resp = await client.post(PATH, content=t.body, headers=t.headers)
                    assert resp.status_code == 200, resp.text

            await asyncio.gather(*(post(t) for t in posts[:WARM]))
            profile = cProfile.Profile()
            started = time.perf_counter()
            profile.enable()
            await asyncio.gather(*(post(t) for t in posts[WARM:]))
            profile.disable()
            print(f"{POSTS} POSTs in {time.perf_counter() - started:.2f} s under cProfile")
        pstats.Stats(profile).sort_stats("cumtime").print_stats(r"fastapi|intake|consumer", 40)
    finally:
        await destroy_testbed(bed, infra.admin_dsn)
        infra.stop()  # only what this run started


if __name__ == "__main__":
    asyncio.run(main())
