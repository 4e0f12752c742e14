"""Which requests the server answers at all, and the headers that keep its page to itself.

- **Host** (against DNS rebinding): a connection that arrived on a loopback address is served
  only for a loopback name in ``Host`` (``localhost``, a ``127.x.x.x`` literal, ``[::1]``, any
  port), plus the names of ``BURR_CHATBOT_ALLOWED_HOSTS``; on any other address every name is
  served unless that setting lists the names.
- **Cross-site writes**: a state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin``
  is neither the request's own host nor a listed name, or that a browser marks ``cross-site`` or
  ``same-site`` in ``Sec-Fetch-Site`` without such an ``Origin``, is refused (403); one with a
  body type other than JSON (a form post) is refused too (415).
- **Validation errors** are answered without the values the request sent.
- **Page headers**: a Content-Security-Policy and friends for the page and its assets.

:class:`RequestGuard` applies the checks to a whole ASGI app (Burr's server); the router's
route class calls :func:`refusal` itself, so the checks hold in any app that includes it.
"""

import base64
import hashlib
import ipaddress
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_HOSTS_VARIABLE = "BURR_CHATBOT_ALLOWED_HOSTS"
"""The environment variable :class:`RequestGuard` reads when given no allowed hosts."""

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""The methods a cross-site request may not use."""

NOSNIFF = ("x-content-type-options", "nosniff")


@dataclass(frozen=True)
class AllowedHosts:
    """The host names of ``BURR_CHATBOT_ALLOWED_HOSTS``: exact names, ``*.suffix`` patterns
    (any name ending in ``.suffix``), or ``*`` for any name."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    any: bool = False

    @classmethod
    def parse(cls, value: Optional[str]) -> "AllowedHosts":
        """The hosts of a comma-separated list (an empty or missing value lists none)."""
        names: set[str] = set()
        suffixes: list[str] = []
        anything = False
        for entry in (value or "").split(","):
            entry = entry.strip().lower().rstrip(".")
            if entry == "*":
                anything = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])  # ".example.com"
            elif entry:
                names.add(entry)
        return cls(frozenset(names), tuple(suffixes), anything)

    def lists(self, hostname: str) -> bool:
        """Whether ``hostname`` is listed by name or pattern (``*`` does not count)."""
        return hostname in self.names or any(hostname.endswith(s) for s in self.suffixes)

    @property
    def configured(self) -> bool:
        return self.any or bool(self.names) or bool(self.suffixes)


def split_host(value: str) -> Optional[tuple[str, Optional[int]]]:
    """``(hostname, port)`` of a ``Host`` value (``name``, ``name:port``, ``[v6]:port``),
    lower-cased, without a trailing dot; ``None`` when it is not a valid host."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        hostname, rest = value[: end + 1], value[end + 1 :]
        try:
            ipaddress.IPv6Address(hostname[1:-1])
        except ValueError:
            return None
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        hostname, _, port_text = value.partition(":")
        port_text = port_text if ":" in value else None
        hostname = hostname.rstrip(".")
        if not hostname or not all(c.isascii() and (c.isalnum() or c in "-._") for c in hostname):
            return None
    if port_text is None:
        return hostname, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return hostname, int(port_text)


def is_loopback_address(address: Optional[str]) -> bool:
    """Whether a local socket address (``scope["server"][0]``) is a loopback one."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def is_loopback_name(hostname: str) -> bool:
    """``localhost``, a ``127.x.x.x`` literal or ``[::1]``: names only this machine answers."""
    if hostname == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(hostname[1:-1] if hostname.startswith("[") else hostname)
    except ValueError:
        return False
    return ip.is_loopback


def host_refusal(
    host: Optional[str], local_address: Optional[str], allowed: AllowedHosts
) -> Optional[str]:
    """Why a request for ``host`` that arrived on ``local_address`` is not served, or None."""
    if host is None:
        return "The request has no Host header."
    parsed = split_host(host)
    if parsed is None:
        return "The Host header is not a valid host."
    hostname = parsed[0]
    if allowed.any or allowed.lists(hostname):
        return None
    if is_loopback_address(local_address):
        if is_loopback_name(hostname):
            return None
    elif not allowed.configured:
        return None
    return (
        f"This server does not answer to the host {hostname!r}. Add it to "
        f"{ALLOWED_HOSTS_VARIABLE} to serve it."
    )


