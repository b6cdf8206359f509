"""Each service's OpenAPI document, fuzzed by schemathesis against the running process: whatever
it is sent, no answer is a 5xx, and every answer matches what the document says (status codes,
content types, headers, bodies). Run as the district's command centre (reaching every unit and
case), so that the authorised paths are exercised, not only the 401s."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.feedback.helpers import DISTRICT
from tests.http.conftest import Stack

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: a failure reproduces
)


def fuzz(stack: Stack, service: str, headers: dict[str, str]) -> list[str]:
    """Every operation of the service's document, each with FUZZ's examples; the failures (one
    line each, with the request that reproduces it)."""
    schema = schemathesis.openapi.from_url(f"{stack.urls[service]}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()  # type: ignore[union-attr]  # an invalid document raises here
        operations += 1

        @FUZZ
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # a check failed: keep going, report all operations
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:2000]}")
    assert operations > 0
    return failures


@pytest.mark.parametrize("service", ["intake", "dispatch", "feedback"])
def test_every_operation_answers_as_documented(stack: Stack, service: str) -> None:
    token = stack.token("command_centre", DISTRICT)
    failures = fuzz(stack, service, {"Authorization": f"Bearer {token}"})
    assert not failures, "\n\n".join(failures)
