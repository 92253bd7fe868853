"""Digests built straight from models for the render and preview tests (no ranker needed).

Titles and abstracts are real (tests/fixtures/corpus_sample.jsonl, from the shared eval corpus);
authors, categories and counts are made up around them.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from newsletter.models import Digest, Interest, InterestKind, Paper, Pick, Subscriber

FIXTURES = Path(__file__).parent / "fixtures"
DAY = date(2026, 11, 26)
NAMES = [
    "Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger W. Dijkstra", "Barbara Liskov",
    "Donald E. Knuth", "Frances Allen", "John McCarthy", "Radia Perlman", "Leslie Lamport",
]  # fmt: skip


def corpus() -> list[dict[str, str]]:
    lines = (FIXTURES / "corpus_sample.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def paper(i: int, row: dict[str, str], **changes: object) -> Paper:
    fields: dict[str, object] = {
        "id": f"2611.{10000 + i:05d}",
        "title": row["title"],
        "abstract": row["abstract"],
        "authors": tuple(NAMES[: 2 + i % 9]),
        "categories": (("cs.LG", "cs.CL", "cs.CV")[i % 3], "stat.ML"),
        "upvotes": 120 - i * 3 if i % 4 != 3 else None,
        "comments": i % 5 or None,
        "github_repo": f"https://github.com/example/repo-{i}" if i % 2 == 0 else "",
        "github_stars": 1500 - i * 40 if i % 2 == 0 else None,
        "sources": ("arxiv_rss", "huggingface") if i % 3 != 2 else ("arxiv_rss",),
        "announced": DAY,
    }
    fields.update(changes)
    return Paper(**fields)  # type: ignore[arg-type]


def subscriber(
    sid: int = 7, email: str = "reader@example.org", name: str = "Rea Der"
) -> Subscriber:
    return Subscriber(id=sid, email=email, name=name)


def make_digest(
    n_picks: int = 5,
    n_trending: int = 3,
    *,
    sub: Subscriber | None = None,
    papers: list[Paper] | None = None,
    empty_reason: str = "",
) -> Digest:
    rows = corpus()
    if papers is None:
        papers = [paper(i, rows[i % len(rows)]) for i in range(n_picks + n_trending)]
    picks = tuple(
        Pick(p, 1.0 - i / 100, reason=f"matches: KV cache, quantization · ▲ {p.upvotes or 0}")
        for i, p in enumerate(papers[:n_picks])
    )
    trending = tuple(Pick(p, 0.5, reason="trending") for p in papers[n_picks:])
    return Digest(
        subscriber=sub or subscriber(),
        date=DAY,
        picks=picks,
        trending=trending,
        interests=(
            Interest(InterestKind.KEYWORD, "KV cache"),
            Interest(InterestKind.KEYWORD, "quantization"),
            Interest(InterestKind.CATEGORY, "cs.CL"),
            Interest(InterestKind.NOT_KEYWORD, "crypto"),
        ),
        empty_reason=empty_reason,
    )