def origin_allowed(origin: str, host: Optional[str], allowed: AllowedHosts) -> bool:
    """Whether a browser's ``Origin`` is this server itself (its host and port are the request's
    ``Host``) or one of the listed names (``*`` does not count, ``null`` never does)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    netloc = parts.netloc.lower()
    if host is not None and netloc == host.strip().lower():
        return True
    if host is not None and port is None:  # "http://h" is "h:80", as Host may spell it
        default = 443 if parts.scheme == "https" else 80
        if f"{netloc}:{default}" == host.strip().lower():
            return True
    hostname = parts.hostname.rstrip(".")
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return allowed.lists(hostname)


def cross_site_refusal(
    method: str,
    origin: Optional[str],
    fetch_site: Optional[str],
    host: Optional[str],
    allowed: AllowedHosts,
) -> Optional[str]:
    """Why a state-changing request is refused as cross-site, or None (a request without
    ``Origin`` nor ``Sec-Fetch-Site``, as curl and the SDKs send, is not cross-site)."""
    if method not in STATE_CHANGING:
        return None
    if origin is not None:
        if origin_allowed(origin, host, allowed):
            return None
        return f"Cross-site {method} refused: the origin {origin!r} may not change anything here."
    if fetch_site in ("cross-site", "same-site"):
        return f"Cross-site {method} refused: the request came from another site."
    return None


def is_json_type(content_type: str) -> bool:
    """Whether a ``Content-Type`` is JSON (``application/json`` or a ``+json`` type)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
"""The body types a page of any site may send without asking first (CORS "simple" requests)."""


def content_type_refusal(
    method: str, content_type: Optional[str], has_body: bool = True
) -> Optional[str]:
    """Why a state-changing request's body type is refused, or None: a body must be JSON, and
    a form's type is refused even without a body (a form post). A request without a body may
    carry another type (some clients label an empty POST ``application/octet-stream``)."""
    if method not in STATE_CHANGING or not content_type or not content_type.strip():
        return None
    if is_json_type(content_type):
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not has_body and media_type not in FORM_TYPES:
        return None
    return f"Request bodies must be JSON (Content-Type: application/json), not {content_type!r}."


def _has_body(headers: Mapping[str, list[str]]) -> bool:
    length = _one(headers, "content-length")
    if length is not None and length.strip().isdigit():
        return int(length) > 0
    return length is not None or _one(headers, "transfer-encoding") is not None


