"""What the public pages list: a range of days in trending order, search results, neighbours.

Orders come from the ranker (`ranking.trending` for listings, `ranking.search` for search and
similar papers); the store supplies candidates. Nothing here reads or shows subscribers.
"""

from __future__ import annotations

import calendar
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from newsletter.models import Paper, split_arxiv_id
from newsletter.ranking.rank import ranker_options
from newsletter.ranking.search import query_terms, search_scores, similar_scores
from newsletter.ranking.textindex import STOPWORDS
from newsletter.ranking.trending import trending_from_counts, trending_scores
from newsletter.store import Database

PER_PAGE = 25
MAX_PAGE = 400
MAX_QUERY_CHARS = 300
MAX_RANGE_DAYS = 31 * 12
CANDIDATES = 100  # search results the ranker orders (the full-text index finds them)
BEST_OF = 2_000  # above this many matches, the newest candidates are ranked
SIMILAR_CANDIDATES = 30
# Similar papers need a few good candidates, not the best of thousands: above this many
# matches FTS5 returns the newest instead of sorting every match by BM25.
SIMILAR_BEST_OF = 300
SORTS = ("trending", "newest")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SEARCH_SORTS = ("relevance", "trending", "newest")

_ARXIV_ID = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)/|arxiv:\s*|^)(\d{4}\.\d{4,5}(?:v\d+)?)(?:\.pdf)?/?$", re.I
)
_PHRASE = re.compile(r'"([^"]*)"')
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


class BadRequest(ValueError):
    """A query, page or range outside what the site accepts; the message says what to do."""


@dataclass(frozen=True)
class Page:
    """One page of a listing: the papers shown, the total and where the page is."""

    papers: list[Paper]
    total: int
    page: int
    pages: int
    note: str = ""
    terms: frozenset[str] = field(default_factory=frozenset)


def page_number(raw: str | None) -> int:
    try:
        n = int(raw or "1")
    except ValueError:
        raise BadRequest("The page number must be a whole number such as 2.") from None
    if not 1 <= n <= MAX_PAGE:
        raise BadRequest(f"The page number must be between 1 and {MAX_PAGE}.")
    return n


