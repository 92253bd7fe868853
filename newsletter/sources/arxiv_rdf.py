"""The pre-2024 arXiv RSS 1.0 (RDF) format, still served by some mirrors, read with feedparser.

That format carries HTML in its abstracts and author lists (`<p>…</p>`, `<a href=…>Name</a>`),
which is what feedparser's sanitiser is for; the current feeds carry plain text and are read
strictly by `arxiv_rss.py`. feedparser only ever gets bytes, never a URL, and only bytes that
passed the strict parse first: feedparser strips a DOCTYPE but keeps its "safe" entity
declarations (any plain string, however long) and expands them, in its strict and its loose
parser alike, so a hostile feed must be refused before it gets there.
"""

from __future__ import annotations

import html
import re
from datetime import date

import feedparser

from newsletter.errors import FeedError
from newsletter.models import Paper, split_arxiv_id
from newsletter.sources import ARXIV_RSS, Parsed
from newsletter.sources.text import capped, clean_text, one_line, parse_xml, split_authors

# "Title. (arXiv:1805.09166v1 [hep-ex] CROSS LISTED)" / "... UPDATED)"
_TITLE_TAIL = re.compile(
    r"\s*\(arXiv:(?P<id>[^\s\]]+)\s*\[(?P<cat>[^\]]+)\]\s*(?P<flag>CROSS LISTED|UPDATED)?\)\s*$"
)
_TAG = re.compile(r"<[^>]+>")


def _strip_html(fragment: str) -> str:
    return html.unescape(_TAG.sub(" ", fragment))


def parse_legacy(
    content: bytes, *, day: date | None, include_cross: bool = True, url: str = "the arXiv feed"
) -> Parsed:
    """Parse a legacy RDF feed: new items (and cross-lists when asked); updates are skipped.

    Raises FeedError for bad XML or a DTD (see `parse_xml`) before feedparser sees the bytes.
    """
    parse_xml(content, url, "an RSS 1.0 feed")
    feed = feedparser.parse(content, sanitize_html=True, resolve_relative_uris=False)
    if feed.get("bozo") and not feed.entries:
        raise FeedError(f"{url} sent an RSS 1.0 feed that could not be read: {feed.bozo_exception}")
    papers: list[Paper] = []
    skipped = 0
    for entry in feed.entries:
        m = _TITLE_TAIL.search(entry.get("title", ""))
        if m is None:
            skipped += 1
            continue
        flag = m.group("flag") or ""
        announce_type = {"": "new", "CROSS LISTED": "cross", "UPDATED": "replace"}[flag]
        if announce_type == "replace" or (announce_type == "cross" and not include_cross):
            skipped += 1
            continue
        try:
            paper_id, version = split_arxiv_id(m.group("id"))
        except ValueError:
            skipped += 1
            continue
        creator = _strip_html(entry.get("author", "") or entry.get("dc_creator", ""))
        paper = Paper(
            id=paper_id,
            title=one_line(entry["title"][: m.start()].rstrip().removesuffix(".")),
            abstract=clean_text(_strip_html(entry.get("summary", ""))),
            authors=split_authors(creator),
            categories=(one_line(m.group("cat")),),
            version=version,
            announce_type=announce_type,
            announced=day,
            abs_url=f"https://arxiv.org/abs/{paper_id}",
            pdf_url=f"https://arxiv.org/pdf/{paper_id}",
            sources=(ARXIV_RSS,),
        )
        papers.append(capped(paper, url))
    return Parsed(papers=papers, day=day, skipped=skipped)
