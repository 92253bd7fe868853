"""The runs and fetch_state tables: what each fetch or send run did, and per feed URL the
validators and errors the next fetch and `newsletter status` need."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from newsletter.models import FetchState, Run

if TYPE_CHECKING:
    from newsletter.store.database import Database

_RUN_COLUMNS = "id, kind, started_at, finished_at, outcome, summary"
_STATE_COLUMNS = (
    "url, source, etag, last_modified, last_success, last_count, last_error, last_error_at"
)


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _run(row: tuple[int, str, str, str | None, str | None, str | None]) -> Run:
    run_id, kind, started_at, finished_at, outcome, summary = row
    return Run(
        id=run_id,
        kind=kind,
        started_at=datetime.fromisoformat(started_at),
        finished_at=_when(finished_at),
        outcome=outcome or "",
        summary=summary or "",
    )


def _state(
    row: tuple[str, str, str | None, str | None, str | None, int | None, str | None, str | None],
) -> FetchState:
    url, source, etag, last_modified, last_success, last_count, last_error, last_error_at = row
    return FetchState(
        url=url,
        source=source,
        etag=etag,
        last_modified=last_modified,
        last_success=_when(last_success),
        last_count=last_count,
        last_error=last_error or "",
        last_error_at=_when(last_error_at),
    )


class Runs:
    """Runs (started, finished with an outcome) and the per-URL fetch state."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn = database.conn

    def _runs(self, where: str, params: list[object]) -> list[Run]:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs {where}"
        return [_run(r) for r in self._conn.execute(sql, params).fetchall()]

    def start(self, kind: str, now: datetime) -> int:
        """Record that a run of `kind` started; returns its id for `finish`."""
        (row,) = self._conn.execute(
            "INSERT INTO runs (kind, started_at) VALUES (?, ?) RETURNING id",
            [kind, now.isoformat()],
        ).fetchall()  # read to the end: SQLite ends the statement (and its write) there
        return int(row[0])

    def finish(self, run_id: int, outcome: str, summary: str, now: datetime) -> None:
        self._conn.execute(
            "UPDATE runs SET finished_at = ?, outcome = ?, summary = ? WHERE id = ?",
            [now.isoformat(), outcome, summary, run_id],
        )

    def last(self, kind: str | None = None, limit: int = 5) -> list[Run]:
        """The newest runs (of `kind`, or of every kind) first."""
        if kind is None:
            return self._runs("ORDER BY id DESC LIMIT ?", [limit])
        return self._runs("WHERE kind = ? ORDER BY id DESC LIMIT ?", [kind, limit])

    def latest_per_kind(self) -> dict[str, Run]:
        """The newest run of each kind (fetch, send, ...)."""
        runs = self._runs("WHERE id IN (SELECT max(id) FROM runs GROUP BY kind) ORDER BY kind", [])
        return {r.kind: r for r in runs}

    def last_successful(self, kind: str) -> Run | None:
        """The newest finished run of `kind` whose outcome is not a failure."""
        runs = self._runs(
            "WHERE kind = ? AND finished_at IS NOT NULL"
            " AND COALESCE(outcome, '') NOT IN ('failed', 'error') ORDER BY id DESC LIMIT 1",
            [kind],
        )
        return runs[0] if runs else None

    # ------------------------------------------------------------ fetch state

    def fetch_state(self, url: str) -> FetchState | None:
        row = self._conn.execute(
            f"SELECT {_STATE_COLUMNS} FROM fetch_state WHERE url = ?", [url]
        ).fetchone()
        return _state(row) if row else None

    def fetch_states(self) -> list[FetchState]:
        """Every URL fetched so far, by source and URL."""
        rows = self._conn.execute(
            f"SELECT {_STATE_COLUMNS} FROM fetch_state ORDER BY source, url"
        ).fetchall()
        return [_state(r) for r in rows]

    def record_fetch_success(
        self,
        url: str,
        source: str,
        now: datetime,
        *,
        etag: str | None,
        last_modified: str | None,
        count: int,
    ) -> None:
        """Remember a good answer: its validators and item count; clears the last error."""
        self._upsert_state(
            url,
            source,
            etag=etag,
            last_modified=last_modified,
            last_success=now.isoformat(),
            last_count=count,
            last_error=None,
        )

    def record_fetch_error(self, url: str, source: str, error: str, now: datetime) -> None:
        """Remember a failure; the validators and the last success stay."""
        self._upsert_state(url, source, last_error=error, last_error_at=now.isoformat())

    def _upsert_state(self, url: str, source: str, **values: str | int | None) -> None:
        """Insert the URL's state, or change only the given columns of the one stored."""
        columns = ["url", "source", *values]
        self._conn.execute(
            f"INSERT INTO fetch_state ({', '.join(columns)})"
            f" VALUES ({', '.join('?' * len(columns))}) ON CONFLICT (url) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in columns[1:]),
            [url, source, *values.values()],
        )
