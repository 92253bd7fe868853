"""arXiv's daily announcement feed (rss.arxiv.org): RSS 2.0 at /rss/, Atom at /atom/.

One request covers every category: `{base}/cs.LG+cs.CL+cs.CV`. Each item's description is
`arXiv:ID Announce Type: new|cross|replace|replace-cross \\nAbstract: ...`. We keep `new`
(and `cross` when asked) and skip replacements. The feed is dated midnight US Eastern; on
weekends and holidays it is a valid channel with no items.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from newsletter.errors import FeedError
from newsletter.models import Paper, split_arxiv_id
from newsletter.sources import ARXIV_RSS, Parsed
from newsletter.sources.arxiv_rdf import parse_legacy
from newsletter.sources.text import capped, clean_text, one_line, parse_xml, split_authors

EASTERN = ZoneInfo("America/New_York")
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "arxiv": "http://arxiv.org/schemas/atom",
    "dc": "http://purl.org/dc/elements/1.1/",
}
_PREFIX = re.compile(
    r"^\s*arXiv:(?P<id>\S+?)\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?",
    re.IGNORECASE,
)
KEEP_ALWAYS = frozenset({"new"})


RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RSS1_NS = "http://purl.org/rss/1.0/"
DC_NS = "http://purl.org/dc/elements/1.1/"


def feed_url(base_url: str, categories: Iterable[str]) -> str:
    """'https://rss.arxiv.org/rss' + ['cs.LG', 'cs.CL'] -> '.../rss/cs.LG+cs.CL'."""
    return f"{base_url.rstrip('/')}/{'+'.join(categories)}"


def no_papers_message(day: date | None) -> str:
    when = day.isoformat() if day else "today"
    return f"arXiv announced no new papers for {when}"


@dataclass(frozen=True)
class _Item:
    """One feed item, RSS or Atom, before it becomes a Paper."""

    title: str
    link: str
    description: str
    categories: tuple[str, ...]
    creator: str
    announce_type: str
    published: str
    doi: str
    journal_ref: str
    guid: str


def _text(el: ET.Element | None) -> str:
    return (el.text or "") if el is not None else ""


def _rss_items(channel: ET.Element) -> Iterator[_Item]:
    for item in channel.iterfind("item"):
        yield _Item(
            title=_text(item.find("title")),
            link=_text(item.find("link")),
            description=_text(item.find("description")),
            categories=tuple(one_line(c.text) for c in item.iterfind("category") if c.text),
            creator=_text(item.find("dc:creator", NS)),
            announce_type=_text(item.find("arxiv:announce_type", NS)),
            published=_text(item.find("pubDate")),
            doi=_text(item.find("arxiv:DOI", NS)),
            journal_ref=_text(item.find("arxiv:journal_reference", NS)),
            guid=_text(item.find("guid")),
        )


def _atom_items(feed: ET.Element) -> Iterator[_Item]:
    for entry in feed.iterfind("atom:entry", NS):
        link = next(
            (
                ln.get("href", "")
                for ln in entry.iterfind("atom:link", NS)
                if ln.get("rel", "alternate") == "alternate"
            ),
            "",
        )
        yield _Item(
            title=_text(entry.find("atom:title", NS)),
            link=link,
            description=_text(entry.find("atom:summary", NS)),
            categories=tuple(
                one_line(c.get("term"))
                for c in entry.iterfind("atom:category", NS)
                if c.get("term")
            ),
            creator=_text(entry.find("dc:creator", NS)),
            announce_type=_text(entry.find("arxiv:announce_type", NS)),
            published=_text(entry.find("atom:published", NS)),
            doi=_text(entry.find("arxiv:DOI", NS)),
            journal_ref=_text(entry.find("arxiv:journal_reference", NS)),
            guid=_text(entry.find("atom:id", NS)),
        )


def eastern_date(stamp: str) -> date | None:
    """An RFC 822 or ISO 8601 time stamp as a US Eastern calendar date."""
    stamp = stamp.strip()
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(stamp)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=EASTERN)
    return when.astimezone(EASTERN).date()


def _paper(item: _Item, day: date | None, url: str) -> Paper:
    m = _PREFIX.match(item.description)
    raw_id = m.group("id") if m else (item.guid.rsplit(":", 1)[-1] or item.link)
    paper_id, version = split_arxiv_id(raw_id)
    abstract = item.description[m.end() :] if m else item.description
    announce_type = one_line(item.announce_type or (m.group("type") if m else "")).lower()
    paper = Paper(
        id=paper_id,
        title=one_line(item.title),
        abstract=clean_text(abstract),
        authors=split_authors(item.creator),
        categories=tuple(dict.fromkeys(item.categories)),
        version=version,
        announce_type=announce_type,
        announced=eastern_date(item.published) or day,
        abs_url=f"https://arxiv.org/abs/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
        sources=(ARXIV_RSS,),
        journal_ref=one_line(item.journal_ref),
        doi=one_line(item.doi),
    )
    return capped(paper, url)


def parse_feed(
    content: bytes, *, include_cross: bool = True, url: str = "the arXiv feed"
) -> Parsed:
    """Parse an rss.arxiv.org RSS 2.0 or Atom feed into the papers worth keeping.

    `day` is the announcement date (US Eastern) from the channel, even when there are no items.
    Raises FeedError when the body is not an arXiv feed (bad XML, an HTML error page).
    """
    root = parse_xml(content, url, "an RSS/Atom feed")
    if root.tag == "rss" and root.find("channel") is not None:
        channel = root.find("channel")
        assert channel is not None
        day = eastern_date(_text(channel.find("pubDate")) or _text(channel.find("lastBuildDate")))
        items = list(_rss_items(channel))
    elif root.tag == f"{{{NS['atom']}}}feed":
        day = eastern_date(_text(root.find("atom:updated", NS)))
        items = list(_atom_items(root))
    elif root.tag == f"{{{RDF_NS}}}RDF":
        channel = root.find(f"{{{RSS1_NS}}}channel")
        day = eastern_date(_text(channel.find(f"{{{DC_NS}}}date") if channel is not None else None))
        return parse_legacy(content, day=day, include_cross=include_cross, url=url)
    else:
        raise FeedError(f"{url} sent XML that is not an RSS or Atom feed (root <{root.tag}>)")
    keep = KEEP_ALWAYS | ({"cross"} if include_cross else set())
    papers: list[Paper] = []
    skipped = 0
    for item in items:
        try:
            paper = _paper(item, day, url)
        except ValueError:
            skipped += 1  # no usable arXiv ID: nothing we could key it by
            continue
        if paper.announce_type in keep:
            papers.append(paper)
        else:
            skipped += 1
    if day is None:
        dates = [p.announced for p in papers if p.announced]
        day = max(dates) if dates else None
    return Parsed(papers=papers, day=day, skipped=skipped)
