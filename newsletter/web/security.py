"""Web app security pieces: response headers, the request body cap, CSRF tokens, and what
the sign-up rate limits count (a client's network, a mailbox with its aliases folded).

CSRF uses a signed double-submit cookie: the browser holds a random cookie, and every form
carries HMAC(secret, cookie + form name). A forged cross-site POST can neither read the cookie
nor compute the HMAC. On https sites the cookie uses the `__Host-` prefix, so a sibling
subdomain cannot plant one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.sources.library import MAX_LIBRARY_BYTES

# Pages never need inline script; the one optional script (timezone prefill) is same-origin.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# A digest preview is an e-mail: its styles are inline by design, and it runs no script.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
MAX_BODY_BYTES = 64 * 1024
# The manage page's library upload: an export up to MAX_LIBRARY_BYTES and the form around it.
MAX_UPLOAD_BYTES = MAX_LIBRARY_BYTES + 64 * 1024
_UPLOAD_PATH = re.compile(r"/manage/[^/]+/import")
_UPLOAD_TOO_LARGE = (
    f"The file is too large: at most {MAX_LIBRARY_BYTES // 1024 // 1024} MB can be imported at "
    "once. Export a part of your library (e.g. one collection) and import that."
)


def body_limit(path: str) -> tuple[int, str]:
    """The most a request to `path` may send, and what a larger one is told."""
    if _UPLOAD_PATH.fullmatch(path):
        return MAX_UPLOAD_BYTES, _UPLOAD_TOO_LARGE
    return MAX_BODY_BYTES, "Request too large."


class BodyTooLarge(Exception):
    """The request body grew past MAX_BODY_BYTES while it was being read."""


def security_headers(https: bool) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (a route may set its own CSP first)."""
    headers = [
        (b"content-security-policy", PAGE_CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        # Token URLs must not leak to arXiv or anyone else through Referer.
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]
    if https:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


class SecurityHeadersMiddleware:
    """Add security headers to every response (error pages included); refuse huge bodies.

    A body is refused up front when its Content-Length is too big, and otherwise counted as it
    arrives: a chunked body (no Content-Length) is cut off at the cap, before anyone parses it.
    A response to a request whose body was not read to the end closes the connection, so the
    server does not go on reading (and discarding) whatever the client still sends.
    """

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = dict(scope.get("headers", []))
        length = request_headers.get(b"content-length", b"0")
        cap, refusal = body_limit(str(scope.get("path", "")))
        if length.isdigit() and int(length) > cap:
            await self._too_large(send, refusal)
            return
        has_body = b"transfer-encoding" in request_headers or length not in (b"", b"0")
        received, body_read, started = 0, not has_body, False

        async def capped_receive() -> Message:
            nonlocal received, body_read
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge
                body_read = body_read or not message.get("more_body", False)
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = self._with_headers(message, close=not body_read)
            await send(message)

        try:
            await self.app(scope, capped_receive, send_with_headers)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(send, refusal)

    def _with_headers(self, start: Message, *, close: bool) -> Message:
        headers = list(start.get("headers", []))
        present = {k.lower() for k, _ in headers}
        headers += [(k, v) for k, v in security_headers(self.https) if k not in present]
        if close and b"connection" not in present:
            headers.append((b"connection", b"close"))
        return {**start, "headers": headers}

    async def _too_large(self, send: Send, refusal: str) -> None:
        body = refusal.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is never read: the connection cannot be reused.
                    (b"connection", b"close"),
                    *security_headers(self.https),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Csrf:
    """Signed double-submit cookie tokens, bound to a form name."""

    def __init__(self, secret: str, *, https: bool) -> None:
        self._key = hashlib.sha256(("newsletter.csrf|" + secret).encode()).digest()
        self.https = https
        self.cookie_name = "__Host-csrf" if https else "csrf"

    def cookie_value(self, cookies: MutableMapping[str, str] | dict[str, str]) -> str | None:
        value = cookies.get(self.cookie_name)
        return value if value and 20 <= len(value) <= 64 and value.isascii() else None

    @staticmethod
    def new_cookie_value() -> str:
        return secrets.token_urlsafe(32)

    def token(self, cookie: str, form: str) -> str:
        mac = hmac.new(self._key, f"{cookie}|{form}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def valid(self, cookie: str | None, form: str, submitted: Any) -> bool:
        if not cookie or not isinstance(submitted, str) or not submitted:
            return False
        return hmac.compare_digest(self.token(cookie, form), submitted)

    def cookie_kwargs(self) -> dict[str, Any]:
        return {
            "key": self.cookie_name,
            "path": "/",
            "httponly": True,
            "samesite": "lax",
            "secure": self.https,
            "max_age": 30 * 86_400,  # a form left open in a tab still submits after a restart
        }


# Providers that deliver "a.b.c@" to "abc@", with the other domains they answer for.
DOTS_IGNORED = {"gmail.com"}
SAME_MAILBOXES = {"googlemail.com": "gmail.com"}


def mailbox_key(address: str) -> str:
    """The mailbox an address lands in, as far as a rate limit can tell: case folded, any
    "+tag" dropped (most providers deliver victim+1@ to victim@), and dots dropped where the
    provider ignores them. Only for counting: the address itself is stored as typed."""
    local, _, domain = address.rpartition("@")
    domain = domain.casefold().rstrip(".")
    domain = SAME_MAILBOXES.get(domain, domain)
    local = local.casefold().split("+", 1)[0]
    if domain in DOTS_IGNORED:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def client_network(host: str) -> str:
    """What a per-client limit counts: one IPv4 address, or one IPv6 /64 (a single line or
    host usually owns a whole /64, so rotating addresses inside it must not reset the count)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host  # no address (e.g. "unknown"): one shared bucket
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
