"""schemathesis fuzzes every operation of ``/openapi.json`` against the running daemon: no 5xx, and no response
that breaks the schema (status codes, content types, headers, bodies)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.http.conftest import TOKEN, Served, serve


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("fuzzed"))


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz(served: Served, path: str, method: str) -> int:
    """Run hypothesis over one operation; return how many cases were sent."""
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json")
    operation = schema[path][method.upper()]
    sent = 0

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case) -> None:
        nonlocal sent
        if case.query and "wait" in case.query:
            case.query["wait"] = 0.05  # the long-poll itself is tested elsewhere; keep the fuzzing fast
        headers = {"Authorization": f"Bearer {TOKEN}", **(case.headers or {})}
        case.call_and_validate(base_url=served.url, headers=headers, checks=CHECKS)
        sent += 1

    run()
    return sent


OPERATIONS = [
    ("/", "get"),
    ("/healthz", "get"),
    ("/metrics", "get"),
    ("/openapi.json", "get"),
    ("/v1/status", "get"),
    ("/v1/killswitch", "get"),
    ("/v1/killswitch/trip", "post"),
    ("/v1/killswitch/release", "post"),
    ("/v1/events", "post"),
    ("/v1/openrouter/broadcast", "post"),
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_no_operation_answers_5xx_or_breaks_its_schema(fuzzed: Served, path: str, method: str):
    assert fuzz(fuzzed, path, method) > 0


def test_the_fuzzed_daemon_is_still_healthy(fuzzed: Served):
    assert fuzzed.client.get("/healthz").status_code == 200
