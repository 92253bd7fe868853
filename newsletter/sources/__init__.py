"""Paper sources: pure parsers (bytes in, `Paper`s out) plus one shared HTTP client.

- `arxiv_rss`: the day's announcements from rss.arxiv.org (RSS 2.0 or Atom).
- `arxiv_api`: export.arxiv.org/api/query for backfills and single IDs.
- `huggingface`: Hugging Face Daily Papers (upvotes, comments, GitHub stars).
- `http`: the httpx client (timeouts, retries, conditional GET, politeness).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from newsletter.models import Paper

ARXIV_RSS = "arxiv_rss"
ARXIV_API = "arxiv_api"
HUGGINGFACE = "huggingface"
SOURCE_NAMES = (ARXIV_RSS, ARXIV_API, HUGGINGFACE)


@dataclass(frozen=True)
class Parsed:
    """What one response held: the papers kept, plus what a person wants to know about it."""

    papers: list[Paper] = field(default_factory=list)
    day: date | None = None  # the arXiv announcement day, or the Hugging Face day asked for
    skipped: int = 0  # items seen but not kept (replacements, cross-lists when off, bad IDs)
    total: int | None = None  # arXiv API: results matching the query (all pages)
    start: int = 0  # arXiv API: index of the first entry on this page


__all__ = ["ARXIV_API", "ARXIV_RSS", "HUGGINGFACE", "SOURCE_NAMES", "Parsed"]
