"""A test that runs too long is a hang: dump where every thread and asyncio task is, then end the
run, so CI fails in minutes with a trace instead of running into its own time limit.

The limit is ``WANGGE_TEST_TIMEOUT`` seconds per test (setup, call and teardown together; 0 turns
the watchdog off); a suite that runs for minutes by design says its own with
``@pytest.mark.watchdog(seconds)`` (scaled alike when ``WANGGE_TEST_TIMEOUT`` is set)."""

from __future__ import annotations

import asyncio
import faulthandler
import io
import os
import sys
import threading
from collections.abc import Iterator

import pytest

DEFAULT_TIMEOUT_S = 300.0
PLUGIN = "wangge-watchdog"
MARKER = "watchdog"
EXIT_CODE = 3


class Watchdog:
    def __init__(self, config: pytest.Config, timeout_s: float) -> None:
        self.config = config
        self.timeout_s = timeout_s
        self.loop: asyncio.AbstractEventLoop | None = None

    def _task_stacks(self) -> str:
        out = io.StringIO()
        loop = self.loop
        if loop is None or loop.is_closed():
            return "(no event loop)\n"
        done = threading.Event()

        def dump() -> None:
            try:
                for task in asyncio.all_tasks(loop):
                    task.print_stack(file=out)
            finally:
                done.set()

        loop.call_soon_threadsafe(dump)
        if not done.wait(10):
            out.write("(the event loop did not run the dump within 10 s: it is blocked)\n")
        return out.getvalue()

    def _task_summary(self) -> str:
        """One line per asyncio task: its name and the innermost frame it waits in."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return "(no event loop)\n"
        lines = []
        try:  # from this thread, while the loop may still run: best effort
            tasks = list(asyncio.all_tasks(loop))
        except RuntimeError as exc:
            return f"  (the tasks could not be listed: {exc})\n"
        for task in tasks:
            frames = task.get_stack()
            where = (
                f"{frames[-1].f_code.co_filename}:{frames[-1].f_lineno} {frames[-1].f_code.co_name}"
                if frames
                else "(no frame)"
            )
            lines.append(f"  {task.get_name()}: {where}\n")
        return "".join(sorted(lines)) or "  (no task)\n"

    def fire(self, nodeid: str, limit_s: float) -> None:
        # pytest captures file descriptors 1 and 2 while a test runs, and the capture is lost at
        # os._exit: give them back to the terminal (or CI's log) first
        capture = self.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.suspend_global_capture(in_=False)
        err = sys.__stderr__ or sys.stderr
        err.write(f"\n\n=== watchdog: {nodeid} ran over {limit_s:.0f} s ===\n")
        err.write("--- asyncio tasks ---\n" + self._task_stacks())
        err.write("--- threads ---\n")
        err.flush()
        faulthandler.dump_traceback(file=err, all_threads=True)
        # CI may keep only the tail of the log: say again which test it was, and the coroutine
        # each asyncio task was in, after the long thread dump
        err.write(f"=== watchdog: {nodeid} ran over {limit_s:.0f} s; its tasks were in:\n")
        err.write(self._task_summary())
        err.write(f"=== watchdog: ending the test run (exit code {EXIT_CODE}) ===\n")
        err.flush()
        os._exit(EXIT_CODE)

    def limit_of(self, item: pytest.Item) -> float:
        """The test's limit: ``@pytest.mark.watchdog(seconds)`` for the suites that run for
        minutes by design (the chaos suites start their own Kafka and PostgreSQL), scaled like the
        default when ``WANGGE_TEST_TIMEOUT`` is set; else the default."""
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            return self.timeout_s
        return float(marker.args[0]) * self.timeout_s / DEFAULT_TIMEOUT_S

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        limit = self.limit_of(item)
        timer = threading.Timer(limit, self.fire, args=(item.nodeid, limit))
        timer.daemon = True
        timer.start()
        try:
            return (yield)
        finally:
            timer.cancel()


def install(config: pytest.Config) -> None:
    """Register the watchdog as plugin ``PLUGIN`` (unless ``WANGGE_TEST_TIMEOUT`` is 0)."""
    config.addinivalue_line(
        "markers", f"{MARKER}(seconds): this test's limit, instead of {DEFAULT_TIMEOUT_S:.0f} s"
    )
    timeout_s = float(os.environ.get("WANGGE_TEST_TIMEOUT", DEFAULT_TIMEOUT_S))
    if timeout_s > 0:
        config.pluginmanager.register(Watchdog(config, timeout_s), PLUGIN)
