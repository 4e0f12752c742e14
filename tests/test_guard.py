"""guard.py's rules on constructed requests: the cases a test cannot reach over the network here
(a server on a non-loopback address: tests talk only to 127.0.0.0/8), and each rule's edges.
The same rules against the real servers: tests/test_request_guard.py."""

import asyncio
from typing import Any, Optional

import pytest
from fastapi.exceptions import RequestValidationError

from burr_streaming_chatbot import guard
from burr_streaming_chatbot.guard import (
    AllowedHosts,
    RequestGuard,
    checked,
    content_type_refusal,
    cross_site_refusal,
    host_refusal,
    page_headers,
    refusal,
    script_hash,
    split_host,
    validation_error_response,
)

NONE = AllowedHosts.parse("")
LAN = "192.168.1.20"  # a server bound to 0.0.0.0, reached over the network


def scope(
    host: Optional[str],
    server: Optional[tuple[str, int]] = ("127.0.0.1", 7241),
    method: str = "GET",
    http_version: str = "1.1",
    **headers: str,
) -> dict[str, Any]:
    pairs = [] if host is None else [(b"host", host.encode("latin-1"))]
    pairs += [(k.replace("_", "-").encode(), v.encode("latin-1")) for k, v in headers.items()]
    return {
        "type": "http",
        "method": method,
        "path": "/",
        "headers": pairs,
        "server": server,
        "http_version": http_version,
    }


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("localhost", ("localhost", None)),
        ("LocalHost:7241", ("localhost", 7241)),
        ("[::1]:80", ("[::1]", 80)),
        ("[::1]", ("[::1]", None)),
        ("example.com.", ("example.com", None)),
        ("example.com:0", None),
        ("example.com:99999", None),
        ("example.com:x", None),
        ("[::1", None),
        ("[nothex]", None),
        ("::1", None),
        ("a b", None),
        ("caf\u00e9", None),
        ("", None),
    ],
)
def test_host_values_are_parsed_strictly(
    value: str, parsed: Optional[tuple[str, Optional[int]]]
) -> None:
    assert split_host(value) == parsed


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:1", "127.0.0.1:7241", "127.9.9.9", "[::1]:7241", "localhost."]
)
@pytest.mark.parametrize("local", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_on_a_loopback_address_loopback_names_are_served(host: str, local: str) -> None:
    assert host_refusal(host, local, NONE) is None


@pytest.mark.parametrize(
    "host",
    [
        "rebind.attacker.example",
        "localhost.attacker.example",
        "127.0.0.1.nip.io",
        "[::2]",
        "192.168.1.20",
        "0.0.0.0",
        "",
        None,
    ],
)
def test_on_a_loopback_address_other_names_are_refused(host: Optional[str]) -> None:
    assert host_refusal(host, "127.0.0.1", NONE)


def test_on_another_address_every_name_is_served_unless_the_setting_lists_them() -> None:
    for host in ["rebind.attacker.example", "chat.example.com:443", "192.168.1.20:7241"]:
        assert host_refusal(host, LAN, NONE) is None
        assert host_refusal(host, None, NONE) is None  # a Unix socket: no address
    assert host_refusal(None, LAN, NONE)  # but a Host there must be
    listed = AllowedHosts.parse("chat.example.com,*.corp.example")
    assert host_refusal("chat.example.com:443", LAN, listed) is None
    assert host_refusal("x.corp.example", LAN, listed) is None
    assert host_refusal("rebind.attacker.example", LAN, listed)
    assert host_refusal("corp.example", LAN, listed)  # the pattern is for subdomains
    assert host_refusal("localhost", LAN, listed)  # listing names makes the list complete


def test_the_setting_widens_the_loopback_case_and_star_serves_any_name() -> None:
    listed = AllowedHosts.parse(" Chat.Example.com , *.corp.example ")
    assert host_refusal("chat.example.com", "127.0.0.1", listed) is None
    assert host_refusal("a.b.corp.example:8443", "127.0.0.1", listed) is None
    assert host_refusal("localhost:7241", "127.0.0.1", listed) is None
    assert host_refusal("chat.example.com.evil.example", "127.0.0.1", listed)
    anything = AllowedHosts.parse("*")
    assert host_refusal("rebind.attacker.example", "127.0.0.1", anything) is None
    assert host_refusal("not a host", "127.0.0.1", anything)  # still a valid host


@pytest.mark.parametrize(
    ("method", "origin", "site", "host", "refused"),
    [
        ("POST", None, None, "127.0.0.1:7241", False),  # curl, the SDKs
        ("POST", "http://127.0.0.1:7241", "same-origin", "127.0.0.1:7241", False),  # the page
        ("POST", "http://localhost", None, "localhost:80", False),  # a default port spelled out
        ("POST", "https://chat.example.com", "same-origin", "127.0.0.1:7241", False),  # listed
        ("POST", "http://evil.example", "cross-site", "127.0.0.1:7241", True),
        ("POST", "http://evil.example", None, "127.0.0.1:7241", True),
        ("POST", "null", None, "127.0.0.1:7241", True),
        ("POST", "http://127.0.0.1:1", "same-site", "127.0.0.1:7241", True),
        ("POST", "https://127.0.0.1:7241", None, "127.0.0.1:7241", False),  # host and port match
        ("POST", "ftp://127.0.0.1:7241", None, "127.0.0.1:7241", True),
        ("POST", None, "cross-site", "127.0.0.1:7241", True),
        ("POST", None, "same-site", "127.0.0.1:7241", True),
        ("POST", None, "none", "127.0.0.1:7241", False),  # typed by the user
        ("DELETE", "http://evil.example", None, "127.0.0.1:7241", True),
        ("PATCH", None, "cross-site", "127.0.0.1:7241", True),
        ("GET", "http://evil.example", "cross-site", "127.0.0.1:7241", False),  # reads: Host rule
    ],
)
def test_cross_site_writes(
    method: str, origin: Optional[str], site: Optional[str], host: str, refused: bool
) -> None:
    allowed = AllowedHosts.parse("chat.example.com,*")
    assert bool(cross_site_refusal(method, origin, site, host, allowed)) is refused


@pytest.mark.parametrize(
    ("content_type", "refused"),
    [
        (None, False),  # the page's /create and /stop, curl -X POST
        ("", False),
        ("application/json", False),
        ("Application/JSON; charset=utf-8", False),
        ("application/merge-patch+json", False),
        ("application/x-www-form-urlencoded", True),
        ("multipart/form-data; boundary=x", True),
        ("text/plain", True),
        ("text/plain+json", True),
        ("application/jsonp", True),
    ],
)
def test_only_json_bodies_are_taken(content_type: Optional[str], refused: bool) -> None:
    assert bool(content_type_refusal("POST", content_type)) is refused
    assert content_type_refusal("GET", content_type) is None


@pytest.mark.parametrize(
    ("content_type", "refused"),
    [
        ("application/octet-stream", False),  # what aiohttp sends with an empty POST
        ("application/json", False),
        ("application/x-www-form-urlencoded", True),  # a form post: refused even empty
        ("multipart/form-data; boundary=x", True),
        ("Text/Plain; charset=utf-8", True),
    ],
)
def test_a_bodyless_write_may_carry_another_type_but_never_a_form_s(
    content_type: str, refused: bool
) -> None:
    assert bool(content_type_refusal("POST", content_type, has_body=False)) is refused
    assert content_type_refusal("POST", "application/octet-stream", has_body=True) is not None


def test_refusal_orders_host_then_origin_then_body_type() -> None:
    form = {"content_type": "text/plain", "origin": "http://evil.example"}
    assert refusal(scope("evil.example", method="POST", **form), NONE)[0] == 400
    assert refusal(scope("localhost", method="POST", **form), NONE)[0] == 403
    assert refusal(scope("localhost", method="POST", content_type="text/plain"), NONE)[0] == 415
    assert refusal(scope("localhost", method="POST", content_type="application/json"), NONE) is None
    two_hosts = scope("localhost")
    two_hosts["headers"].append((b"host", b"evil.example"))
    assert refusal(two_hosts, NONE)[0] == 400
    assert refusal(scope(None), NONE)[0] == 400  # HTTP/1.1 without Host
    assert refusal(scope(None, http_version="1.0"), NONE) is None


def run_guard(
    guard_scope: dict[str, Any], allowed_hosts: Optional[str] = None
) -> tuple[bool, list[dict]]:
    """Send one request through RequestGuard; returns whether the app ran and what was sent."""
    ran = []
    sent: list[dict] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        ran.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(RequestGuard(app, allowed_hosts)(guard_scope, receive, send))
    return bool(ran), sent


def test_the_middleware_on_a_non_loopback_address() -> None:
    ran, sent = run_guard(scope("rebind.attacker.example", server=(LAN, 7241)), "")
    assert ran and sent[0]["status"] == 200
    assert (b"x-content-type-options", b"nosniff") in sent[0]["headers"]
    ran, sent = run_guard(scope("rebind.attacker.example", server=(LAN, 7241)), "chat.example.com")
    assert not ran and sent[0]["status"] == 400
    assert b"rebind.attacker.example" in sent[1]["body"]
    ran, sent = run_guard(scope("chat.example.com", server=(LAN, 7241)), "chat.example.com")
    assert ran


def test_the_route_class_does_not_check_again_what_the_middleware_served() -> None:
    """Under ``burr`` a request of the router passes the middleware, then the route class:
    the second check is skipped only when the first used the same hosts."""
    served: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        served.update(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        return None

    foreign = scope("rebind.attacker.example", server=(LAN, 7241))
    asyncio.run(RequestGuard(app, "")(foreign, receive, send))  # any Host on a LAN address
    assert checked(served, AllowedHosts.parse("")) is None  # (skipped: the same hosts)
    assert checked(served, AllowedHosts.parse("chat.example.com"))[0] == 400  # (checked)
    assert checked(scope("rebind.attacker.example"), NONE)[0] == 400  # (no middleware ran)
    marked = {**scope("rebind.attacker.example"), guard.CHECKED: NONE}
    assert refusal(marked, NONE)[0] == 400 and checked(marked, NONE) is None  # (not again)


def test_the_middleware_reads_the_setting_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BURR_CHATBOT_ALLOWED_HOSTS", "chat.example.com")
    assert run_guard(scope("chat.example.com"))[0]
    assert not run_guard(scope("other.example"))[0]


def test_a_foreign_websocket_is_closed_before_the_app_runs() -> None:
    ws = scope("rebind.attacker.example") | {"type": "websocket"}
    ran, sent = run_guard(ws, "")
    assert not ran and sent == [
        {"type": "websocket.close", "code": 1008, "reason": sent[0]["reason"]}
    ]
    cross = scope("localhost", origin="http://evil.example") | {"type": "websocket"}
    assert not run_guard(cross, "")[0]


def test_validation_errors_keep_no_input_and_encode() -> None:
    exc = RequestValidationError(
        [
            {
                "type": "string_type",
                "loc": ("body", "prompt"),
                "msg": "Input should be a valid string",
                "input": "secret\ud800",
                "ctx": {"error": "x\ud800"},
            },
            {"type": "extra_forbidden", "loc": ("body", "k\ud801", 0), "msg": "Extra", "input": 1},
        ]
    )
    response = validation_error_response(exc)
    assert response.status_code == 422
    body = response.body.decode()
    assert "secret" not in body and "input" not in body and "ctx" not in body
    assert '"loc":["body","k\\\\ud801",0]' in body


def test_the_page_policy_runs_only_its_own_scripts() -> None:
    headers = page_headers(["window.__BURR_DEMO__={};"])
    policy = headers["Content-Security-Policy"]
    assert f"script-src 'self' {script_hash('window.__BURR_DEMO__={};')}" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'self'" in policy
    assert script_hash("") == "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"


def test_a_page_without_strict_csp_keeps_its_inline_scripts_but_not_framing() -> None:
    """A demo that does not declare ``strict_csp`` (a third party's page with inline scripts,
    like tests/fixture_demo_package) is still protected from framing, not broken."""
    headers = page_headers(["x"], strict=False)
    assert headers["Content-Security-Policy"] == (
        "frame-ancestors 'self'; object-src 'none'; base-uri 'self'"
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
