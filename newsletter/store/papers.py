"""The papers table: the merge rules and the queries over it.

Papers are keyed by arXiv ID without version; an arXiv record and a Hugging Face record of
one paper merge into one row, and a later, shorter record never blanks a field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from newsletter.models import Paper
from newsletter.store import search
from newsletter.store.dialect import in_chunks

if TYPE_CHECKING:
    from newsletter.store.database import Database

_JSON_TUPLES = ("authors", "categories", "ai_keywords", "sources")
_DATES = ("announced", "hf_date")
_DATETIMES = ("published", "first_seen", "updated")
_TEXTS = (
    "title",
    "abstract",
    "announce_type",
    "abs_url",
    "pdf_url",
    "github_repo",
    "ai_summary",
    "journal_ref",
    "doi",
)
_PAPER_FIELDS = [f.name for f in fields(Paper)]
_COLUMNS = ", ".join(_PAPER_FIELDS)
_ROW_COLUMNS = [*_PAPER_FIELDS, "primary_category"]
_UPSERT = (
    f"INSERT INTO papers ({', '.join(_ROW_COLUMNS)}) VALUES ({', '.join('?' * len(_ROW_COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ROW_COLUMNS if c != "id")
)


def _paper_to_row(p: Paper) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in _PAPER_FIELDS:
        v = getattr(p, name)
        if name in _JSON_TUPLES:
            row[name] = json.dumps(list(v), ensure_ascii=False)
        elif isinstance(v, date | datetime):
            row[name] = v.isoformat()
        else:
            row[name] = v
    row["primary_category"] = p.primary_category
    return row


def _row_to_paper(values: Sequence[Any]) -> Paper:
    """A row selected as `_COLUMNS` (in that order) as a Paper."""
    kw: dict[str, Any] = {}
    for name, v in zip(_PAPER_FIELDS, values, strict=True):
        if name in _JSON_TUPLES:
            kw[name] = tuple(json.loads(v)) if v else ()
        elif name in _DATES:
            kw[name] = date.fromisoformat(v) if v else None
        elif name in _DATETIMES:
            kw[name] = datetime.fromisoformat(v) if v else None
        elif v is None and name in _TEXTS:
            kw[name] = ""
        else:
            kw[name] = v
    return Paper(**kw)


# Bibliographic fields: arXiv's record is canonical; a Hugging Face copy only fills gaps.
_ARXIV_FIELDS = ("title", "abstract", "authors", "categories", "published", "journal_ref", "doi")


def _from_arxiv(p: Paper) -> bool:
    return any(s.startswith("arxiv") for s in p.sources)


def merge_papers(old: Paper, new: Paper) -> Paper:
    """Combine two records of one paper: fill gaps, take fresher counts, never blank a field."""
    merged: dict[str, Any] = {}
    # The feed's announcement beats an earlier estimate (API papers have no announce type).
    feed_announces = not old.announce_type and bool(new.announce_type)
    arxiv_over_hf = _from_arxiv(new) and not _from_arxiv(old)
    hf_under_arxiv = _from_arxiv(old) and not _from_arxiv(new)
    for name in _PAPER_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if name == "sources":
            merged[name] = tuple(dict.fromkeys((*a, *b)))
        elif name == "version":
            merged[name] = max(v for v in (a, b, 0) if v is not None) or None
        elif name in ("announced", "announce_type"):
            merged[name] = (b or a) if feed_announces else (a or b)
        elif name == "first_seen":
            merged[name] = a or b  # the first sighting stays the first
        elif name in ("upvotes", "comments", "github_stars"):
            merged[name] = b if b is not None else a
        elif name in _ARXIV_FIELDS and a and b and (hf_under_arxiv or arxiv_over_hf):
            merged[name] = b if arxiv_over_hf else a
        elif name in ("title", "abstract"):
            # A later copy replaces the text unless it looks truncated.
            merged[name] = b if b and (not a or len(b) >= len(a) * 0.9) else a
        else:
            merged[name] = b if b else a
    return Paper(**merged)


@dataclass(frozen=True)
class UpsertResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    added_ids: frozenset[str] = frozenset()
    updated_ids: frozenset[str] = frozenset()


class PaperCounts(NamedTuple):
    """What a listing sorts by, without the text: the ID, the counts and the dates."""

    id: str
    upvotes: int | None
    comments: int | None
    github_stars: int | None
    announced: date | None
    hf_date: date | None
    published: str


def _day(v: str | None) -> date | None:
    return date.fromisoformat(v) if v else None


def _in_range(start: date | None, end: date | None, prefix: str = "") -> tuple[str, list[str]]:
    """A WHERE fragment for papers announced or listed in [start, end] (open ends allowed)."""
    lo, hi = (start or date.min).isoformat(), (end or date.max).isoformat()
    sql = f"(({prefix}announced BETWEEN ? AND ?) OR ({prefix}hf_date BETWEEN ? AND ?))"
    return sql, [lo, hi, lo, hi]


def _category(category: str, prefix: str = "") -> tuple[str, list[str]]:
    # Categories are stored as a JSON list; the quotes make "cs.CL" not match "cs.CLX".
    return f"{prefix}categories LIKE ?", ["%" + json.dumps(category) + "%"]


class Papers:
    """Papers by arXiv ID: merged on the way in, found by day, ID or text."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn = database.conn

    def _select(self, where: str, params: Sequence[object]) -> list[Paper]:
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM papers {where}", params).fetchall()
        return [_row_to_paper(r) for r in rows]

    def upsert(self, papers: Iterable[Paper], now: datetime) -> UpsertResult:
        """Insert new papers and merge known ones; unchanged rows are not rewritten."""
        incoming: dict[str, Paper] = {}
        for p in papers:
            incoming[p.id] = merge_papers(incoming[p.id], p) if p.id in incoming else p
        added: set[str] = set()
        updated: set[str] = set()
        rows = []
        # Read and write in one transaction: a parallel fetch cannot interleave.
        with self._database.transaction():
            existing = self.get_many(list(incoming))
            for pid, paper in incoming.items():
                old = existing.get(pid)
                if old is None:
                    rows.append(_paper_to_row(replace(paper, first_seen=now, updated=now)))
                    added.add(pid)
                    continue
                merged = merge_papers(old, paper)
                if replace(merged, updated=None) == replace(old, updated=None):
                    continue
                rows.append(_paper_to_row(replace(merged, updated=now)))
                updated.add(pid)
            if rows:
                self._conn.executemany(_UPSERT, [[row[c] for c in _ROW_COLUMNS] for row in rows])
        unchanged = len(incoming) - len(added) - len(updated)
        return UpsertResult(
            len(added), len(updated), unchanged, frozenset(added), frozenset(updated)
        )

    def get_many(self, ids: Sequence[str]) -> dict[str, Paper]:
        """The stored papers among `ids`, by ID (unknown IDs are left out)."""
        out: dict[str, Paper] = {}
        for chunk in in_chunks(ids):
            marks = ",".join("?" * len(chunk))
            for paper in self._select(f"WHERE id IN ({marks})", list(chunk)):
                out[paper.id] = paper
        return out

    def get(self, paper_id: str) -> Paper | None:
        return self.get_many([paper_id]).get(paper_id)

    def between(self, start: date, end: date) -> list[Paper]:
        """Papers announced on arXiv, or listed on HF Daily Papers, in [start, end]."""
        return self._select(
            "WHERE (announced BETWEEN ? AND ?) OR (hf_date BETWEEN ? AND ?)"
            " ORDER BY COALESCE(announced, hf_date) DESC, id",
            [start.isoformat(), end.isoformat()] * 2,
        )

    def search(self, text: str = "", on: date | None = None, limit: int = 50) -> list[Paper]:
        """Newest first: papers whose title, abstract or authors contain `text`, on day `on`."""
        where: list[str] = []
        params: list[object] = []
        if text:
            where.append("(title LIKE ? OR abstract LIKE ? OR authors LIKE ?)")
            params += [f"%{text}%"] * 3
        if on:
            where.append("(announced = ? OR hf_date = ?)")
            params += [on.isoformat()] * 2
        sql = (" WHERE " + " AND ".join(where)) if where else ""
        sql += " ORDER BY COALESCE(announced, hf_date) DESC, id LIMIT ?"
        return self._select(sql, [*params, limit])

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM papers").fetchone()[0])

    def counts_by_source(self, on: date) -> dict[str, int]:
        """How many papers of day `on` each source supplied (a paper may count for several)."""
        counts: dict[str, int] = {}
        rows = self._conn.execute(
            "SELECT sources FROM papers WHERE announced = ? OR hf_date = ?", [on.isoformat()] * 2
        ).fetchall()
        for (sources,) in rows:
            for source in json.loads(sources or "[]"):
                counts[source] = counts.get(source, 0) + 1
        return counts

    def latest_day(self) -> date | None:
        """The most recent arXiv announcement or Hugging Face listing day stored."""
        row = self._conn.execute(
            "SELECT max(d) FROM (SELECT max(announced) AS d FROM papers"
            " UNION ALL SELECT max(hf_date) FROM papers) AS days"
        ).fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    # ------------------------------------------------------------ the public site

    def counts_between(self, start: date, end: date, category: str = "") -> list[PaperCounts]:
        """The counts and dates of the papers of [start, end] (optionally one category)."""
        where, params = _in_range(start, end)
        if category:
            extra, more = _category(category)
            where, params = f"{where} AND {extra}", params + more
        rows = self._conn.execute(
            "SELECT id, upvotes, comments, github_stars, announced, hf_date, published"
            f" FROM papers WHERE {where}",
            params,
        ).fetchall()
        return [
            PaperCounts(r[0], r[1], r[2], r[3], _day(r[4]), _day(r[5]), r[6] or "") for r in rows
        ]

    def neighbour_day(self, day: date, *, later: bool) -> date | None:
        """The closest day after (or before) `day` that has papers."""
        op, agg = (">", "min") if later else ("<", "max")
        row = self._conn.execute(
            f"SELECT {agg}(d) FROM (SELECT {agg}(announced) AS d FROM papers"
            f" WHERE announced {op} ? UNION ALL SELECT {agg}(hf_date) FROM papers"
            f" WHERE hf_date {op} ?) AS days",
            [day.isoformat()] * 2,
        ).fetchone()
        return _day(row[0]) if row else None

    def recent_days(self, limit: int = 30) -> list[date]:
        """The latest days that have arXiv announcements, newest first."""
        rows = self._conn.execute(
            "SELECT DISTINCT announced FROM papers WHERE announced IS NOT NULL"
            " ORDER BY announced DESC LIMIT ?",
            [limit],
        ).fetchall()
        return [date.fromisoformat(r[0]) for r in rows]

    def match(
        self,
        query: str,
        *,
        start: date | None = None,
        end: date | None = None,
        category: str = "",
        limit: int = 500,
        best_of: int = 5_000,
        newest: bool = False,
    ) -> tuple[list[str], int]:
        """IDs of up to `limit` papers matching a full-text `query`, and how many match (counted
        up to `best_of` + 1).

        When at most `best_of` papers match, the `limit` best (by FTS5's BM25 on SQLite,
        `ts_rank` on PostgreSQL: see `store/search.py`) come back; above that (or with
        `newest`), ranking every match would take seconds, so the newest `limit` come back.
        `query` is FTS5 syntax: build it from quoted terms, never from raw input.
        """
        where: list[str] = []
        params: list[object] = []
        if start or end:
            extra, more = _in_range(start, end, "p.")
            where, params = [extra], params + more
        if category:
            extra, more = _category(category, "p.")
            where, params = [*where, extra], params + more
        return search.match(
            self._conn,
            self._database.dialect.postgres,
            query,
            (" AND ".join(where), params),
            limit=limit,
            best_of=best_of,
            newest=newest,
        )