def _paged(
    ordered: list[str], db: Database, page: int, per_page: int = PER_PAGE, **extra: object
) -> Page:
    pages = max(1, -(-len(ordered) // per_page))
    page = min(page, pages)  # past the end: the last page, not an empty one
    chunk = ordered[(page - 1) * per_page : page * per_page]
    found = db.papers.get_many(chunk)
    papers = [found[i] for i in chunk if i in found]
    return Page(papers, len(ordered), page, pages, **extra)  # type: ignore[arg-type]


def listing(
    db: Database,
    start: date,
    end: date,
    *,
    sort: str,
    category: str,
    page: int,
    per_page: int = PER_PAGE,
) -> Page:
    """The papers of [start, end]: by the digests' trending signal (papers without a Hugging
    Face record after those with one), or newest first."""
    rows = db.papers.counts_between(start, end, category)
    if sort == "newest":
        rows.sort(key=lambda r: (r.published, r.id), reverse=True)
        return _paged([r.id for r in rows], db, page, per_page)
    trend = trending_from_counts(
        [r.upvotes for r in rows],
        [r.comments for r in rows],
        [r.github_stars for r in rows],
        [
            (r.hf_date or r.announced or date.min).toordinal() if (r.hf_date or r.announced) else -1
            for r in rows
        ],
        end.toordinal(),
    )
    order = sorted(range(len(rows)), key=lambda i: (-trend[i], rows[i].id))
    return _paged([rows[i].id for i in order], db, page, per_page)


def arxiv_id_in(query: str) -> str:
    """The bare arXiv ID when the query is an ID or an arXiv URL, else ''."""
    m = _ARXIV_ID.search(query.strip())
    return split_arxiv_id(m.group(1))[0] if m else ""


def fts_query(query: str, *, any_word: bool = False) -> str:
    """The FTS5 query for what a person typed: quoted phrases stay phrases, words are ANDed.

    Every term is quoted, so FTS5 operators typed by a visitor are searched as words.
    """
    parts = [" ".join(_TOKEN.findall(p)) for p in _PHRASE.findall(query)]
    rest = _PHRASE.sub(" ", query)
    words = [w for w in _TOKEN.findall(rest) if w.lower() not in STOPWORDS or len(rest) < 4]
    terms = [f'"{p}"' for p in parts if p] + [f'"{w}"' for w in words]
    return (" OR " if any_word else " ").join(terms)


def check_query(query: str) -> str:
    query = " ".join(query.split())
    if len(query) > MAX_QUERY_CHARS:
        raise BadRequest(
            f"The search is {len(query)} characters long; please use at most {MAX_QUERY_CHARS}."
        )
    return query


def date_range(raw_from: str, raw_to: str) -> tuple[date | None, date | None]:
    """The optional search date range, checked: real dates, in order, at most a year apart."""
    try:
        start = date.fromisoformat(raw_from) if raw_from else None
        end = date.fromisoformat(raw_to) if raw_to else None
    except ValueError:
        raise BadRequest("Dates must look like 2026-11-27.") from None
    if start and end and start > end:
        raise BadRequest("The start date is after the end date.")
    if start and end and (end - start).days > MAX_RANGE_DAYS:
        raise BadRequest("A date range can span at most a year; search without one instead.")
    return start, end


@dataclass(frozen=True)
class Search:
    query: str
    sort: str = "relevance"
    category: str = ""
    start: date | None = None
    end: date | None = None
    page: int = 1


def _newest_first(papers: list[Paper]) -> np.ndarray:
    keys = [(p.published or _EPOCH, p.id) for p in papers]
    return np.array(sorted(range(len(papers)), key=keys.__getitem__, reverse=True))


def _candidates(db: Database, match: str, s: Search) -> tuple[list[str], int]:
    """What the ranker orders: the newest matches for "newest", else the best by FTS5."""
    return db.papers.match(
        match,
        start=s.start,
        end=s.end,
        category=s.category,
        limit=CANDIDATES,
        best_of=BEST_OF,
        newest=s.sort == "newest",
    )


def search(db: Database, s: Search, *, trending_weight: float = 0.25) -> Page:
    """Papers matching `s.query`, ordered by the ranker (or by trending / newest)."""
    terms = query_terms(s.query)
    note = ""
    match = fts_query(s.query)
    if not match:
        return Page([], 0, 1, 1, "Type a word, a phrase in quotes, an author or an arXiv ID.")
    ids, total = _candidates(db, match, s)
    if not ids and len(_TOKEN.findall(s.query)) > 1:
        ids, total = _candidates(db, fts_query(s.query, any_word=True), s)
        if ids:
            note = "No paper has all of these words; these have some of them."
    found = db.papers.get_many(ids)
    papers = [found[i] for i in ids if i in found]
    if not papers:
        return Page([], 0, 1, 1, note, terms)
    latest = max((p.hf_date or p.announced or date.min) for p in papers)
    today = latest if latest != date.min else None
    options = ranker_options("default", trending_weight=trending_weight)
    final, _ = search_scores(papers, s.query, today=today, options=options)
    if s.sort == "trending":
        key = trending_scores(papers, today)
        order = np.argsort(-key, kind="stable")
    elif s.sort == "newest":
        order = _newest_first(papers)
    else:
        order = np.argsort(-final, kind="stable")
    ranked = [papers[int(i)].id for i in order]
    if total > BEST_OF:
        best = "newest" if s.sort == "newest" else "best of the newest"
        note = note or (
            f"More than {BEST_OF:,} papers match: these are the {best} {len(ranked)}. "
            "Add words, a date range or a category to narrow it down."
        )
    elif total > len(ranked):
        note = note or f"{total:,} papers match; the best {len(ranked)} are shown."
    return _paged(ranked, db, s.page, note=note, terms=terms)


def similar(db: Database, paper: Paper, k: int = 5) -> list[Paper]:
    """Papers like `paper` by the ranker's tf-idf similarity, among full-text candidates:
    those sharing a pair of adjacent title words (rarer than single words, so quick to find),
    then, when that finds too few, those sharing a title word."""
    words = [w for w in _TOKEN.findall(paper.title) if w.lower() not in STOPWORDS and len(w) > 2]
    ids: list[str] = []
    for terms in ([f"{a} {b}" for a, b in itertools.pairwise(words)], words):
        if len(ids) > k or not terms:
            continue
        query = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))
        more, _ = db.papers.match(query, limit=SIMILAR_CANDIDATES + 1, best_of=SIMILAR_BEST_OF)
        ids += [i for i in more if i != paper.id and i not in ids]
    found = db.papers.get_many(ids[:SIMILAR_CANDIDATES])
    candidates = list(found.values())
    sims = similar_scores(paper, candidates, ranker_options("default"))
    order = np.argsort(-sims, kind="stable")[:k]
    return [candidates[int(i)] for i in order if sims[int(i)] > 0.05]


def week_bounds(raw: str) -> tuple[date, date]:
    m = re.fullmatch(r"(\d{4})-W(\d{2})", raw)
    try:
        if not m:
            raise ValueError
        start = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        end = start + timedelta(days=6)  # overflows past year 9999
    except (ValueError, OverflowError):
        raise BadRequest("A week looks like 2026-W48 (ISO year and week number).") from None
    return start, end


def month_bounds(raw: str) -> tuple[date, date]:
    m = re.fullmatch(r"(\d{4})-(\d{2})", raw)
    try:
        if not m:
            raise ValueError
        start = date(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise BadRequest("A month looks like 2026-11.") from None
    return start, start.replace(day=calendar.monthrange(start.year, start.month)[1])
