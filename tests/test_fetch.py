"""fetch_all / fetch_backfill / fetch_ids through httpx.MockTransport serving recorded bodies,
into a real SQLite file."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from newsletter.config import Config
from newsletter.errors import FeedError
from newsletter.sources.engine import FetchSummary
from newsletter.sources.fetch import Fetcher
from newsletter.store import Database
from tests.conftest import fixture_bytes, make_config
from tests.hostile_xml import expansion_attack

RSS = fixture_bytes("arxiv_rss/rss_quant-ph_2025-04-28.xml")
EMPTY_RSS = fixture_bytes("arxiv_rss/rss_cs_empty_weekend_2025-04-27.xml")
HF_TWO = fixture_bytes("huggingface/daily_papers_2items_2026-08_TRIMMED.json")
HF_ERROR = fixture_bytes("huggingface/daily_papers_error_limit-too-big.json")
API_PAGE0 = fixture_bytes("arxiv_api/api_search_all-testing_start0_max10_TRIMMED_2026-04.xml")
API_PAGE10 = fixture_bytes("arxiv_api/api_search_all-testing_start10_max10_TRIMMED_2026-04.xml")
API_EMPTY = fixture_bytes("arxiv_api/api_empty_result_2026-04.xml")
NOW = datetime(2025, 4, 28, 9, 0, tzinfo=UTC)
FEED_URL = "https://rss.arxiv.org/rss/cs.LG+cs.CL+cs.CV"

Handler = Callable[[httpx.Request], httpx.Response]


def hf_listing(*ids: str) -> bytes:
    """The recorded Daily Papers items, re-keyed to the given arXiv IDs (to overlap the feed)."""
    items = json.loads(HF_TWO)
    for item, new_id in zip(items, ids, strict=False):
        item["paper"]["id"] = new_id
    return json.dumps(items[: len(ids)]).encode()


class Server:
    """Routes requests by host to scripted bodies and records what was asked."""

    def __init__(self, rss: Handler | bytes = RSS, hf: Handler | bytes = b"[]") -> None:
        self.rss, self.hf = rss, hf
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.rss if request.url.host == "rss.arxiv.org" else self.hf
        return route(request) if callable(route) else httpx.Response(200, content=route)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path, '[sources]\ncontact_email = "ops@lab.example"\n')


def run(store: Database, cfg: Config, server: Server, **kw: object) -> FetchSummary:
    slept: list[float] = []
    fetcher = Fetcher(store, cfg, kw.pop("now", NOW), server.transport, slept.append)
    summary = fetcher.today(**kw)
    summary.slept = slept  # type: ignore[attr-defined]
    return summary


def test_feed_and_hugging_face_land_and_merge_into_one_row(store: Database, cfg: Config) -> None:
    server = Server(hf=hf_listing("2504.17837", "2608.15089"))
    summary = run(store, cfg, server, day=date(2025, 4, 28))
    assert summary.errors == []
    assert store.papers.count() == 6  # 5 from arXiv (new + cross) + 1 only HF lists
    merged = store.papers.get("2504.17837")
    assert merged is not None
    assert merged.sources == ("arxiv_rss", "huggingface")
    # arXiv's bibliographic record stays canonical; HF adds its signals
    assert merged.title.startswith("Statistical noise enhances quantumness")
    assert merged.authors == ("Youssef Kora", "Christoph Simon")
    assert merged.categories == ("quant-ph", "physics.comp-ph")
    assert merged.announced == date(2025, 4, 28) and merged.announce_type == "new"
    assert (merged.upvotes, merged.comments, merged.github_stars) == (781, 6, 11184)
    assert merged.hf_date == date(2026, 8, 11)
    assert merged.ai_keywords[0] == "in-context learning"
    hf_only = store.papers.get("2608.15089")
    assert hf_only is not None and hf_only.sources == ("huggingface",)
    assert hf_only.upvotes == 447
    assert summary.added == 6 and summary.updated == 0
    assert summary.line().startswith("fetched 6 papers: 6 new · 0 updated · 0 unchanged")
    assert "arxiv_rss: 5 for 2025-04-28" in summary.line()
    # one request for all categories, a User-Agent with the contact address
    rss_requests = [r for r in server.requests if r.url.host == "rss.arxiv.org"]
    assert [str(r.url) for r in rss_requests] == [FEED_URL]
    assert "mailto:ops@lab.example" in rss_requests[0].headers["User-Agent"]
    hf_requests = [r for r in server.requests if r.url.host == "huggingface.co"]
    assert dict(hf_requests[0].url.params) == {"date": "2025-04-28", "limit": "100", "p": "0"}
    (row,) = store.runs.last("fetch")
    assert row.outcome == "ok" and row.summary == summary.line()


def test_without_a_date_hugging_face_is_asked_for_today_and_yesterday(
    store: Database, cfg: Config
) -> None:
    server = Server()
    summary = run(store, cfg, server, sources=["huggingface"])
    asked = [r.url.params["date"] for r in server.requests]
    assert asked == ["2025-04-28", "2025-04-27"]
    assert summary.notes == ["Hugging Face listed no papers for 2025-04-28 or 2025-04-27"]


def test_429_then_200_is_retried(store: Database, cfg: Config) -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "5"}), httpx.Response(200, content=RSS)]
    summary = run(store, cfg, Server(rss=lambda r: answers.pop(0)), sources=["arxiv_rss"])
    assert summary.errors == [] and summary.added == 5
    assert summary.slept == [5.0]  # type: ignore[attr-defined]


def test_304_on_etag_means_nothing_new(store: Database, cfg: Config) -> None:
    def rss(request: httpx.Request) -> httpx.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=RSS, headers={"ETag": '"v1"'})

    first = run(store, cfg, Server(rss=rss), sources=["arxiv_rss"])
    assert first.added == 5
    assert store.runs.fetch_state(FEED_URL).etag == '"v1"'  # type: ignore[union-attr]
    before = store.papers.search(limit=100)
    second = run(store, cfg, Server(rss=rss), sources=["arxiv_rss"], now=NOW.replace(hour=10))
    assert second.added == second.updated == 0 and second.errors == []
    assert "arxiv_rss: not modified since the last fetch" in second.line()
    state = store.runs.fetch_state(FEED_URL)
    assert state is not None and state.etag == '"v1"' and state.last_count == 5
    assert state.last_success == NOW.replace(hour=10)
    assert store.papers.search(limit=100) == before


def test_malformed_feed_is_skipped_and_other_sources_still_land(
    store: Database, cfg: Config
) -> None:
    run(store, cfg, Server(), sources=["arxiv_rss"])  # a good day first
    before = store.papers.get("2504.17830")
    html = b"<html><head><title>502</title></head><body>Bad Gateway</body></html>"
    server = Server(rss=html, hf=hf_listing("2608.09888"))
    summary = run(store, cfg, server, day=date(2025, 4, 28), now=NOW.replace(hour=11))
    assert summary.outcome == "partial"
    assert len(summary.errors) == 1 and FEED_URL in summary.errors[0]
    assert "arxiv_rss: FAILED" in summary.line()
    assert store.papers.get("2608.09888") is not None  # Hugging Face still landed
    assert store.papers.get("2504.17830") == before  # nothing stored was lost
    state = store.runs.fetch_state(FEED_URL)
    assert state is not None and "sent an HTML page" in state.last_error
    assert state.last_success == NOW  # the earlier success is remembered
    assert store.runs.last("fetch")[0].outcome == "partial"


def test_a_feed_declaring_entities_is_skipped_and_the_rest_of_the_run_kept(
    store: Database, cfg: Config, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = expansion_attack(RSS, b"Abstract:")
    server = Server(rss=hostile, hf=hf_listing("2504.17837", "2608.15089"))
    with caplog.at_level(logging.WARNING, logger="newsletter.fetch"):
        summary = run(store, cfg, server, day=date(2025, 4, 28))
    assert summary.outcome == "partial" and "arxiv_rss: FAILED" in summary.line()
    (logged,) = [r.getMessage() for r in caplog.records if "arxiv_rss" in r.getMessage()]
    assert f"{FEED_URL} sent a document with a DTD or entity declaration" in logged
    # Nothing from the hostile response was stored; Hugging Face's papers were.
    assert {p.id for p in store.papers.search("", None, 100)} == {"2504.17837", "2608.15089"}
    assert store.papers.get("2504.17837").sources == ("huggingface",)  # type: ignore[union-attr]
    state = store.runs.fetch_state(FEED_URL)
    assert state is not None and "DTD or entity declaration" in state.last_error


def test_truncated_feed_does_not_store_its_etag(store: Database, cfg: Config) -> None:
    truncated = httpx.Response(200, content=RSS[:6000], headers={"ETag": '"half"'})
    summary = run(store, cfg, Server(rss=lambda r: truncated), sources=["arxiv_rss"])
    assert summary.outcome == "failed" and store.papers.count() == 0
    state = store.runs.fetch_state(FEED_URL)
    assert state is not None and state.etag is None and "bad XML" in state.last_error


def test_hugging_face_error_json_is_reported_and_arxiv_still_lands(
    store: Database, cfg: Config
) -> None:
    server = Server(hf=lambda r: httpx.Response(400, content=HF_ERROR))
    summary = run(store, cfg, server, day=date(2025, 4, 28))
    assert store.papers.count() == 5
    assert summary.errors == [
        "huggingface: Hugging Face refused https://huggingface.co/api/daily_papers?date="
        "2025-04-28&limit=100&p=0: ✖ Too big: expected number to be <=100 → at limit"
    ]
    hf_state = [s for s in store.runs.fetch_states() if s.source == "huggingface"]
    assert "Too big" in hf_state[0].last_error


def test_empty_weekend_feed_is_a_normal_day(store: Database, cfg: Config) -> None:
    summary = run(store, cfg, Server(rss=EMPTY_RSS), sources=["arxiv_rss"])
    assert summary.outcome == "ok" and summary.errors == []
    assert summary.notes == ["arXiv announced no new papers for 2025-04-27"]
    assert summary.line().startswith("fetched 0 papers: 0 new")
    assert store.runs.fetch_state(FEED_URL).last_count == 0  # type: ignore[union-attr]


def test_cross_lists_follow_the_config(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "[sources]\ninclude_cross_lists = false\n")
    with Database(cfg.database_path) as store:
        summary = run(store, cfg, Server(), sources=["arxiv_rss"])
        assert summary.added == 3
        assert {p.announce_type for p in store.papers.search(limit=10)} == {"new"}


def test_a_repeat_fetch_changes_nothing(store: Database, cfg: Config) -> None:
    server = Server(hf=hf_listing("2504.17837"))
    run(store, cfg, server, day=date(2025, 4, 28))
    rows = store.conn.execute("SELECT * FROM papers ORDER BY id").fetchall()
    again = run(store, cfg, server, day=date(2025, 4, 28), now=NOW.replace(hour=12))
    assert again.added == again.updated == 0 and again.unchanged == 5
    assert store.conn.execute("SELECT * FROM papers ORDER BY id").fetchall() == rows


def test_fresher_upvotes_update_the_row(store: Database, cfg: Config) -> None:
    run(store, cfg, Server(hf=hf_listing("2504.17837")), day=date(2025, 4, 28))
    items = json.loads(hf_listing("2504.17837"))
    items[0]["paper"]["upvotes"] = 900
    later = NOW.replace(hour=15)
    summary = run(
        store, cfg, Server(hf=json.dumps(items).encode()), day=date(2025, 4, 28), now=later
    )
    assert summary.updated == 1 and summary.unchanged == 4
    paper = store.papers.get("2504.17837")
    assert paper is not None and paper.upvotes == 900 and paper.updated == later
    assert paper.first_seen == NOW


def test_backfill_pages_the_api_politely(store: Database, cfg: Config) -> None:
    asked: list[httpx.URL] = []

    def api(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        pages = {"0": API_PAGE0, "3": API_PAGE10}
        return httpx.Response(200, content=pages.get(request.url.params["start"], API_EMPTY))

    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    toml = '[sources]\nhuggingface = false\narxiv_categories = ["cs.SE"]\n'
    cfg2 = make_config(Path(cfg.base_dir), toml)
    fetcher = Fetcher(store, cfg2, NOW, httpx.MockTransport(api), sleep, lambda: clock[0])
    summary = fetcher.backfill(7)
    query = asked[0].params["search_query"]
    assert query == "(cat:cs.SE) AND submittedDate:[202504210000 TO 202504282359]"
    assert [u.params["start"] for u in asked] == ["0", "3", "5"]
    assert slept and all(s == 3.0 for s in slept)  # arXiv's 3-second rule, never less
    assert summary.errors == [] and store.papers.count() == 5
    paper = store.papers.get("2202.12139")
    assert paper is not None and paper.sources == ("arxiv_api",)
    assert paper.announced == date(2022, 2, 25)  # estimated from the submission time
    state = store.runs.fetch_state("https://export.arxiv.org/api/query")
    assert state is not None and state.last_count == 5


def test_backfill_without_cross_lists_keeps_primary_categories_only(tmp_path: Path) -> None:
    toml = (
        '[sources]\nhuggingface = false\ninclude_cross_lists = false\narxiv_categories = ["cs.LG"]'
    )
    cfg = make_config(tmp_path, toml + "\n")
    transport = httpx.MockTransport(
        lambda r: httpx.Response(
            200, content=API_PAGE0 if r.url.params["start"] == "0" else API_EMPTY
        )
    )
    with Database(cfg.database_path) as store:
        summary = Fetcher(store, cfg, NOW, transport, lambda s: None).backfill(1)
        # every entry's primary category is cs.SE: cs.LG only as a cross-list
        assert store.papers.count() == 0 and summary.sources[0].skipped == 3


def test_rss_announcement_replaces_an_api_estimate(store: Database, cfg: Config) -> None:
    page = API_PAGE0.replace(b"2202.12139", b"2504.17837")
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=page))
    Fetcher(store, cfg, NOW, transport, lambda s: None).ids(["2504.17837"])
    estimated = store.papers.get("2504.17837")
    assert estimated is not None and estimated.announce_type == ""
    run(store, cfg, Server(), sources=["arxiv_rss"])
    p = store.papers.get("2504.17837")
    assert p is not None
    assert p.announced == date(2025, 4, 28) and p.announce_type == "new"
    assert p.sources == ("arxiv_api", "arxiv_rss")
    assert p.published == estimated.published  # the API's submission time is kept


def test_fetch_ids_reports_arxivs_error_message(store: Database, cfg: Config) -> None:
    error = fixture_bytes("arxiv_api/api_error_http400_incorrect_id_2026-04.xml")
    transport = httpx.MockTransport(lambda r: httpx.Response(400, content=error))
    summary = Fetcher(store, cfg, NOW, transport).ids(["2401.00001"])
    assert summary.outcome == "failed"
    assert "the arXiv API refused the query: incorrect id format for abc" in summary.errors[0]


def test_fetch_ids_validates_and_reports_missing(store: Database, cfg: Config) -> None:
    with pytest.raises(FeedError, match="'abc' is not an arXiv ID"):
        Fetcher(store, cfg, NOW).ids(["2104.12255, abc"])
    body = fixture_bytes("arxiv_api/api_id_list_2104.12255v1_2026-04.xml")
    seen: list[httpx.URL] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, content=body)

    fetcher = Fetcher(store, cfg, NOW, httpx.MockTransport(api))
    summary = fetcher.ids(["arXiv:2104.12255v1,2301.99999"])
    assert seen[0].params["id_list"] == "2104.12255,2301.99999"
    assert store.papers.get("2104.12255") is not None
    assert summary.notes == ["arXiv has no paper with ID 2301.99999"]
    state = store.runs.fetch_state("https://export.arxiv.org/api/query")
    assert state is not None and state.last_count == 1 and state.source == "arxiv_api"


def test_unknown_source_name_is_refused(store: Database, cfg: Config) -> None:
    with pytest.raises(FeedError, match="unknown source 'rss'"):
        Fetcher(store, cfg, NOW).today(sources=["rss"])


def test_no_enabled_source_is_a_clear_error(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "[sources]\narxiv_rss = false\nhuggingface = false\n")
    with (
        Database(cfg.database_path) as store,
        pytest.raises(FeedError, match="no source is enabled"),
    ):
        Fetcher(store, cfg, NOW).today()


def test_an_empty_today_on_hugging_face_is_not_news_when_yesterday_has_papers(
    store: Database, cfg: Config
) -> None:
    def hf(request: httpx.Request) -> httpx.Response:
        listed = request.url.params["date"] == "2025-04-27"
        return httpx.Response(200, content=HF_TWO if listed else b"[]")

    summary = run(store, cfg, Server(hf=hf), sources=["huggingface"])
    assert summary.notes == [] and summary.added == 2
    assert "huggingface: 2 over 2 days" in summary.line()
    # items carry their own Daily Papers day (paper.submittedOnDailyAt)
    assert store.papers.get("2608.09888").hf_date == date(2026, 8, 11)  # type: ignore[union-attr]


def test_a_failed_source_line_cuts_a_long_error_between_words() -> None:
    from newsletter.sources.engine import SourceReport

    error = "the server answered with a page that is not a feed: " + "unexpected words " * 12
    line = SourceReport("arxiv_rss", errors=[error]).describe()
    assert line.startswith("arxiv_rss: FAILED (the server answered") and line.endswith(" …)")
    assert line.removesuffix(" …)").split()[-1] in error.split()  # a whole word, not a piece
    assert len(line) <= len("arxiv_rss: FAILED ()") + 120
