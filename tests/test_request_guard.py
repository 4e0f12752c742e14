"""Which requests the real servers answer: a foreign Host (DNS rebinding) and a cross-site write
are refused before anything runs, and nothing is written; the page's own requests and clients
that send no Origin (curl, the SDKs) keep working; a lone surrogate is a 422; the page and its
assets carry their security headers.

Served by the real ``burr`` command (the startup hook puts the guard in front of Burr's own API
too), by ``burr-streaming-chatbot`` with ``BURR_CHATBOT_ALLOWED_HOSTS``, and by the router alone
included in a plain FastAPI app under uvicorn (the route class does the checks there).
"""

import base64
import hashlib
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import API, ARTIFACTS, PROJECT, ChatServer, free_port, server_env, start_server

pytestmark = pytest.mark.e2e  # real servers in subprocesses

FOREIGN = "rebind.attacker.example"
EVIL = "http://evil.example"
PAGE = "/demos/streaming-chatbot/"


def snapshot(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` and its size (SQLite's -wal and -shm files left out)."""
    return {
        str(path.relative_to(folder)): path.stat().st_size
        for path in folder.rglob("*")
        if path.is_file() and "-wal" not in path.name and "-shm" not in path.name
    }


def entries(folder: Path) -> set[str]:
    """Every file and folder under ``folder`` (a new empty folder counts too)."""
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if "-wal" not in p.name and "-shm" not in p.name
    }


@pytest.fixture(scope="module")
def burr_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guard-burr")


@pytest.fixture(scope="module")
def burr(burr_storage: Path) -> Iterator[ChatServer]:
    """The ``burr`` command on 127.0.0.1, the offline model slowed so an answer can be stopped."""
    server = start_server(
        "burr", burr_storage, None, "guard-burr", BURR_CHATBOT_OFFLINE_DELAY_MS="20"
    )
    yield server
    server.close()


def assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (
        response.request.url,
        response.status_code,
        response.text[:300],
    )
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


# -- DNS rebinding: a foreign Host ------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        FOREIGN,
        f"{FOREIGN}:7241",
        "localhost.attacker.example",
        "127.0.0.1.nip.io",
        "[::2]",
        "bad host",
    ],
)
def test_a_foreign_host_gets_400_from_burr_and_nothing_runs(
    burr: ChatServer, burr_storage: Path, host: str
) -> None:
    before = entries(burr_storage)
    for method, path in [
        ("GET", "/api/v0/projects"),  # Burr's own API
        ("GET", "/"),  # Burr's own page
        ("GET", f"{API}/conversations/junkproj1"),
        ("GET", f"{API}/history/junkproj2/a"),
        ("GET", f"{API}/model"),
        ("GET", f"{API}/me"),
        ("GET", f"{API}/status"),
        ("GET", f"{API}/events/junkproj4/a"),
        ("GET", f"{API}/stream/junkproj5/a"),
        ("GET", f"{API}/approvals/junkproj6/a"),
        ("GET", f"{API}/notes/junkproj7"),
        ("GET", PAGE),
        ("POST", f"{API}/create/junkproj3/a"),
        ("POST", f"{API}/approve/junkproj8/a"),
        ("GET", f"{API}/models"),
        ("GET", f"{API}/settings/junkproj9/a"),
        ("PATCH", f"{API}/settings/junkproj10/a"),
        ("GET", f"{API}/feedback/junkproj12/a"),
        ("POST", f"{API}/feedback/junkproj13/a"),
        ("GET", f"{API}/export/junkproj14/a?format=json"),
        ("PATCH", f"{API}/conversations/junkproj15/a"),
        ("DELETE", f"{API}/conversations/junkproj16/a"),
    ]:
        response = burr.client.request(method, path, headers={"host": host})
        assert_refused(response, 400)
    assert entries(burr_storage) == before
    assert not list(burr_storage.glob("junkproj*"))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.3.4.5", "LOCALHOST."])
def test_loopback_names_with_any_port_are_served(burr: ChatServer, host: str) -> None:
    for name in (host, f"{host}:{burr.port}", f"{host}:80"):
        assert burr.client.get("/api/v0/projects", headers={"host": name}).status_code == 200
        assert burr.client.get(f"{API}/model", headers={"host": name}).status_code == 200
        assert burr.client.get(PAGE, headers={"host": name}).status_code == 200


# -- cross-site writes ------------------------------------------------------------------------

FORM = {"content-type": "application/x-www-form-urlencoded"}
CROSS_SITE_REQUESTS = {
    "form-with-origin": ({**FORM, "origin": EVIL, "sec-fetch-site": "cross-site"}, b"a=1", 403),
    "text-plain-with-origin": ({"content-type": "text/plain", "origin": EVIL}, b"{}", 403),
    "null-origin": ({**FORM, "origin": "null"}, b"", 403),
    "same-site-other-port": (
        {"origin": "http://127.0.0.1:1", "sec-fetch-site": "same-site"},
        b"",
        403,
    ),
    "fetch-site-without-origin": ({"sec-fetch-site": "cross-site"}, b"", 403),
    "json-from-evil": ({"content-type": "application/json", "origin": EVIL}, b"{}", 403),
    # A browser that sends neither header (an old one): the form's body type gives it away.
    "form-without-origin": (FORM, b"a=1", 415),
    "multipart-without-origin": (
        {"content-type": "multipart/form-data; boundary=x"},
        b"--x--\r\n",
        415,
    ),
    "text-plain-without-origin": ({"content-type": "text/plain"}, b'{"prompt": "hi"}', 415),
}


@pytest.mark.parametrize("case", CROSS_SITE_REQUESTS)
def test_cross_site_writes_are_refused_and_write_nothing(
    burr: ChatServer, burr_storage: Path, case: str
) -> None:
    headers, body, status = CROSS_SITE_REQUESTS[case]
    project = f"csrf-{case}"
    before = entries(burr_storage)
    for path in [
        f"{API}/create/{project}/a",
        f"{API}/response/{project}/a",
        f"{API}/fork/{project}/a",
        f"{API}/stop/{project}/a",
        f"{API}/approve/{project}/a",
        f"{API}/feedback/{project}/a",
        f"{API}/ag-ui/{project}",
        f"/api/v0/counter/create/{project}/a",  # one of Burr's own routers: it writes a folder
        f"/api/v0/{project}/a/__none__/0/annotations",  # Burr's own API
    ]:
        assert_refused(burr.client.post(path, content=body, headers=headers), status)
    settings = f"{API}/settings/{project}/a"
    assert_refused(burr.client.patch(settings, content=body, headers=headers), status)
    for method, path in [
        ("PATCH", f"{API}/conversations/{project}/a"),
        ("DELETE", f"{API}/conversations/{project}/a"),
    ]:
        assert_refused(burr.client.request(method, path, content=body, headers=headers), status)
    assert entries(burr_storage) == before
    assert not (burr_storage / project).exists()


def test_without_the_guard_burrs_own_router_writes_on_a_form_post(
    burr: ChatServer, burr_storage: Path
) -> None:
    """What the cross-site test stands for: the same bodyless POST, as curl sends it, does write
    (so "nothing written" above is the guard's doing, not an endpoint that writes nothing)."""
    assert burr.client.post("/api/v0/counter/create/csrf-control/a").status_code == 200
    assert burr.client.post(f"{API}/create/csrf-control/b").status_code == 200
    assert (burr_storage / "csrf-control").is_dir()


def test_a_cross_site_stop_does_not_stop_the_answer(burr: ChatServer) -> None:
    thread, events = burr.turn_in_background("stop-target", "Tell me something long?")
    deadline = time.monotonic() + 20
    while not any(e.get("type") == "delta" for e in events) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(e.get("type") == "delta" for e in events), events
    refused = burr.client.post(
        f"{API}/stop/{PROJECT}/stop-target",
        headers={**FORM, "origin": EVIL, "sec-fetch-site": "cross-site"},
    )
    assert_refused(refused, 403)
    thread.join(timeout=30)
    assert events[-1]["type"] == "message"
    assert not events[-1]["value"]["item"].get("interrupted")


def test_the_pages_own_requests_and_clients_without_origin_still_work(
    burr: ChatServer, burr_storage: Path
) -> None:
    same_origin = {"origin": burr.url, "sec-fetch-site": "same-origin"}
    # The page: /create and /stop send no body and no Content-Type; prompts are JSON.
    assert burr.client.post(f"{API}/create/{PROJECT}/same-origin", headers=same_origin).json() == (
        "same-origin"
    )
    with burr.client.stream(
        "POST",
        f"{API}/response/{PROJECT}/same-origin",
        json={"prompt": "hello"},
        headers={**same_origin, "accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        stream = response.read().decode()
        assert '"type":"chat_history"' in stream and '"type":"error"' not in stream
    stop = burr.client.post(f"{API}/stop/{PROJECT}/same-origin", headers=same_origin)
    assert stop.status_code == 200 and stop.json() == {"stopped": False}
    fork = burr.client.post(
        f"{API}/fork/{PROJECT}/same-origin",
        json={"at": 0},
        headers={**same_origin, "content-type": "application/json; charset=utf-8"},
    )
    assert fork.status_code == 200, fork.text
    # A page served as http://localhost:port sends that origin with Host localhost:port.
    localhost = f"localhost:{burr.port}"
    response = burr.client.post(
        f"{API}/create/{PROJECT}/via-localhost",
        headers={
            "host": localhost,
            "origin": f"http://{localhost}",
            "sec-fetch-site": "same-origin",
        },
    )
    assert response.status_code == 200, response.text
    # Burr's own UI saves an annotation with a JSON body, same-origin.
    annotation = {"span_id": None, "step_name": "prompt", "tags": ["ok"], "observations": []}
    saved = burr.client.post(
        f"/api/v0/{PROJECT}/same-origin/__none__/0/annotations",
        json=annotation,
        headers=same_origin,
    )
    assert saved.status_code == 200, saved.text
    # curl and the SDKs: no Origin, no Sec-Fetch-Site.
    assert burr.client.post(f"{API}/create/{PROJECT}/no-origin").status_code == 200
    assert burr.client.get(f"{API}/history/{PROJECT}/same-origin").status_code == 200


# -- validation errors ------------------------------------------------------------------------

LONE_SURROGATE = b'{"prompt": "x\\ud800y"}'  # the JSON escape of a lone surrogate, as sent


def test_a_lone_surrogate_is_a_422_that_echoes_nothing(
    burr: ChatServer, burr_storage: Path
) -> None:
    before = snapshot(burr_storage)
    response = burr.client.post(
        f"{API}/response/{PROJECT}/surrogate",
        content=LONE_SURROGATE,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "prompt"] and detail[0]["msg"]
    assert all(set(error) == {"type", "loc", "msg"} for error in detail), detail
    # Also through Burr's own API (the app's handler), and a field name with one.
    burrs = burr.client.post(
        f"/api/v0/{PROJECT}/surrogate/__none__/0/annotations",
        content=b'{"step_name": "x", "tags": "\\udfff", "observations": [], "span_id": null}',
        headers={"content-type": "application/json"},
    )
    assert burrs.status_code == 422, burrs.text
    assert "input" not in burrs.json()["detail"][0]
    keyed = burr.client.post(
        f"{API}/fork/{PROJECT}/surrogate",
        content=b'{"at": "\\ud800", "\\ud801": 1}',
        headers={"content-type": "application/json"},
    )
    assert keyed.status_code == 422, keyed.text
    assert "\\ud800" not in keyed.text and "input" not in keyed.json()["detail"][0]
    # The connection was not reset: the same client goes on.
    assert burr.client.get(f"{API}/model").status_code == 200
    assert snapshot(burr_storage) == before
    assert not (burr_storage / PROJECT / "surrogate").exists()


# -- page headers -----------------------------------------------------------------------------


def csp(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def test_the_page_and_its_assets_carry_the_security_headers(burr: ChatServer) -> None:
    page = burr.client.get(PAGE)
    assert page.status_code == 200
    policy = csp(page)
    inline = re.search(r"<script>(.*?)</script>", page.text, re.S)
    assert inline and "__BURR_DEMO__" in inline.group(1)
    digest = base64.b64encode(hashlib.sha256(inline.group(1).encode()).digest()).decode()
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert policy["frame-ancestors"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"] and policy["worker-src"] == ["'self'"]
    assert "'unsafe-inline'" not in " ".join(policy["style-src"] + policy["script-src"])
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-frame-options"] == "SAMEORIGIN"

    assets = re.findall(r'(?:src|href)="\./(assets/[^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        response = burr.client.get(PAGE + asset)
        assert response.status_code == 200, asset
        assert csp(response)["frame-ancestors"] == ["'self'"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    # API answers are nosniff too (ours and Burr's).
    for path in [f"{API}/model", "/api/v0/projects", f"{API}/no-such-endpoint"]:
        assert burr.client.get(path).headers["x-content-type-options"] == "nosniff", path


# -- BURR_CHATBOT_ALLOWED_HOSTS, under burr-streaming-chatbot ---------------------------------


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChatServer, Path]]:
    storage = tmp_path_factory.mktemp("guard-listed")
    server = start_server(
        "cli",
        storage,
        None,
        "guard-listed",
        BURR_CHATBOT_ALLOWED_HOSTS="chat.example.com, *.corp.example",
    )
    yield server, storage
    server.close()


def test_allowed_hosts_widen_the_loopback_case(listed: tuple[ChatServer, Path]) -> None:
    server, storage = listed
    for host in [
        "chat.example.com",
        "chat.example.com:443",
        "a.corp.example",
        "x.y.corp.example",
        "127.0.0.1",
        f"localhost:{server.port}",
    ]:
        for path in ["/api/v0/projects", f"{API}/model", PAGE]:
            assert server.client.get(path, headers={"host": host}).status_code == 200, (host, path)
    before = entries(storage)
    for host in [FOREIGN, "corp.example", "chat.example.com.evil.example"]:
        assert_refused(server.client.get(f"{API}/conversations/junk", headers={"host": host}), 400)
    # The listed name's pages may write, from the proxy's public name; other sites may not.
    public = {
        "host": "127.0.0.1",
        "origin": "https://chat.example.com",
        "sec-fetch-site": "same-origin",
    }
    assert server.client.post(f"{API}/create/{PROJECT}/public", headers=public).status_code == 200
    for origin in [EVIL, "https://corp.example"]:
        assert_refused(
            server.client.post(f"{API}/create/listed-evil/a", headers={"origin": origin}), 403
        )
    assert not (storage / "listed-evil").exists()
    assert {e for e in entries(storage) - before if "junk" in e} == set()


# -- the router alone, included in a plain FastAPI app ----------------------------------------

APP = """
from fastapi import FastAPI
from burr_streaming_chatbot.router import API_PREFIX, create_router

app = FastAPI()
app.include_router(create_router(), prefix=API_PREFIX)
"""


def serve_router_app(tmp_path: Path, name: str, **extra: str) -> ChatServer:
    (tmp_path / "plain_app.py").write_text(APP)
    port = free_port()
    env = server_env(tmp_path / "storage", None, PYTHONPATH=str(tmp_path), **extra)
    command = [sys.executable, "-m", "uvicorn", "plain_app:app", "--port", str(port)]
    return ChatServer(command, env, port, ARTIFACTS / "logs" / f"{name}.log").start()


def test_the_router_alone_refuses_foreign_hosts_cross_site_writes_and_surrogates(
    tmp_path: Path,
) -> None:
    server = serve_router_app(tmp_path, "guard-router-alone")
    storage = tmp_path / "storage"
    try:
        before = entries(storage)
        for method, path in [
            ("GET", f"{API}/conversations/junk"),
            ("GET", f"{API}/history/junk/a"),
            ("POST", f"{API}/create/junk/a"),
        ]:
            assert_refused(server.client.request(method, path, headers={"host": FOREIGN}), 400)
        for headers in [{"origin": EVIL}, {"sec-fetch-site": "cross-site"}]:
            assert_refused(
                server.client.post(f"{API}/create/junk/a", headers={**headers, **FORM}), 403
            )
        assert_refused(server.client.post(f"{API}/create/junk/a", headers=FORM), 415)
        surrogate = server.client.post(
            f"{API}/response/{PROJECT}/s",
            content=LONE_SURROGATE,
            headers={"content-type": "application/json"},
        )
        assert surrogate.status_code == 422 and "input" not in surrogate.json()["detail"][0]
        assert entries(storage) == before
        assert server.client.post(f"{API}/create/{PROJECT}/fine").status_code == 200
        assert server.client.get(f"{API}/model").headers["x-content-type-options"] == "nosniff"
    finally:
        server.close()


def test_the_router_alone_with_any_host_allowed(tmp_path: Path) -> None:
    """``*`` serves every Host, but does not let every origin write."""
    server = serve_router_app(tmp_path, "guard-router-any", BURR_CHATBOT_ALLOWED_HOSTS="*")
    try:
        assert server.client.get(f"{API}/model", headers={"host": FOREIGN}).status_code == 200
        response = server.client.post(f"{API}/create/{PROJECT}/a", headers={"host": FOREIGN})
        assert response.status_code == 200
        assert_refused(
            server.client.post(
                f"{API}/create/{PROJECT}/b", headers={"host": FOREIGN, "origin": EVIL}
            ),
            403,
        )
        same = {"host": FOREIGN, "origin": f"http://{FOREIGN}"}
        assert server.client.post(f"{API}/create/{PROJECT}/c", headers=same).status_code == 200
    finally:
        server.close()


# -- the other ways Burr's app is served ------------------------------------------------------


def test_burr_streaming_chatbot_guards_burrs_app_with_the_hook_off(tmp_path: Path) -> None:
    """``burr-streaming-chatbot`` mounts the demos (and so the guard) itself, so it holds with
    ``BURR_DEMOS_AUTOLOAD=0`` too."""
    server = start_server("cli", tmp_path, None, "guard-cli-no-hook", BURR_DEMOS_AUTOLOAD="0")
    try:
        assert_refused(server.client.get("/api/v0/projects", headers={"host": FOREIGN}), 400)
        assert_refused(server.client.post(f"{API}/create/x/a", headers={"origin": EVIL}), 403)
        assert server.client.get("/api/v0/projects").status_code == 200
    finally:
        server.close()


PARENT = """
from fastapi import FastAPI
from burr.tracking.server.run import mount_burr_ui

app = FastAPI()
mount_burr_ui(app, path="/burr")
"""


def test_a_burr_ui_mounted_into_an_app_is_guarded(tmp_path: Path) -> None:
    """``mount_burr_ui`` (wrapped by the startup hook) puts the guard in front of the mounted
    Burr app: its API, the demos' API and pages."""
    (tmp_path / "parent_app.py").write_text(PARENT)
    port = free_port()
    env = server_env(tmp_path / "storage", None, PYTHONPATH=str(tmp_path))
    command = [sys.executable, "-m", "uvicorn", "parent_app:app", "--port", str(port)]
    server = ChatServer(
        command, env, port, ARTIFACTS / "logs" / "guard-mounted.log", api="/burr" + API
    )
    server.start()
    try:
        for path in ["/burr/api/v0/projects", f"/burr{API}/model", f"/burr{PAGE}"]:
            assert_refused(server.client.get(path, headers={"host": FOREIGN}), 400)
            assert server.client.get(path).status_code == 200, path
        assert_refused(server.client.post(f"/burr{API}/create/x/a", headers={"origin": EVIL}), 403)
    finally:
        server.close()
