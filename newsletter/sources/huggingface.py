"""Hugging Face Daily Papers (`/api/daily_papers?date=D&limit=100&p=N`): the trending signal.

Upvotes sit inside `paper`, the comment count (`numComments`) outside it; GitHub repo and
stars and the AI keywords/summary come along. Papers are keyed by their arXiv ID so they
merge with the arXiv rows. A weekend answers `[]`; a bad request answers `{"error": ...}`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

from newsletter.errors import FeedError
from newsletter.models import Paper, split_arxiv_id
from newsletter.sources import HUGGINGFACE, Parsed
from newsletter.sources.http import Fetched, HttpClient
from newsletter.sources.text import capped, clean_text, one_line

log = logging.getLogger(__name__)

PAGE_LIMIT = 100  # the API refuses more
MAX_PAGES = 20


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _paper(item: dict[str, Any], requested: date | None, url: str) -> Paper:
    inner = item.get("paper")
    if not isinstance(inner, dict):
        raise ValueError("item has no 'paper' object")
    paper_id, _ = split_arxiv_id(_str(inner.get("id")))
    authors = tuple(
        one_line(a["name"])
        for a in inner.get("authors") or []
        if isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"].strip()
    )
    keywords = tuple(
        one_line(k) for k in inner.get("ai_keywords") or [] if isinstance(k, str) and k.strip()
    )
    paper = Paper(
        id=paper_id,
        title=one_line(_str(inner.get("title")) or _str(item.get("title"))),
        abstract=clean_text(_str(inner.get("summary")) or _str(item.get("summary"))),
        authors=authors,
        published=_when(inner.get("publishedAt")),
        abs_url=f"https://arxiv.org/abs/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
        upvotes=_count(inner.get("upvotes")),
        comments=_count(item.get("numComments")),
        github_repo=one_line(_str(inner.get("githubRepo"))),
        github_stars=_count(inner.get("githubStars")),
        ai_keywords=tuple(dict.fromkeys(keywords)),
        ai_summary=one_line(_str(inner.get("ai_summary"))),
        hf_date=_day(inner.get("submittedOnDailyAt")) or requested,
        sources=(HUGGINGFACE,),
    )
    return capped(paper, url)


def parse_daily(content: bytes, *, day: date | None = None, url: str = "Hugging Face") -> Parsed:
    """Parse one Daily Papers page. Items without `submittedOnDailyAt` get `day`.

    Raises FeedError for the API's error object or a body that is not the expected JSON.
    """
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        looks_html = content[:200].lstrip().lower().startswith((b"<!doctype", b"<html"))
        what = "an HTML page" if looks_html else f"malformed JSON ({exc})"
        raise FeedError(f"{url} sent {what} instead of a Daily Papers list") from None
    if isinstance(data, dict) and "error" in data:
        raise FeedError(f"Hugging Face refused {url}: {one_line(str(data['error']))}")
    if not isinstance(data, list):
        raise FeedError(f"{url} sent JSON that is not a list of papers")
    papers: list[Paper] = []
    skipped = 0
    for item in data:
        try:
            if not isinstance(item, dict):
                raise ValueError("item is not an object")
            papers.append(_paper(item, day, url))
        except ValueError as exc:
            log.warning("%s: skipping an item: %s", url, exc)
            skipped += 1
    return Parsed(papers=papers, day=day, skipped=skipped)


def fetch_day(
    client: HttpClient,
    base_url: str,
    day: date,
    *,
    validators: Callable[[str], tuple[str | None, str | None, int | None]] | None = None,
    on_page: Callable[[int], None] | None = None,
) -> Iterator[tuple[str, Parsed | None, Fetched]]:
    """Yield (url, parsed page or None when not modified, Fetched) until a short page.

    `validators(url)` returns the stored (ETag, Last-Modified, item count) of a page, for a
    conditional GET; after a 304 the next page is asked for only if that page was full.
    """
    for page_number in range(MAX_PAGES):
        params: dict[str, str | int] = {
            "date": day.isoformat(),
            "limit": PAGE_LIMIT,
            "p": page_number,
        }
        key = f"{base_url}?date={day.isoformat()}&limit={PAGE_LIMIT}&p={page_number}"
        etag, modified, last_count = validators(key) if validators else (None, None, None)
        fetched = client.get(base_url, params, etag=etag, last_modified=modified)
        if fetched.not_modified:
            yield key, None, fetched
            if last_count != PAGE_LIMIT:
                return
            continue
        if not fetched.ok and not fetched.content.lstrip().startswith(b"{"):
            raise fetched.error("a Daily Papers list")
        parsed = parse_daily(fetched.content, day=day, url=key)
        if not fetched.ok:  # an error status with a JSON body that was not an error object
            raise fetched.error("a Daily Papers list")
        if on_page:
            on_page(page_number + 1)
        yield key, parsed, fetched
        if len(parsed.papers) + parsed.skipped < PAGE_LIMIT:
            return
