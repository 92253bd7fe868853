"""The one HTTP client every source uses: timeouts, retries, conditional GET, politeness.

- Retries 429/5xx answers and connection errors with exponential backoff, honouring
  `Retry-After` (seconds or an HTTP date) and Hugging Face's `RateLimit: ...;t=SECONDS`.
- Conditional GET: pass the stored ETag / Last-Modified; a 304 comes back as `not_modified`.
- Politeness: `min_interval` seconds between requests to one host (arXiv asks for 3 s).
- The clock and `sleep` are parameters, so tests never really wait.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType

import httpx

from newsletter import __version__
from newsletter.config import SourcesConfig
from newsletter.errors import FeedError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RATELIMIT_RESET = re.compile(r"(?:^|;)\s*t=(\d+)")


def user_agent(contact_email: str) -> str:
    """'newsletter/0.1.0 (self-hosted paper digest; mailto:ops@example.org)'."""
    contact = f"; mailto:{contact_email}" if contact_email else ""
    return f"newsletter/{__version__} (self-hosted paper digest{contact})"


@dataclass(frozen=True)
class Fetched:
    """One answered request (after retries)."""

    url: str  # the final URL, query string included
    status: int
    content: bytes
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self, what: str) -> FeedError:
        """A FeedError for an unexpected status, naming the URL."""
        return FeedError(f"{self.url} answered HTTP {self.status} instead of {what}")


def retry_delay(response: httpx.Response, now: datetime | None = None) -> float | None:
    """Seconds the server asked us to wait (Retry-After or RateLimit t=), if it said."""
    value = response.headers.get("retry-after", "").strip()
    if value:
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    m = _RATELIMIT_RESET.search(response.headers.get("ratelimit", ""))
    return float(m.group(1)) if m else None


class HttpClient:
    """A wrapper around one `httpx.Client`; build it with `client_for(cfg)`."""

    def __init__(
        self,
        *,
        agent: str,
        timeout: float = 30.0,
        max_retries: int = 4,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        backoff_base: float = 1.0,
        max_wait: float = 120.0,
        max_bytes: int = 64_000_000,
    ) -> None:
        self.max_retries = max(0, max_retries)
        self.sleep = sleep
        self.clock = clock
        self.backoff_base = backoff_base
        self.max_wait = max_wait
        self.max_bytes = max_bytes
        self.requests = 0  # requests sent, retries included
        self._last_request: dict[str, float] = {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": agent, "Accept-Encoding": "gzip, deflate"},
            follow_redirects=True,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _wait_turn(self, host: str, min_interval: float) -> None:
        last = self._last_request.get(host)
        if last is not None and min_interval > 0:
            wait = last + min_interval - self.clock()
            if wait > 0:
                self.sleep(wait)
        self._last_request[host] = self.clock()

    def _send(
        self, url: str, params: Mapping[str, str | int] | None, headers: dict[str, str]
    ) -> tuple[httpx.Response, bytes]:
        """One request; the body is read with a size cap (a runaway answer is refused)."""
        with self._client.stream("GET", url, params=params, headers=headers) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise FeedError(
                        f"{response.url} sent more than {self.max_bytes // 1_000_000} MB; "
                        "that is not a feed we can use"
                    )
        return response, bytes(body)

    def get(
        self,
        url: str,
        params: Mapping[str, str | int] | None = None,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        min_interval: float = 0.0,
    ) -> Fetched:
        """GET with retries; returns any final answer (2xx, 304, 4xx) or raises FeedError."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        host = httpx.URL(url).host
        problem = ""
        for attempt in range(self.max_retries + 1):
            self._wait_turn(host, min_interval)
            self.requests += 1
            try:
                response, content = self._send(url, params, headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                delay = self.backoff_base * 2**attempt
            else:
                if response.status_code not in RETRY_STATUSES:
                    return Fetched(
                        url=str(response.url),
                        status=response.status_code,
                        content=content,
                        etag=response.headers.get("etag"),
                        last_modified=response.headers.get("last-modified"),
                        content_type=response.headers.get("content-type", ""),
                    )
                problem = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                asked = retry_delay(response)
                if asked is not None and asked > self.max_wait:
                    raise FeedError(
                        f"{url} is rate limiting us ({problem}) and asks to wait {asked:.0f} s; "
                        "try again later"
                    )
                delay = asked if asked is not None else self.backoff_base * 2**attempt
            if attempt == self.max_retries:
                break
            delay = min(delay, self.max_wait)
            log.warning("GET %s: %s; retrying in %.1f s", url, problem, delay)
            self.sleep(delay)
        raise FeedError(f"GET {url} failed after {self.max_retries + 1} attempt(s): {problem}")


def client_for(
    cfg: SourcesConfig,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> HttpClient:
    """The shared client configured from `[sources]` (timeout, retries, contact e-mail)."""
    return HttpClient(
        agent=user_agent(cfg.contact_email),
        timeout=cfg.timeout_seconds,
        max_retries=cfg.max_retries,
        transport=transport,
        sleep=sleep,
        clock=clock,
    )
