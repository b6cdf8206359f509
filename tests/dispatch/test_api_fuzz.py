"""The handler API fuzzed by schemathesis from its OpenAPI document, against dispatch as a
process, on cases that exist (most requests name one of them, so actions are really applied,
refused and retried, not only answered 404), as a grid worker, a colleague, a party volunteer,
community staff and the command centre: no answer is a 5xx, every answer is one the document
describes."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from devstack.testbed import Testbed
from tests.dispatch.process import dispatch_process
from tests.http.test_openapi_fuzz import CHECKS

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
CALLERS = (
    ("grid_worker", "WC-YY-OJY-G01", "h-0001"),
    ("grid_worker", "WC-YY-OJY-G01", "h-0002"),
    ("party_volunteer", "WC-YY-OJY", "h-0013"),
    ("community_staff", "WC-YY-OJY", "h-0010"),
    ("command_centre", "WC", None),
)
HANDLER_API = ("/me/cases", "/cases/{case_id}", "/cases/{case_id}/actions")


def fuzz(url: str, tokens: list[str], case_ids: list[str]) -> tuple[list[str], Counter[int]]:
    # hypothesis seeds the random module for each example: an instance of our own picks cases
    rng = random.Random(16)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    statuses: Counter[int] = Counter()

    def fuzzer(op: Any, token: str) -> Any:
        @FUZZ
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            if "{case_id}" in op.path and rng.random() < 0.8:
                case.path_parameters["case_id"] = rng.choice(case_ids)
            resp = case.call(headers={"Authorization": f"Bearer {token}"})
            statuses[resp.status_code] += 1
            case.validate_response(resp, checks=CHECKS)

        return run

    for result in schema.get_all_operations():
        op = result.ok()  # type: ignore[union-attr]  # an invalid document raises here
        if op.path not in HANDLER_API:
            continue
        for token in tokens:
            try:
                fuzzer(op, token)()
            except Exception as exc:  # a check failed: keep going, report all of them
                failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:2000]}")
    return failures, statuses


async def test_no_input_gets_a_5xx_and_every_answer_is_documented(
    bed: Testbed, tmp_path: Path
) -> None:
    tokens = [bed.token(role, unit, handler) for role, unit, handler in CALLERS]
    async with dispatch_process(bed, tmp_path, cases=6) as dispatch:
        failures, statuses = await asyncio.to_thread(fuzz, dispatch.url, tokens, dispatch.case_ids)
    assert not failures, "\n\n".join(failures)
    # the requests reached every answer, applied actions included
    assert {200, 403, 404, 409, 422} <= set(statuses), statuses
