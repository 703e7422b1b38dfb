"""POST rules: 403 without a configured token, 401 without the right one, 413 over 10 MiB, in that order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.http.conftest import Served, serve

POSTS = ["/v1/killswitch/trip", "/v1/killswitch/release", "/v1/events", "/v1/openrouter/broadcast"]
LIMIT = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def tokenless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("tokenless"), token=None)


@pytest.mark.parametrize("path", POSTS)
def test_a_post_without_a_token_is_401_with_a_bearer_challenge(shared: Served, path: str):
    answer = shared.client.post(path, content=b"{}")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "error" in answer.json()


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic dGVzdA==", "Bearer", "test-token-0123456789abcdef"])
def test_a_wrong_token_or_scheme_is_401(shared: Served, header: str):
    answer = shared.client.post("/v1/killswitch/trip", headers={"Authorization": header}, json={"budget": "team"})
    assert answer.status_code == 401


@pytest.mark.parametrize("path", POSTS)
def test_every_post_is_403_when_no_token_is_configured(tokenless: Served, path: str):
    answer = tokenless.client.post(path, headers={"Authorization": "Bearer anything"}, content=b"{}")
    assert answer.status_code == 403 and "token" in answer.json()["error"]


def test_gets_need_no_token(tokenless: Served):
    assert tokenless.client.get("/v1/killswitch").status_code == 200


def test_authentication_is_checked_before_size(shared: Served):
    answer = shared.client.post("/v1/events", content=b"x" * (LIMIT + 1))
    assert answer.status_code == 401


def test_a_declared_length_over_10_mib_is_413(shared: Served):
    body = b"x" * (LIMIT + 1)
    answer = shared.post("/v1/events", content=body, headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 413 and "error" in answer.json()


def test_a_streamed_body_over_10_mib_without_a_length_is_413(shared: Served):
    def chunks() -> Iterator[bytes]:
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    answer = shared.post("/v1/events", content=chunks(), headers={"content-type": "application/x-ndjson"})
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413


def test_size_is_checked_before_the_body(shared: Served):
    answer = shared.post("/v1/killswitch/trip", content=b"{" * (LIMIT + 1))
    assert answer.status_code == 413


def test_exactly_10_mib_is_not_too_large(shared: Served):
    body = b"\n" * LIMIT
    answer = shared.post("/v1/events", content=body, headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 200 and answer.json()["read"] == 0


def test_a_body_that_is_not_json_is_400(shared: Served):
    answer = shared.post("/v1/killswitch/trip", content=b"not json")
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]


def test_healthz_is_503_with_the_reason_when_the_guard_is_stale(tmp_path: Path):
    for served in serve(tmp_path, timing='evaluate_every = "1h"\nstale_after = "1s"'):
        answer = wait_for(lambda c=served.client: (r := c.get("/healthz")).status_code == 503 and r)
        assert answer.json()["ok"] is False
        assert "stale" in answer.json()["reason"]
