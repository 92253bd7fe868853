"""Papers for the public site's tests: real abstracts from the evaluation corpus, on set days."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from pathlib import Path

from newsletter.models import Paper
from newsletter.store import Database

CORPUS = Path(__file__).parent / "fixtures" / "eval" / "corpus.jsonl"
FRIDAY = date(2026, 11, 27)  # the latest day in the store
THURSDAY = date(2026, 11, 26)
CATEGORIES = ("cs.LG", "cs.CL", "cs.CV")


def corpus(n: int) -> list[dict[str, str]]:
    with CORPUS.open(encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(n), f, strict=False)]


def site_papers() -> list[Paper]:
    """40 papers: 20 announced on Thursday, 20 on Friday; every third one on Hugging Face."""
    out = []
    for i, doc in enumerate(corpus(40)):
        day = FRIDAY if i < 20 else THURSDAY
        on_hf = i % 3 == 0
        out.append(
            Paper(
                id=f"2611.{10000 + i}",
                title=doc["title"],
                abstract=doc["abstract"],
                authors=(f"Author{i} Surname", "Ada Lovelace" if i == 5 else "Grace Hopper"),
                categories=(CATEGORIES[i % 3], "stat.ML"),
                version=2,
                announce_type="new",
                announced=day,
                published=datetime.combine(day, time(i % 24), UTC),
                upvotes=(i * 7 % 50 + 1) if on_hf else None,
                comments=(i % 5) if on_hf else None,
                github_repo="org/repo" if i == 3 else "",
                github_stars=120 if i == 3 else None,
                ai_summary="A summary from Hugging Face." if on_hf else "",
                ai_keywords=("segmentation",) if on_hf else (),
                hf_date=day if on_hf else None,
                sources=("arxiv_rss", "huggingface") if on_hf else ("arxiv_rss",),
            )
        )
    return out


def fill(db: Database) -> list[Paper]:
    papers = site_papers()
    db.papers.upsert(papers, datetime(2026, 11, 27, 6, tzinfo=UTC))
    return papers
