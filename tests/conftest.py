"""Fixtures: real Kafka and PostgreSQL (env, else testcontainers, else local processes), started
once per test session; each test gets its own database and topic prefix (a ``Testbed``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from devstack.infra import Infra, resolve
from devstack.objectstore import LocalObjectStore, start_object_store
from devstack.paths import RUN
from devstack.testbed import Testbed, create_testbed, destroy_testbed
from shared.runtime.logging import configure_logging
from tests import watchdog


def pytest_configure(config: pytest.Config) -> None:
    watchdog.install(config)


@pytest.fixture(scope="session", autouse=True)
async def _watch_the_loop(request: pytest.FixtureRequest) -> None:
    """Lets the watchdog dump the asyncio tasks of the loop the tests run on."""
    dog = request.config.pluginmanager.get_plugin(watchdog.PLUGIN)
    if dog is not None:
        dog.loop = asyncio.get_running_loop()


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    configure_logging("tests", "WARNING")
    inf = resolve(RUN / "test", for_tests=True)
    yield inf
    inf.stop()


@pytest.fixture(scope="session")
def object_store() -> Iterator[LocalObjectStore]:
    """An S3-compatible server as a local process (devstack/objectstore.py), for the session;
    each test uses a bucket of its own."""
    store = start_object_store(RUN / "test")
    yield store
    store.stop()


@pytest.fixture
async def bed(infra: Infra) -> AsyncIterator[Testbed]:
    tb = await create_testbed(infra.bootstrap, infra.admin_dsn)
    try:
        yield tb
    finally:
        await destroy_testbed(tb, infra.admin_dsn)
