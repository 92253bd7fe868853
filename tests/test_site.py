"""The public site over HTTP (Starlette TestClient) on a real SQLite file of real abstracts:
day, week and month pages, paper pages and BibTeX, search, and what no page may do."""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from newsletter.models import InterestKind
from newsletter.ranking.rank import ranker_options
from newsletter.ranking.search import similar_scores
from newsletter.ranking.textindex import TextIndex
from newsletter.ranking.trending import trending_scores
from newsletter.store import Database, schema
from newsletter.web.app import create_app
from tests.conftest import make_config
from tests.site_support import FRIDAY, fill
from tests.web_support import csrf_tokens

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CARD = re.compile(r'<article class="paper" id="p-([^"]+)"')


class Site:
    def __init__(self, tmp_path: Path) -> None:
        self.cfg = make_config(tmp_path, '[delivery]\nmethod = "maildir:outbox"\n')
        self.db = Database(self.cfg.database_path)
        self.papers = {p.id: p for p in fill(self.db)}
        app = create_app(self.cfg, now=lambda: datetime(2026, 11, 27, 8, tzinfo=UTC))
        self.client = TestClient(app, raise_server_exceptions=False)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def cards(self, path: str) -> list[str]:
        r = self.get(path)
        assert r.status_code == 200, r.text
        return CARD.findall(r.text)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_home_is_the_latest_day_in_the_digests_trending_order(site: Site) -> None:
    r = site.get("/")
    assert r.status_code == 200
    assert "Friday 27 November 2026" in r.text
    assert "Get trending papers in your email inbox once a day!" in r.text
    assert 'href="/papers/2026-11-26"' in r.text  # the previous day
    friday = [p for p in site.papers.values() if p.announced == FRIDAY]
    trend = trending_scores(friday, FRIDAY)
    expected = [
        p.id for _, p in sorted(zip(-trend, friday, strict=True), key=lambda t: (t[0], t[1].id))
    ]
    shown = CARD.findall(r.text)
    assert shown == expected[:25] and len(shown) == 20
    on_hf = [p.id for p in friday if p.upvotes]
    assert set(shown[: len(on_hf)]) == set(on_hf)  # papers without a Hugging Face record after
    assert "▲ 43" in r.text and "★ 120" in r.text
    assert 'rel="alternate" type="application/atom+xml"' in r.text
    assert "<script>" not in r.text and "script-src 'self'" in r.headers["content-security-policy"]


def test_sort_category_pagination_and_bounds(site: Site) -> None:
    newest = site.cards("/papers/2026-11-27?sort=newest")
    assert newest == sorted(newest, key=lambda i: site.papers[i].published, reverse=True)
    cl = site.cards("/papers/2026-11-27?category=cs.CL")
    assert cl and all(site.papers[i].categories[0] == "cs.CL" for i in cl)
    month = site.cards("/papers/month/2026-11")
    assert len(month) == 25 and "Page 1 of 2" in site.get("/papers/month/2026-11").text
    second = site.cards("/papers/month/2026-11?page=2")
    assert len(second) == 15 and not set(second) & set(month)
    assert site.cards("/papers/month/2026-11?page=7") == second
    for bad, words in (
        ("/papers/2026-11-27?page=0", "between 1 and"),
        ("/papers/2026-11-27?page=abc", "whole number"),
        ("/papers/2026-11-27?category=hep-th", "Pick a category"),
        ("/papers/2026-11-27?sort=best", "Sort by"),
        ("/papers/week/2026-W77", "2026-W48"),
        ("/papers/month/2026-13", "2026-11"),
        ("/papers/week/9999-W52", "2026-W48"),  # ends past the last date Python knows
    ):
        r = site.get(bad)
        assert r.status_code == 400 and words in r.text, bad
    assert site.get("/papers/not-a-day").status_code == 404
    for last in ("/papers/month/9999-12", "/papers/9999-12-31", "/papers/month/0001-01"):
        assert site.get(last).status_code == 200, last  # the calendar's edges: empty, not a 500


