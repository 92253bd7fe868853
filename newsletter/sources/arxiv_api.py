"""The arXiv API (export.arxiv.org/api/query): backfills by category and date, and lookups by ID.

Atom responses, paged with `start`/`max_results`, one request per 3 s (arXiv's rule). Both the
legacy format (until ~Nov 2025: "ArXiv Query" title, hard-wrapped text, http links) and the
current one are read. A bad query answers HTTP 400 with a single error <entry>, which becomes
a FeedError carrying arXiv's own explanation.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, time, timedelta

from newsletter.errors import FeedError
from newsletter.models import Paper, split_arxiv_id
from newsletter.sources import ARXIV_API, Parsed
from newsletter.sources.arxiv_rss import EASTERN
from newsletter.sources.http import HttpClient
from newsletter.sources.text import capped, clean_text, one_line, parse_xml, tex_to_unicode

log = logging.getLogger(__name__)

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "arxiv": "http://arxiv.org/schemas/atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
}
PAGE_SIZE = 200
IDS_PER_REQUEST = 100
MAX_PAGES = 200  # a runaway guard: 40,000 results


def search_params(categories: Sequence[str], first: date, last: date) -> dict[str, str]:
    """Query for papers in any of `categories` submitted between two days (inclusive, GMT)."""
    cats = " OR ".join(f"cat:{c}" for c in categories)
    span = f"submittedDate:[{first:%Y%m%d}0000 TO {last:%Y%m%d}2359]"
    return {
        "search_query": f"({cats}) AND {span}",
        "sortBy": "submittedDate",
        "sortOrder": "descending",
    }


def estimated_announcement(submitted: datetime) -> date:
    """The RSS date arXiv gives a paper submitted at `submitted` (holidays aside).

    Submissions close at 14:00 US Eastern on weekdays; that batch is announced at 20:00 and
    dated the next weekday in the feed (Friday's batch is Monday's feed).
    """
    local = submitted.astimezone(EASTERN)
    cutoff = local.date()
    if local.weekday() >= 5 or local.time() >= time(14):
        cutoff = _next_weekday(cutoff)
    return _next_weekday(cutoff)


def _next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _text(el: ET.Element | None) -> str:
    return (el.text or "") if el is not None else ""


def _int(el: ET.Element | None) -> int | None:
    try:
        return int(_text(el).strip())
    except ValueError:
        return None


def _entry_paper(entry: ET.Element, url: str) -> Paper:
    paper_id, version = split_arxiv_id(_text(entry.find("atom:id", NS)))
    primary_el = entry.find("arxiv:primary_category", NS)
    primary = one_line(primary_el.get("term")) if primary_el is not None else ""
    terms = [one_line(c.get("term")) for c in entry.iterfind("atom:category", NS)]
    categories = tuple(dict.fromkeys(t for t in (primary, *terms) if t))
    published_text = _text(entry.find("atom:published", NS)).strip()
    published = (
        datetime.fromisoformat(published_text.replace("Z", "+00:00")) if published_text else None
    )
    paper = Paper(
        id=paper_id,
        title=one_line(_text(entry.find("atom:title", NS))),
        abstract=clean_text(_text(entry.find("atom:summary", NS))),
        authors=tuple(
            tex_to_unicode(one_line(_text(a.find("atom:name", NS))))
            for a in entry.iterfind("atom:author", NS)
            if _text(a.find("atom:name", NS)).strip()
        ),
        categories=categories,
        version=version,
        announced=estimated_announcement(published) if published else None,
        published=published,
        abs_url=f"https://arxiv.org/abs/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
        sources=(ARXIV_API,),
        journal_ref=one_line(_text(entry.find("arxiv:journal_ref", NS))),
        doi=one_line(_text(entry.find("arxiv:doi", NS))),
    )
    return capped(paper, url)


def parse_page(content: bytes, *, url: str = "the arXiv API") -> Parsed:
    """Parse one API response page (either format). Raises FeedError for arXiv's error entry."""
    root = parse_xml(content, url, "an arXiv API Atom feed")
    if root.tag != f"{{{NS['atom']}}}feed":
        raise FeedError(f"{url} sent XML that is not an Atom feed (root <{root.tag}>)")
    entries = root.findall("atom:entry", NS)
    for entry in entries:
        entry_id = _text(entry.find("atom:id", NS))
        if "/api/errors" in entry_id:
            reason = one_line(_text(entry.find("atom:summary", NS))) or entry_id
            raise FeedError(f"the arXiv API refused the query: {reason} ({url})")
    papers: list[Paper] = []
    skipped = 0
    for entry in entries:
        try:
            papers.append(_entry_paper(entry, url))
        except ValueError as exc:
            log.warning("%s: skipping an entry: %s", url, exc)
            skipped += 1
    return Parsed(
        papers=papers,
        skipped=skipped,
        total=_int(root.find("opensearch:totalResults", NS)),
        start=_int(root.find("opensearch:startIndex", NS)) or 0,
    )


def _get_page(
    client: HttpClient, base_url: str, params: dict[str, str | int], delay: float
) -> Parsed:
    fetched = client.get(base_url, params, min_interval=delay)
    if fetched.ok or fetched.status == 400:  # 400 carries arXiv's explanation in an entry
        parsed = parse_page(fetched.content, url=fetched.url)
        if fetched.ok:
            return parsed
    raise fetched.error("an arXiv API Atom feed")


def fetch_search(
    client: HttpClient,
    base_url: str,
    params: dict[str, str],
    *,
    delay: float = 3.0,
    page_size: int = PAGE_SIZE,
    on_page: Callable[[int, int | None], None] | None = None,
) -> Iterator[Parsed]:
    """Yield every page of a search, `delay` seconds apart; `on_page(done, total)` after each.

    arXiv sometimes answers a page short, or empty, before the end of the results: a short
    page does not end the search, and an empty one before `totalResults` is asked once more.
    """
    start, asked_again = 0, False
    for _ in range(MAX_PAGES):
        page = _get_page(
            client, base_url, {**params, "start": start, "max_results": page_size}, delay
        )
        count = len(page.papers) + page.skipped
        more = page.total is not None and start < page.total
        if count == 0 and more and not asked_again:
            log.info(
                "%s: empty page at start=%d of %s; asking once more", base_url, start, page.total
            )
            asked_again = True
            continue
        asked_again = False
        start += count
        if on_page:
            on_page(start, page.total)
        yield page
        if count == 0 or (page.total is not None and start >= page.total):
            return
    log.warning("%s: stopped after %d pages", base_url, MAX_PAGES)


def fetch_ids(
    client: HttpClient,
    base_url: str,
    ids: Sequence[str],
    *,
    delay: float = 3.0,
    on_page: Callable[[int, int | None], None] | None = None,
) -> Iterator[Parsed]:
    """Yield the papers for `ids` (any version form), IDS_PER_REQUEST per request."""
    done = 0
    for i in range(0, len(ids), IDS_PER_REQUEST):
        chunk = list(ids[i : i + IDS_PER_REQUEST])
        params: dict[str, str | int] = {
            "id_list": ",".join(chunk),
            "start": 0,
            "max_results": len(chunk),
        }
        page = _get_page(client, base_url, params, delay)
        done += len(chunk)
        if on_page:
            on_page(done, len(ids))
        yield page
