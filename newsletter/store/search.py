"""Full-text search over papers' titles, abstracts and authors, per backend.

SQLite answers from its FTS5 index (`papers_fts`, BM25 order); PostgreSQL from a GIN index on
`pg_document()` (a tsvector with English stemming, as FTS5's porter tokenizer), ordered by
`ts_rank`. Both take the query in the form `web/catalog.fts_query` builds: quoted terms,
joined by spaces (all of them) or by ` OR ` (any of them).
"""

from __future__ import annotations

import re
from typing import Any, Protocol


def pg_document(prefix: str = "") -> str:
    """The text PostgreSQL searches (migration 4 indexes exactly this expression; a table
    alias `prefix` does not change which index serves it)."""
    return (
        f"to_tsvector('english', coalesce({prefix}title, '') || ' ' ||"
        f" coalesce({prefix}abstract, '') || ' ' || coalesce({prefix}authors, ''))"
    )


_TERM = re.compile(r'"([^"]*)"')


class _Conn(Protocol):
    def execute(self, sql: str, params: list[Any], /) -> Any: ...


def _pg_tsquery(query: str) -> tuple[str, list[str]]:
    """An FTS5 query of quoted terms as a tsquery expression and its parameters."""
    terms = [t for t in _TERM.findall(query) if t.strip()]
    any_word = "OR" in _TERM.sub(" ", query).split()
    joiner = " || " if any_word else " && "
    expression = joiner.join("phraseto_tsquery('english', ?)" for _ in terms)
    return f"({expression or 'NULL::tsquery'})", terms


def match(
    conn: _Conn,
    postgres: bool,
    query: str,
    filters: tuple[str, list[Any]],
    *,
    limit: int,
    best_of: int,
    newest: bool,
) -> tuple[list[str], int]:
    """IDs of up to `limit` papers matching `query` and the filters (a WHERE fragment on
    papers `p`), best first, and how many match (counted up to `best_of` + 1); above `best_of`
    matches, or with `newest`, the newest instead of the best."""
    extra, extra_params = filters
    if postgres:
        tsquery, terms = _pg_tsquery(query)
        document = pg_document("p.")
        source, params = f"FROM papers p WHERE {document} @@ {tsquery}", list(terms)
        rank = f"ts_rank({document}, {tsquery}) DESC, p.id"
        rank_params = list(terms)
        latest = "p.first_seen DESC, p.id DESC"
    else:
        source = "FROM papers_fts JOIN papers p ON p.rowid = papers_fts.rowid"
        source, params = f"{source} WHERE papers_fts MATCH ?", [query]
        rank, rank_params, latest = "rank", [], "papers_fts.rowid DESC"
    if extra:
        source, params = f"{source} AND {extra}", params + extra_params
    total = int(
        conn.execute(
            f"SELECT count(*) FROM (SELECT 1 {source} LIMIT ?) AS hits", [*params, best_of + 1]
        ).fetchone()[0]
    )
    best = total <= best_of and not newest
    order, order_params = (rank, rank_params) if best else (latest, [])
    rows = conn.execute(
        f"SELECT p.id {source} ORDER BY {order} LIMIT ?", [*params, *order_params, limit]
    ).fetchall()
    return [r[0] for r in rows], total