def test_a_weekend_says_no_papers_and_links_the_last_day_with_some(site: Site) -> None:
    r = site.get("/papers/2026-11-28")
    assert r.status_code == 200
    assert "arXiv announced no new papers on Saturday 28 November 2026" in r.text
    assert 'href="/papers/2026-11-27"' in r.text
    jump = site.get("/papers?day=2026-11-26", follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"] == "/papers/2026-11-26"
    assert len(site.cards("/papers/week/2026-W48")) == 25
    assert "40 papers" in site.get("/papers/week/2026-W48").text
    later = site.get("/papers/week/2026-W49").text  # an empty week links the last one with papers
    assert 'href="/papers/week/2026-W48">← 2026-W48' in later
    assert 'href="/papers/month/2026-11">← November 2026' in site.get("/papers/month/2026-12").text


def test_paper_page_bibtex_similar_and_get_papers_like_this(site: Site) -> None:
    r = site.get("/paper/2611.10003v2", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/paper/2611.10003"
    page = site.get("/paper/2611.10003").text
    paper = site.papers["2611.10003"]
    assert "AANet: Adaptive Aggregation Network" in page
    assert "Author3 Surname" in page and "Grace Hopper" in page
    assert paper.abstract[-60:].split()[-1] in page  # the whole abstract, not an excerpt
    assert "stat.ML" in page and "Friday 27 November 2026" in page
    assert "★ 120 stars" in page and "https://github.com/org/repo" in page
    assert "A summary from Hugging Face." in page and ">segmentation</a>" in page
    similar = CARD.findall(page.split("Similar papers", 1)[1])
    assert similar and "2611.10003" not in similar
    assert "/subscribe?likes=2611.10003" in page
    bib = site.get("/paper/2611.10003.bib")
    assert bib.headers["content-type"].startswith("application/x-bibtex")
    assert bib.text.startswith("@misc{") and "eprint = {2611.10003}" in bib.text
    assert "author = {Author3 Surname and Grace Hopper}" in bib.text
    missing = site.get("/paper/2611.99999")
    assert missing.status_code == 404 and 'action="/search"' in missing.text
    assert site.get("/paper/nonsense").status_code == 404


def test_similar_scores_are_the_ranker_index_cosines(site: Site) -> None:
    # The paper page scores candidates without building a whole index; the scores must be
    # the index's own unit tf-idf cosines, so "similar" keeps meaning what the ranker means.
    papers = list(site.papers.values())
    options = ranker_options("default")
    index = TextIndex([p.title for p in papers], [p.abstract for p in papers], options.index)
    expected = (index.unit[0] @ index.unit_t).toarray().ravel()[1:]
    got = similar_scores(papers[0], papers[1:], options)
    assert len(papers) > 5 and got.shape == expected.shape
    assert np.allclose(got, expected, atol=1e-5) and got.max() > 0.05


def test_get_papers_like_this_subscribes_with_the_paper_as_a_liked_one(site: Site) -> None:
    form = site.get("/subscribe?likes=2611.10003").text
    assert 'name="likes" value="2611.10003"' in form
    r = site.client.post(
        "/subscribe",
        data={
            "csrf_token": csrf_tokens(form)[0],
            "email": "reader@example.org",
            "likes": "2611.10003",
            "timezone": "UTC",
            "hour": "7",
            "size": "10",
        },
    )
    assert r.status_code == 200, r.text
    sub = site.db.subscribers.list()[0]
    likes = [
        i.value for i in site.db.subscribers.interests_for(sub.id) if i.kind == InterestKind.LIKE
    ]
    assert likes == ["2611.10003"]


def test_search_words_phrases_authors_ids_and_highlights(site: Site) -> None:
    r = site.get("/search?q=cost+aggregation")
    assert r.status_code == 200
    found = CARD.findall(r.text)
    titles = [site.papers[i].title for i in found]
    assert "Cost Aggregation" in titles[0]
    assert "<mark>Cost</mark>" in r.text and "<mark>Aggregation</mark>" in r.text
    phrase = CARD.findall(site.get('/search?q="cost aggregation"').text)
    assert phrase and all(
        "cost aggregation" in (site.papers[i].title + " " + site.papers[i].abstract).lower()
        for i in phrase
    )
    assert len(phrase) < len(found)
    assert CARD.findall(site.get("/search?q=Ada+Lovelace").text) == ["2611.10005"]
    for typed in ("2611.10003", "arXiv:2611.10003v1", "https://arxiv.org/abs/2611.10003v2"):
        r = site.get("/search", params={"q": typed}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/paper/2611.10003", typed
    empty = site.get("/search?q=quantumgravitino")
    assert empty.status_code == 200 and "No paper matches" in empty.text
    assert "Get these in your inbox" in empty.text
    inbox = site.get("/search?q=cost+aggregation").text
    assert 'href="/subscribe?keywords=cost+aggregation"' in inbox
    assert 'value="cost aggregation"' in site.get("/subscribe?keywords=cost+aggregation").text


def test_search_filters_sorts_and_bounds(site: Site) -> None:
    dated = CARD.findall(site.get("/search?q=cost&from=2026-11-26&to=2026-11-26").text)
    assert dated and all(site.papers[i].announced != FRIDAY for i in dated)
    cv = CARD.findall(site.get("/search?q=cost&category=cs.CV").text)
    assert cv and all(site.papers[i].categories[0] == "cs.CV" for i in cv)
    newest = CARD.findall(site.get("/search?q=cost&sort=newest").text)
    assert newest == sorted(newest, key=lambda i: site.papers[i].published, reverse=True)
    for bad, words in (
        ("/search?q=" + "x" * 301, "at most 300"),
        ("/search?q=cost&from=2026-11-27&to=2026-11-01", "after the end"),
        ("/search?q=cost&from=2020-01-01&to=2026-01-01", "at most a year"),
        ("/search?q=cost&from=yesterday", "2026-11-27"),
        ("/search?q=cost&page=9999", "between 1 and"),
    ):
        r = site.get(bad)
        assert r.status_code == 400 and words in r.text, bad
    # FTS5 syntax typed by a visitor is searched as words, never an error.
    assert site.get('/search?q=cost" OR NEAR(*').status_code == 200


def test_the_search_index_follows_the_papers_table(site: Site) -> None:
    now = datetime(2026, 11, 27, 9, tzinfo=UTC)
    new = replace(site.papers["2611.10000"], id="2611.20000", title="Zymurgy of tokenizers")
    site.db.papers.upsert([new], now)
    assert CARD.findall(site.get("/search?q=zymurgy").text) == ["2611.20000"]
    site.db.papers.upsert([replace(new, title="Brewing tokenizers, revised title")], now)
    assert CARD.findall(site.get("/search?q=zymurgy").text) == []
    assert CARD.findall(site.get("/search?q=brewing").text) == ["2611.20000"]


def test_an_existing_database_is_indexed_by_the_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    with monkeypatch.context() as m:
        before = schema.MIGRATIONS.index(schema._m4_paper_search)
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:before])
        with Database(path) as old:
            fill(old)
    with Database(path) as db:
        assert db.schema_version == len(schema.MIGRATIONS)
        ids, total = db.papers.match('"aggregation"')
        assert total >= 5 and "2611.10003" in ids


def test_every_field_is_escaped_and_no_page_shows_subscribers(site: Site) -> None:
    now = datetime(2026, 11, 27, 9, tzinfo=UTC)
    evil = replace(
        site.papers["2611.10001"],
        id="2611.30000",
        title="<script>alert(1)</script> Evil",
        authors=('<img src=x onerror="alert(2)">',),
        ai_summary="<b>bold</b>",
        upvotes=999,
        hf_date=FRIDAY,
    )
    site.db.papers.upsert([evil], now)
    form = site.get("/subscribe").text
    site.client.post(
        "/subscribe",
        data={
            "csrf_token": csrf_tokens(form)[0],
            "email": "secret.reader@example.org",
            "keywords": "evil",
            "timezone": "UTC",
            "hour": "7",
            "size": "10",
        },
    )
    assert site.db.subscribers.list()
    pages = [
        "/",
        "/papers/2026-11-27",
        "/paper/2611.30000",
        "/search?q=evil",
        "/search?q=<b>evil</b>",
        "/papers/week/2026-W48",
        "/feeds/daily.atom",
        "/search.atom?q=evil",
    ]
    for path in pages:
        r = site.get(path)
        assert r.status_code == 200, path
        assert "<script>alert" not in r.text and "<img src=x" not in r.text, path
        assert "<b>bold</b>" not in r.text and "<b>evil</b>" not in r.text, path
        assert "secret.reader" not in r.text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Evil" in site.get("/paper/2611.30000").text


def test_get_and_head_change_nothing(site: Site) -> None:
    before = site.db.conn.execute("SELECT count(*), max(updated) FROM papers").fetchone()
    for path in ("/", "/paper/2611.10003", "/search?q=cost", "/feeds/daily.atom"):
        assert site.client.head(path).status_code == 200
        assert site.get(path).status_code == 200
    after = site.db.conn.execute("SELECT count(*), max(updated) FROM papers").fetchone()
    assert before == after
    assert site.db.subscribers.list() == []
    assert "Disallow: /feeds/picks/" in site.get("/robots.txt").text