def _headers(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


def refusal(scope: Scope, allowed: AllowedHosts) -> Optional[tuple[int, str]]:
    """The status and reason a request (an ASGI ``http`` or ``websocket`` scope) is refused
    with, or None to serve it: a foreign Host (400), a cross-site write (403), a body type that
    is not JSON (415)."""
    headers = _headers(scope)
    hosts = headers.get("host", [])
    server = scope.get("server")
    local_address = server[0] if server else None
    if len(hosts) > 1:
        return 400, "The request has more than one Host header."
    host = hosts[0] if hosts else None
    if host is None and scope.get("http_version") == "1.0":
        pass  # HTTP/1.0 may leave Host out; no browser does
    else:
        reason = host_refusal(host, local_address, allowed)
        if reason:
            return 400, reason
    method = "POST" if scope["type"] == "websocket" else scope.get("method", "GET")
    reason = cross_site_refusal(
        method,
        _one(headers, "origin"),
        _one(headers, "sec-fetch-site"),
        host,
        allowed,
    )
    if reason:
        return 403, reason
    if scope["type"] == "http":
        reason = content_type_refusal(method, _one(headers, "content-type"), _has_body(headers))
        if reason:
            return 415, reason
    return None


def _one(headers: Mapping[str, list[str]], name: str) -> Optional[str]:
    values = headers.get(name)
    return values[0] if values else None


def refused_response(status: int, reason: str) -> JSONResponse:
    """The JSON answer of a refused request."""
    return JSONResponse({"detail": reason}, status_code=status, headers=dict([NOSNIFF]))


CHECKED = "burr_chatbot.guard_checked"
"""The ASGI scope key :class:`RequestGuard` sets to the hosts it checked a served request
against; :func:`checked` then answers without checking again."""


def checked(scope: Scope, allowed: AllowedHosts) -> Optional[tuple[int, str]]:
    """:func:`refusal`, unless :class:`RequestGuard` already served this request against the
    same hosts (under ``burr`` every request of the router passes both)."""
    if scope.get(CHECKED) == allowed:
        return None
    return refusal(scope, allowed)


class RequestGuard:
    """ASGI middleware: answers a request :func:`refusal` refuses with its JSON error, before
    anything of the app runs, and adds ``X-Content-Type-Options: nosniff`` to every answer.

    ``allowed_hosts`` is the comma-separated list of ``BURR_CHATBOT_ALLOWED_HOSTS``, read from
    the environment when not given.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Optional[str] = None) -> None:
        self.app = app
        if allowed_hosts is None:
            allowed_hosts = os.environ.get(ALLOWED_HOSTS_VARIABLE, "")
        self.allowed = AllowedHosts.parse(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refused = refusal(scope, self.allowed)
        if refused is None:
            scope[CHECKED] = self.allowed  # (the router's route class need not check again)
        else:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": refused[1][:120]})
            else:
                await refused_response(*refused)(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, with_headers(send, [NOSNIFF]))


def with_headers(send: Send, headers: Iterable[tuple[str, str]]) -> Send:
    """``send``, adding ``headers`` (those the response does not set itself) to its start."""
    extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", ())}
            added = [(n, v) for n, v in extra if n not in present]
            if added:
                message = {**message, "headers": [*message.get("headers", ()), *added]}
        await send(message)

    return sending


# -- validation errors ------------------------------------------------------------------------


def _text(value: Any) -> Any:
    """A string that can be encoded as UTF-8 (a lone surrogate becomes ``\\ud800``)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return _text(str(value))


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors with only their ``type``, ``loc`` and ``msg``: never the
    ``input`` (or the ``ctx``) the request sent, which may be anything, even unencodable."""
    cleaned = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        cleaned.append(
            {
                "type": _text(error.get("type", "value_error")),
                "loc": [_text(part) for part in error.get("loc", ())],
                "msg": _text(error.get("msg", "Invalid value.")),
            }
        )
    return cleaned


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """The 422 answer of a validation error: what was wrong, where, without the input."""
    return JSONResponse(
        {"detail": validation_errors(exc.errors())}, status_code=422, headers=dict([NOSNIFF])
    )


async def handle_validation_error(_: Any, exc: Exception) -> JSONResponse:
    """An exception handler for :class:`RequestValidationError` (for a whole app)."""
    assert isinstance(exc, RequestValidationError)
    return validation_error_response(exc)


# -- page headers -----------------------------------------------------------------------------


def script_hash(script: str) -> str:
    """The CSP source (``'sha256-...'``) that lets one inline script with this text run."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def page_headers(inline_scripts: Sequence[str] = (), strict: bool = True) -> dict[str, str]:
    """The headers of a demo's page and of its assets: only this server may frame it,
    ``nosniff``, a same-origin referrer policy; and, ``strict``, a Content-Security-Policy
    that runs only the page's own script files and the given inline scripts (by hash)."""
    directives = ["frame-ancestors 'self'", "object-src 'none'", "base-uri 'self'"]
    if strict:
        scripts = " ".join(["'self'", *(script_hash(s) for s in inline_scripts)])
        directives = [
            "default-src 'self'",
            f"script-src {scripts}",
            "worker-src 'self'",
            "connect-src 'self'",
            # Image answers (the chat item type "image") may be on another https host; images
            # inside markdown answers are links, never loaded (the page's Markdown component).
            "img-src 'self' data: https:",
            "style-src 'self'",
            "form-action 'self'",
            *directives,
        ]
    return {
        "Content-Security-Policy": "; ".join(directives),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "same-origin",
    }


class WithHeaders:
    """An ASGI app that adds fixed headers to every answer of another one (a StaticFiles)."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str]) -> None:
        self.app = app
        self.headers = [(name.lower(), value) for name, value in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, with_headers(send, self.headers))
