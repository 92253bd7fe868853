"""The Hugging Face Daily Papers parser and its paging, against recorded responses."""

from __future__ import annotations

import json
import logging
import unicodedata
from datetime import UTC, date, datetime

import httpx
import pytest

from newsletter.errors import FeedError
from newsletter.sources import huggingface, text
from newsletter.sources.http import HttpClient
from tests.conftest import fixture_bytes

TWO = "huggingface/daily_papers_2items_2026-08_TRIMMED.json"
TRENDING = "huggingface/daily_papers_sort-trending_1item_2026-08_TRIMMED.json"
BASE = "https://huggingface.co/api/daily_papers"


def test_daily_papers_fields() -> None:
    parsed = huggingface.parse_daily(fixture_bytes(TWO), day=date(2026, 8, 20))
    assert [p.id for p in parsed.papers] == ["2608.09888", "2608.15089"]
    p = parsed.papers[0]
    assert p.title == "BDH-CQ: In-Context Learning with Recurrent Latent Reasoning"
    assert p.abstract.startswith("We introduce BDH-CQ, a reasoning model")
    assert p.upvotes == 781  # inside `paper`
    assert p.comments == 6  # outer numComments
    assert p.github_repo == "https://github.com/pathwaycom/arc-task-gen"
    assert p.github_stars == 11184
    assert p.ai_keywords == (
        "in-context learning",
        "recurrent latent reasoning",
        "high-dimensional latent space",
        "ARC-AGI-1",
        "cost-accuracy Pareto frontier",
    )
    assert p.ai_summary.startswith("A 150M-parameter reasoning model")
    assert p.hf_date == date(2026, 8, 11)  # from paper.submittedOnDailyAt
    assert p.published == datetime(2026, 8, 10, tzinfo=UTC)
    assert p.authors[:2] == ("Björn Engdahl", "Adrian Kosowski")
    assert "Przemysław Uznański" in p.authors and len(p.authors) == 9
    assert p.sources == ("huggingface",)
    assert p.abs_url == "https://arxiv.org/abs/2608.09888"
    assert p.categories == () and p.announced is None

    q = parsed.papers[1]
    assert (q.upvotes, q.comments, q.github_stars) == (447, 2, 1148)
    assert q.hf_date == date(2026, 8, 18)
    # the abstract's paragraph breaks ("\n  ") are kept as single newlines
    assert q.abstract.count("\n") == 3 and "\n  " not in q.abstract


def test_item_without_submitted_on_daily_at_takes_the_requested_day() -> None:
    (p,) = huggingface.parse_daily(fixture_bytes(TRENDING), day=date(2026, 8, 20)).papers
    assert p.id == "2412.20138"
    assert p.hf_date == date(2026, 8, 20)
    assert p.github_stars == 107465 and p.upvotes == 140 and p.comments == 6
    assert p.github_repo == "https://github.com/tauricresearch/tradingagents"
    assert "\n" not in p.abstract  # hard-wrapped lines joined


def test_weekend_is_an_empty_list() -> None:
    parsed = huggingface.parse_daily(fixture_bytes("huggingface/daily_papers_weekend_empty.json"))
    assert parsed.papers == []


def test_error_object_is_a_feed_error_with_the_message() -> None:
    with pytest.raises(FeedError, match=r"Too big: expected number to be <=100 → at limit"):
        huggingface.parse_daily(fixture_bytes("huggingface/daily_papers_error_limit-too-big.json"))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (fixture_bytes(TWO)[:700], "malformed JSON"),
        (b"<!DOCTYPE html><html><body>Bad gateway</body></html>", "an HTML page"),
        (b'{"papers": []}', "not a list of papers"),
    ],
)
def test_malformed_bodies(body: bytes, expected: str) -> None:
    with pytest.raises(FeedError, match=expected):
        huggingface.parse_daily(body, url=f"{BASE}?date=2026-08-11")


def test_items_without_an_arxiv_id_are_skipped() -> None:
    items = json.loads(fixture_bytes(TWO))
    items[0]["paper"]["id"] = "not-an-id"
    parsed = huggingface.parse_daily(json.dumps(items).encode())
    assert [p.id for p in parsed.papers] == ["2608.15089"] and parsed.skipped == 1


