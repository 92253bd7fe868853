"""Web app security pieces: response headers, CSRF tokens, and the subscribe rate limit.

CSRF uses a signed double-submit cookie: the browser holds a random cookie, and every form
carries HMAC(secret, cookie + form name). A forged cross-site POST can neither read the cookie
nor compute the HMAC. On https sites the cookie uses the `__Host-` prefix, so a sibling
subdomain cannot plant one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    """Add security headers to every response (error pages included); refuse huge bodies."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            await self._too_large(send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in security_headers(self.https):
                    if key not in present:
                        headers.append((key, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _too_large(self, send: Send) -> None:
        body = b"Request too large."
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
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


class RateLimiter:
    """At most `limit` hits per key in a sliding window; memory is bounded by `max_keys`."""

    def __init__(self, limit: int, window_seconds: float = 3600.0, max_keys: int = 50_000) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many keys are tracked."""
        return len(self._hits)

    def retry_after(self, key: str, now: float) -> int:
        """Seconds until `key` may try again; 0 when it may go now (without counting a hit)."""
        with self._lock:
            hits = self._prune(key, now)
            if hits is None or len(hits) < self.limit:
                return 0
            return max(1, int(hits[0] + self.window - now) + 1)

    def hit(self, key: str, now: float) -> None:
        with self._lock:
            hits = self._prune(key, now)
            if hits is None:
                hits = self._hits[key] = deque()
                while len(self._hits) > self.max_keys:
                    self._hits.popitem(last=False)
            hits.append(now)
            self._hits.move_to_end(key)

    def _prune(self, key: str, now: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits
