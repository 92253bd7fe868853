"""The daemon's timetable (real APScheduler triggers) and its catch-up rule (real SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsletter.schedule import Daemon, ScheduleOptions
from newsletter.store import Database
from tests.conftest import make_config


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fire_times(daemon: Daemon, job_id: str, start: datetime, n: int) -> list[datetime]:
    job = {j.id: j for j in daemon.build_scheduler().get_jobs()}[job_id]
    out: list[datetime] = []
    previous = None
    now = start
    for _ in range(n):
        nxt = job.trigger.get_next_fire_time(previous, now)
        out.append(nxt.astimezone(UTC))
        previous, now = nxt, nxt + timedelta(microseconds=1)
    return out


def test_fetch_runs_at_fetch_times_in_eastern_time_across_dst(tmp_path: Path) -> None:
    daemon = Daemon(make_config(tmp_path), ScheduleOptions(), clock=lambda: utc(2026, 11, 26))
    # Winter (EST, UTC-5): 00:30 and 06:00 Eastern are 05:30 and 11:00 UTC.
    assert fire_times(daemon, "fetch", utc(2026, 11, 26, 0), 3) == [
        utc(2026, 11, 26, 5, 30),
        utc(2026, 11, 26, 11, 0),
        utc(2026, 11, 27, 5, 30),
    ]
    # Summer (EDT, UTC-4): one hour earlier in UTC.
    assert fire_times(daemon, "fetch", utc(2026, 7, 1, 0), 2) == [
        utc(2026, 7, 1, 4, 30),
        utc(2026, 7, 1, 10, 0),
    ]


def test_custom_fetch_times_and_zone(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path, '[schedule]\nfetch_times = ["21:15"]\nfetch_timezone = "Asia/Kolkata"\n'
    )
    daemon = Daemon(cfg, ScheduleOptions(), clock=lambda: utc(2026, 11, 26))
    assert fire_times(daemon, "fetch", utc(2026, 11, 26, 0), 1) == [utc(2026, 11, 26, 15, 45)]


def test_send_pass_every_quarter_hour_and_startup_catch_up(tmp_path: Path) -> None:
    start = utc(2026, 11, 26, 10, 7)
    daemon = Daemon(make_config(tmp_path), ScheduleOptions(), clock=lambda: start)
    assert fire_times(daemon, "send", start, 4) == [
        utc(2026, 11, 26, 10, 15),
        utc(2026, 11, 26, 10, 30),
        utc(2026, 11, 26, 10, 45),
        utc(2026, 11, 26, 11, 0),
    ]
    assert fire_times(daemon, "startup", start - timedelta(seconds=1), 1) == [start]


def test_test_hooks_use_interval_triggers_and_no_fetch_drops_the_job(tmp_path: Path) -> None:
    start = utc(2026, 11, 26, 10, 0)
    options = ScheduleOptions(send_every=2, fetch_every=5)
    daemon = Daemon(make_config(tmp_path), options, clock=lambda: start)
    assert fire_times(daemon, "send", start, 2) == [
        start + timedelta(seconds=2),
        start + timedelta(seconds=4),
    ]
    assert fire_times(daemon, "fetch", start, 1) == [start + timedelta(seconds=5)]
    assert "every 2 s" in daemon.describe() and "every 5 s" in daemon.describe()

    quiet = Daemon(make_config(tmp_path), ScheduleOptions(fetch=False), clock=lambda: start)
    assert {j.id for j in quiet.build_scheduler().get_jobs()} == {"startup", "send"}
    assert "off (--no-fetch)" in quiet.describe()


def test_catch_up_fetches_only_when_a_scheduled_fetch_was_missed(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    now = utc(2026, 11, 26, 12, 0)  # 07:00 EST: the 06:00 EST (11:00 UTC) fetch has passed
    daemon = Daemon(cfg, ScheduleOptions(), clock=lambda: now)
    assert daemon._fetch_is_stale()  # never fetched
    with Database(cfg.database_path) as store:
        run = store.runs.start("fetch", utc(2026, 11, 26, 5, 30))
        store.runs.finish(run, "ok", "fetched 10 papers", utc(2026, 11, 26, 5, 31))
    assert daemon._fetch_is_stale()  # the 00:30 fetch ran, the 06:00 one did not
    with Database(cfg.database_path) as store:
        run = store.runs.start("fetch", utc(2026, 11, 26, 11, 0))
        store.runs.finish(run, "failed", "arxiv_rss: HTTP 503", utc(2026, 11, 26, 11, 1))
    assert daemon._fetch_is_stale()  # a failed fetch does not count
    with Database(cfg.database_path) as store:
        run = store.runs.start("fetch", utc(2026, 11, 26, 11, 5))
        store.runs.finish(run, "partial", "huggingface: HTTP 429", utc(2026, 11, 26, 11, 6))
    assert not daemon._fetch_is_stale()
    interval = Daemon(cfg, ScheduleOptions(fetch_every=60), clock=lambda: now)
    assert interval._fetch_is_stale()  # an interval schedule always fetches at start-up
