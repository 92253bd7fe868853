"""Rate limits kept in the SQLite file: all limits or none, sliding windows, and one count that
every connection (another process, a restarted one) sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.store import Database
from newsletter.store.limits import MAX_WINDOW_SECONDS, Limit

HOUR = 3600.0


def _hits(store: Database) -> list[tuple[str, float]]:
    return store.conn.execute("SELECT key, at FROM rate_hits ORDER BY id").fetchall()


def test_an_event_counts_against_every_limit_or_against_none(store: Database) -> None:
    tight, loose = Limit("mailbox:a@x", 2, HOUR), Limit("all", 10, HOUR)
    assert store.limits.acquire([tight, loose], 1000.0) == 0
    assert store.limits.acquire([tight, loose], 1010.0) == 0
    # The tight limit is used up: the attempt is refused and the loose one is not charged.
    assert store.limits.acquire([tight, loose], 1020.0) == 1000 + 3600 - 1020 + 1
    assert _hits(store).count(("all", 1020.0)) == 0
    assert len(_hits(store)) == 4
    assert store.limits.acquire([loose], 1030.0) == 0  # other keys are not held up


def test_the_window_slides(store: Database) -> None:
    limit = Limit("client:192.0.2.1", 2, 100.0)
    assert store.limits.acquire([limit], 0.0) == 0
    assert store.limits.acquire([limit], 50.0) == 0
    assert store.limits.acquire([limit], 60.0) == 41  # the first hit leaves at t=100
    assert store.limits.acquire([limit], 100.0) == 0  # ... and has left
    assert store.limits.acquire([limit], 120.0) == 31  # now the hit at 50 must go first


def test_the_count_is_shared_across_connections_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    limit = Limit("domain:example.net", 3, HOUR)
    with Database(path) as one, Database(path) as two:  # e.g. two `serve` processes
        assert one.limits.acquire([limit], 10.0) == 0
        assert two.limits.acquire([limit], 11.0) == 0
        assert one.limits.acquire([limit], 12.0) == 0
        assert two.limits.acquire([limit], 13.0) > 0
    with Database(path) as restarted:
        assert restarted.limits.acquire([limit], 14.0) > 0


def test_old_hits_are_forgotten_and_windows_are_at_most_a_day(store: Database) -> None:
    store.limits.acquire([Limit("a", 5, HOUR)], 0.0)
    store.limits.acquire([Limit("b", 5, HOUR)], MAX_WINDOW_SECONDS + 1)
    assert [key for key, _ in _hits(store)] == ["b"]
    with pytest.raises(ValueError, match="at most a day"):
        store.limits.acquire([Limit("week", 5, 7 * MAX_WINDOW_SECONDS)], 0.0)
