"""The shared send queue (store/claims.py) on both backends: batches, leases, status."""

from __future__ import annotations

from datetime import UTC, date, datetime

from newsletter.config import Config
from newsletter.models import SubscriberStatus
from newsletter.status import format_status, gather_status
from newsletter.store import Database

DAY = date(2026, 11, 24)
AT = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
NOW = AT.timestamp()


def _readers(store: Database, n: int) -> list[int]:
    return [
        store.subscribers.add(f"r{i}@example.org", AT, status=SubscriberStatus.ACTIVE)[0].id
        for i in range(n)
    ]


def test_workers_take_different_batches_and_a_dead_ones_return_after_its_lease(
    store: Database,
) -> None:
    ids = _readers(store, 5)
    store.claims.enqueue(DAY, ids, AT)
    store.claims.enqueue(DAY, ids, AT)  # a second worker queues the same day: no new rows
    first = store.claims.take(DAY, "a:1", 2, 60, NOW, AT)
    second = store.claims.take(DAY, "b:2", 2, 60, NOW, AT)
    assert len(first) == len(second) == 2 and not set(first) & set(second)
    last = store.claims.take(DAY, "b:2", 2, 60, NOW, AT)
    assert len(last) == 1 and store.claims.take(DAY, "b:2", 2, 60, NOW, AT) == []
    store.claims.done(DAY, "b:2", second + last, AT)
    # "a" died holding `first`: nobody may take them until the lease ends, then "b" may.
    assert store.claims.take(DAY, "b:2", 10, 60, NOW + 59, AT) == []
    assert store.claims.next_expiry(DAY) == NOW + 60
    assert sorted(store.claims.take(DAY, "b:2", 10, 60, NOW + 61, AT)) == sorted(first)
    store.claims.done(DAY, "a:1", first, AT)  # the dead worker's late word changes nothing
    assert store.claims.counts(DAY, NOW + 61).claimed == 2
    store.claims.done(DAY, "b:2", first, AT)
    assert store.claims.counts(DAY, NOW + 61) == (0, 0, 0, 5)
    assert store.claims.next_expiry(DAY) is None
    # A digest left to retry is found due again by the next run: its done row is queued again.
    store.claims.enqueue(DAY, ids[:1], AT)
    assert store.claims.take(DAY, "c:3", 10, 60, NOW + 62, AT) == ids[:1]


def test_status_shows_workers_their_leases_and_an_expired_one(
    store: Database, config: Config
) -> None:
    ids = _readers(store, 3)
    store.claims.enqueue(DAY, ids, AT)
    store.claims.heartbeat("host-a:11", DAY, NOW, AT)
    store.claims.take(DAY, "host-a:11", 2, 60, NOW, AT)
    store.claims.heartbeat("host-b:22", DAY, NOW, AT, sent=1)
    store.claims.finished("host-b:22", AT, 1)
    later = datetime.fromtimestamp(NOW + 120, UTC)
    report = gather_status(store, config, later)
    by_name = {w["worker"]: w for w in report.workers}
    assert by_name["host-a:11"]["state"] == "lease expired"
    assert by_name["host-a:11"]["holding"] == 2
    assert by_name["host-b:22"]["state"] == "finished" and by_name["host-b:22"]["sent"] == 1
    assert report.queue == {
        "digest_date": DAY.isoformat(),
        "queued": 1,
        "claimed": 0,
        "expired": 2,
        "done": 0,
    }
    assert any("lease ran out" in p for p in report.problems)
    text = format_status(report)
    assert "Send workers:" in text and "host-a:11  lease expired" in text
    assert "queue for 2026-11-24: 1 queued · 0 claimed · 2 lease expired · 0 done" in text
    assert report.to_dict()["workers"][0]["worker"] in by_name