def test_pages_until_a_short_page() -> None:
    one = json.loads(fixture_bytes(TWO))[0]
    full_page = []
    for i in range(100):
        item = json.loads(json.dumps(one))
        item["paper"]["id"] = f"2608.{10000 + i}"
        full_page.append(item)
    pages = {"0": json.dumps(full_page).encode(), "1": fixture_bytes(TWO)}
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, content=pages[request.url.params["p"]])

    client = HttpClient(agent="t", transport=httpx.MockTransport(handler), sleep=lambda _s: None)
    got = list(huggingface.fetch_day(client, BASE, date(2026, 8, 11)))
    assert [dict(u.params) for u in seen] == [
        {"date": "2026-08-11", "limit": "100", "p": "0"},
        {"date": "2026-08-11", "limit": "100", "p": "1"},
    ]
    assert [len(parsed.papers) for _, parsed, _ in got if parsed] == [100, 2]


@pytest.mark.parametrize(("stored_count", "pages_asked"), [(2, ["0"]), (100, ["0", "1"])])
def test_not_modified_page_continues_only_after_a_full_page(
    stored_count: int, pages_asked: list[str]
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params["p"] == "0":
            return httpx.Response(304)
        return httpx.Response(200, content=fixture_bytes(TWO))

    client = HttpClient(agent="t", transport=httpx.MockTransport(handler), sleep=lambda _s: None)
    got = list(
        huggingface.fetch_day(
            client, BASE, date(2026, 8, 11), validators=lambda _url: ('"e"', None, stored_count)
        )
    )
    assert [r.url.params["p"] for r in seen] == pages_asked
    assert seen[0].headers["If-None-Match"] == '"e"'
    assert got[0][1] is None  # page 0 not modified


def _with_paper(**fields: object) -> bytes:
    """The recorded listing's first item with some `paper` fields replaced."""
    items = json.loads(fixture_bytes(TWO))
    items[0]["paper"].update(fields)
    return json.dumps(items[:1]).encode()


OSC_LINK = "\x1b]8;;https://evil.example/\x07"  # a terminal hyperlink...
HOSTILE_TITLE = f"{OSC_LINK}Sparse attention{OSC_LINK}\x1b]0;owned\x07 \x1b[2J\x9b31mat scale\x07"


def test_control_characters_are_stripped_from_every_field_at_parse_time() -> None:
    raw = _with_paper(
        title=HOSTILE_TITLE,
        summary="First paragraph\x1b[31m, red.\n  Second\x00 paragraph\x9d0;x\x9c.",
        authors=[{"name": "Ada\x1b[8m Lovelace"}, {"name": "\x07Bo\x7f Chen"}],
        ai_keywords=["kv\x1b[1m cache"],
        ai_summary="short\x1b]2;t\x07 summary",
        githubRepo="https://github.com/a/b\x1b[0m",
    )
    p = huggingface.parse_daily(raw).papers[0]
    assert p.title == "Sparse attention at scale"
    assert p.abstract == "First paragraph, red.\nSecond paragraph."  # the paragraph break stays
    assert p.authors == ("Ada Lovelace", "Bo Chen")
    assert p.ai_keywords == ("kv cache",)
    assert p.ai_summary == "short summary"
    assert p.github_repo == "https://github.com/a/b"
    for value in (p.title, p.abstract, *p.authors, p.ai_summary, p.github_repo):
        assert not any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in value)


def test_overlong_fields_are_cut_at_parse_time_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = _with_paper(
        title="Long " * 30_000,  # 150 KB
        summary=r"\textbf{" * 8000,
        authors=[{"name": "x" * 999}]
        + [{"name": f"Author {n}"} for n in range(text.MAX_AUTHORS + 5)],
    )
    with caplog.at_level(logging.WARNING):
        p = huggingface.parse_daily(raw, url="https://hf.x/p0").papers[0]
    assert len(p.title) == text.MAX_TITLE_CHARS and p.title.endswith("…")
    assert len(p.abstract) == text.MAX_ABSTRACT_CHARS and p.abstract.endswith("…")
    assert len(p.authors) == text.MAX_AUTHORS and p.authors[-1] == f"Author {text.MAX_AUTHORS - 2}"
    assert len(p.authors[0]) == text.MAX_AUTHOR_CHARS and p.authors[0].endswith("…")
    logged = [r.getMessage() for r in caplog.records]
    assert f"https://hf.x/p0: paper {p.id}: title cut from 149999 to 1000 characters" in logged
    assert f"https://hf.x/p0: paper {p.id}: abstract cut from 64000 to 10000 characters" in logged
    most, longest = text.MAX_AUTHORS, text.MAX_AUTHOR_CHARS
    assert (
        f"https://hf.x/p0: paper {p.id}: authors cut to {most} of {most + 6} (at most {most}); "
        f"1 name(s) cut to {longest} characters"
    ) in logged
