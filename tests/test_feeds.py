"""Atom feeds of the public lists and of a subscriber's picks: valid for feedparser (no bozo),
with ETag / Last-Modified answered by 304; the private feed needs its signed link."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest

from newsletter import links
from newsletter.models import Interest, InterestKind, SubscriberStatus
from newsletter.tokens import make_token
from tests.conftest import SECRET
from tests.test_site import Site

NOW = datetime(2026, 11, 27, 8, tzinfo=UTC)
FEEDS = ("/feeds/daily.atom", "/feeds/category/cs.CL.atom", "/search.atom?q=cost+aggregation")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def _parsed(body: bytes) -> feedparser.FeedParserDict:
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    return feed


@pytest.mark.parametrize("path", FEEDS)
def test_public_feeds_are_valid_atom_with_conditional_get(site: Site, path: str) -> None:
    r = site.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = _parsed(r.content)
    assert feed.entries and all(
        e.link.startswith("http://127.0.0.1:8000/paper/") for e in feed.entries
    )
    assert all(e.updated and e.title and e.summary for e in feed.entries)
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert site.get(path, headers={"if-none-match": etag}).status_code == 304
    assert site.get(path, headers={"if-modified-since": modified}).status_code == 304
    changed = site.get(path, headers={"if-none-match": '"something-else"'})
    assert changed.status_code == 200


def test_daily_feed_follows_the_trending_order_and_pages_link_their_feeds(site: Site) -> None:
    feed = _parsed(site.get("/feeds/daily.atom").content)
    page_ids = re.findall(r'<article class="paper" id="p-([^"]+)"', site.get("/").text)
    assert [e.link.rsplit("/", 1)[1] for e in feed.entries][:20] == page_ids
    cl = _parsed(site.get("/feeds/category/cs.CL.atom").content)
    assert all("cs.CL" in [t.term for t in e.tags] for e in cl.entries)
    assert 'href="/search.atom?q=cost+aggregation"' in site.get("/search?q=cost+aggregation").text
    assert site.get("/search.atom").status_code == 400
    assert site.get("/feeds/category/<x>.atom").status_code == 404


def test_a_subscribers_private_feed_has_their_picks_with_reasons(site: Site) -> None:
    db = site.db
    sub, _ = db.subscribers.add("reader@example.org", NOW, status=SubscriberStatus.ACTIVE)
    db.subscribers.set_interests(sub.id, [Interest(InterestKind.KEYWORD, "cost aggregation")], NOW)
    manage = site.get("/" + links.manage_url(site.cfg, sub).split("/", 3)[3]).text
    url = re.search(r'href="(http://127.0.0.1:8000/feeds/picks/[^"]+)"', manage)
    assert url is not None
    r = site.get(url.group(1))
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    feed = _parsed(r.content)
    assert feed.entries and "Cost Aggregation" in feed.entries[0].title
    assert "cost aggregation" in feed.entries[0].summary.lower().split("\n\n")[0]  # the reason
    assert site.get(url.group(1), headers={"if-none-match": r.headers["etag"]}).status_code == 304
    other = make_token(SECRET, "manage", sub.id, sub.nonce)  # a token for another purpose
    assert site.get(f"/feeds/picks/{other}").status_code == 400
    db.subscribers.set_status(sub.id, SubscriberStatus.UNSUBSCRIBED, NOW)
    assert site.get(url.group(1)).status_code == 410


def test_a_control_character_in_a_search_or_a_stored_paper_leaves_every_feed_xml(
    site: Site,
) -> None:
    """XML 1.0 cannot carry most C0 controls even escaped: a feed holding one is not XML and a
    reader drops it whole. They are left out of what the feed shows."""
    first = next(p for p in site.papers.values() if "cost aggregation" in p.abstract.lower())
    hostile = replace(
        first,
        id="2611.99999",
        title="Cost\x01 aggregation\x0b",
        abstract="Form\x0c" + first.abstract,
    )
    site.db.papers.upsert([hostile], NOW)
    for path in (*FEEDS, "/search.atom?q=cost%01aggregation%08"):
        r = site.get(path)
        assert r.status_code == 200, path
        ElementTree.fromstring(r.content)  # expat: strict XML, unlike feedparser's fallback
        _parsed(r.content)
    body = site.get("/search.atom?q=cost+aggregation").text
    assert "<title>Cost aggregation</title>" in body and "https://arxiv.org/abs/2611.99999" in body
