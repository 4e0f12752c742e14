"""Property-based requests generated from the OpenAPI schema (schemathesis strategies driven by
hypothesis) find no 5xx, and every error is JSON."""

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from burr_streaming_chatbot.cli import openapi_schema

pytestmark = pytest.mark.e2e  # the chatbot server in a subprocess

schemathesis = pytest.importorskip("schemathesis")


def operations() -> list:
    # The schema of this package's API alone (Burr's app serves its built-in example's routes
    # at the same paths, so its served schema mixes both).
    # (What `burr-streaming-chatbot openapi` prints, built in this process: collecting this
    # module starts no subprocess, so `-m "not e2e"` stays fast.)
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(openapi_schema())))
    return [result.ok() for result in schema.get_all_operations()]


OPERATIONS = operations()
ENDLESS = "/events/{project_id}/{app_id}"
"""The one endpoint whose answer does not end by itself."""


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_generated_requests_never_get_a_server_error(
    operation, chatbot_server, fake_upstream
) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case) -> None:
        if operation.path.endswith(ENDLESS):
            # A stream that only ends when the client leaves: its status and type, then go.
            kwargs = case.as_transport_kwargs(base_url=chatbot_server.url)
            with httpx.stream(
                kwargs["method"],
                kwargs["url"],
                params=kwargs.get("params"),
                headers=kwargs.get("headers"),
                timeout=30,
            ) as response:
                assert response.status_code < 500, (case.formatted_path, response.status_code)
                expected = (
                    "text/event-stream" if response.status_code == 200 else "application/json"
                )
                assert response.headers["content-type"].startswith(expected)
            return
        response = case.call(base_url=chatbot_server.url, timeout=30)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
        if response.status_code >= 400:
            content_type = response.headers.get("content-type", [""])  # a list per header
            assert content_type[0].startswith("application/json"), content_type

    check()


def test_the_schema_covers_the_api() -> None:
    paths = {op.path.rsplit("/api/v0/streaming_chatbot", 1)[1] for op in OPERATIONS}
    assert {
        "/response/{project_id}/{app_id}",
        "/history/{project_id}/{app_id}",
        "/stream/{project_id}/{app_id}",
        "/stop/{project_id}/{app_id}",
    } <= paths
