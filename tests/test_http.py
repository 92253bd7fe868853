"""The shared HTTP client: retries, Retry-After, conditional GET, User-Agent, politeness."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from newsletter import __version__
from newsletter.config import SourcesConfig
from newsletter.errors import FeedError
from newsletter.sources.http import HttpClient, client_for, retry_delay

URL = "https://feeds.example/rss/cs.LG"


class Script:
    """A MockTransport handler answering from a list of scripted responses (or exceptions)."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def make(script: Script, **kw: object) -> tuple[HttpClient, list[float]]:
    slept: list[float] = []
    client = HttpClient(
        agent="newsletter-test", transport=httpx.MockTransport(script), sleep=slept.append, **kw
    )
    return client, slept


def test_429_with_retry_after_then_200() -> None:
    script = Script(
        httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, content=b"ok")
    )
    client, slept = make(script)
    got = client.get(URL)
    assert got.status == 200 and got.content == b"ok"
    assert slept == [7.0] and len(script.requests) == 2


def test_503_backs_off_exponentially() -> None:
    script = Script(
        httpx.Response(503), httpx.Response(503), httpx.Response(502), httpx.Response(200)
    )
    client, slept = make(script, backoff_base=1.0)
    assert client.get(URL).ok
    assert slept == [1.0, 2.0, 4.0]


def test_connection_errors_are_retried() -> None:
    request = httpx.Request("GET", URL)
    script = Script(
        httpx.ConnectError("connection refused", request=request),
        httpx.ReadTimeout("timed out", request=request),
        httpx.Response(200, content=b"finally"),
    )
    client, slept = make(script)
    assert client.get(URL).content == b"finally"
    assert slept == [1.0, 2.0]


def test_gives_up_after_max_retries_with_a_clear_error() -> None:
    script = Script(*[httpx.Response(503) for _ in range(3)])
    client, slept = make(script, max_retries=2)
    with pytest.raises(FeedError, match=r"failed after 3 attempt\(s\): HTTP 503"):
        client.get(URL)
    assert len(slept) == 2


def test_a_very_long_retry_after_is_not_waited_out() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}))
    client, slept = make(script)
    with pytest.raises(FeedError, match="asks to wait 3600 s"):
        client.get(URL)
    assert slept == []


def test_retry_after_as_http_date_and_ratelimit_header() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    dated = httpx.Response(503, headers={"Retry-After": "Thu, 26 Nov 2026 12:00:30 GMT"})
    assert retry_delay(dated, now) == 30.0
    hf = httpx.Response(429, headers={"RateLimit": '"api";r=0;t=55'})
    assert retry_delay(hf, now) == 55.0
    assert retry_delay(httpx.Response(503), now) is None


def test_conditional_get_sends_validators_and_304_means_not_modified() -> None:
    script = Script(httpx.Response(304))
    client, _ = make(script)
    got = client.get(URL, etag='"abc"', last_modified="Mon, 28 Apr 2025 04:00:00 GMT")
    assert got.not_modified and not got.ok
    sent = script.requests[0].headers
    assert sent["If-None-Match"] == '"abc"'
    assert sent["If-Modified-Since"] == "Mon, 28 Apr 2025 04:00:00 GMT"


def test_validators_from_the_answer_are_returned() -> None:
    script = Script(
        httpx.Response(
            200, content=b"x", headers={"ETag": '"v2"', "Last-Modified": "Tue, 29 Apr 2025"}
        )
    )
    client, _ = make(script)
    got = client.get(URL, params={"a": 1})
    assert (got.etag, got.last_modified) == ('"v2"', "Tue, 29 Apr 2025")
    assert got.url == URL + "?a=1"


def test_other_4xx_is_returned_not_retried() -> None:
    script = Script(httpx.Response(404, content=b"nope"))
    client, slept = make(script)
    got = client.get(URL)
    assert got.status == 404 and slept == []
    assert "answered HTTP 404" in str(got.error("a feed"))


def test_user_agent_names_project_version_and_contact() -> None:
    script = Script(httpx.Response(200))
    cfg = SourcesConfig(contact_email="ops@lab.example")
    with client_for(cfg, transport=httpx.MockTransport(script)) as client:
        client.get(URL)
    agent = script.requests[0].headers["User-Agent"]
    assert agent.startswith(f"newsletter/{__version__} ")
    assert "mailto:ops@lab.example" in agent


def test_politeness_interval_between_requests_to_one_host() -> None:
    script = Script(*[httpx.Response(200) for _ in range(3)])
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    client = HttpClient(
        agent="t", transport=httpx.MockTransport(script), sleep=sleep, clock=lambda: now[0]
    )
    client.get("https://export.arxiv.org/api/query", min_interval=3.0)
    now[0] += 1.0  # parsing took a second
    client.get("https://export.arxiv.org/api/query", min_interval=3.0)
    client.get("https://huggingface.co/api/daily_papers", min_interval=3.0)  # another host
    assert slept == [2.0]


def test_a_runaway_body_is_refused() -> None:
    script = Script(httpx.Response(200, content=b"x" * 5000))
    client, _ = make(script, max_bytes=4096)
    with pytest.raises(FeedError, match="sent more than"):
        client.get(URL)


def test_a_connection_dropped_mid_body_is_retried() -> None:
    class Dropping(httpx.SyncByteStream):
        def __iter__(self):  # type: ignore[override]
            yield b"<rss>"
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")

    script = Script(httpx.Response(200, stream=Dropping()), httpx.Response(200, content=b"<rss/>"))
    client, slept = make(script)
    assert client.get(URL).content == b"<rss/>"
    assert slept == [1.0]
