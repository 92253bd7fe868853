"""The daemon alternative to cron: fetch on a timetable, send at each subscriber's local hour.

`Daemon` wires `due.due_subscribers` to an APScheduler 3.x `BlockingScheduler` with the same
send lock as `newsletter send`, so the daemon, a cron run and a manual run never send at the
same time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import zoneinfo
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsletter.config import Config
from newsletter.errors import LockedError, NewsletterError
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.schedule.due import (
    SEND_MINUTES,
    SETTLED_STATUSES,
    candidate_dates,
    due_subscribers,
    group_by_date,
    last_scheduled_fetch,
    parse_fetch_times,
)
from newsletter.store import Database
from newsletter.store.dialect import is_postgres_url

log = logging.getLogger("newsletter.schedule")

FetchFn = Callable[[Database, Config, datetime], object]
# (store, cfg, digest date, now, subscribers due for that date, stop flag) -> summary
SendFn = Callable[[Database, Config, date, datetime, list[Subscriber], threading.Event], object]
LockFn = Callable[[Config], AbstractContextManager[object]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScheduleOptions:
    """What `newsletter schedule` was asked to do (the CLI options)."""

    fetch: bool = True
    once: bool = False
    send_every: float | None = None  # seconds; None = every quarter hour (SEND_MINUTES)
    fetch_every: float | None = None  # seconds; None = schedule.fetch_times


class Daemon:
    """Fetch and send jobs on an APScheduler 3.x BlockingScheduler, stopped cleanly by signals.

    Jobs run one at a time (an in-process lock), and every send pass also takes the send lock
    shared with `newsletter send`, so the daemon never overlaps a cron or manual run.
    """

    def __init__(
        self,
        cfg: Config,
        options: ScheduleOptions,
        *,
        clock: Callable[[], datetime] = _utcnow,
        fetch: FetchFn | None = None,
        send: SendFn | None = None,
        lock: LockFn | None = None,
    ) -> None:
        self.cfg = cfg
        self.options = options
        self.clock = clock
        self._fetch = fetch or _pipeline_fetch
        self._send = send or _pipeline_send
        self._lock = lock or _send_lock
        self._fetch_times = parse_fetch_times(cfg.schedule.fetch_times) if options.fetch else []
        self._work = threading.Lock()  # one job at a time inside this process
        self.stop = threading.Event()  # set by SIGTERM/SIGINT: finish the message, then stop
        self._scheduler: BlockingScheduler | None = None
        self.failures: list[str] = []  # what went wrong, for the exit status of --once

    # ------------------------------------------------------------ jobs

    def _job(self, job: str, body: Callable[[datetime], None]) -> None:
        """Run one job's `body(now)` unless stopping, one job at a time; a failure is logged and
        remembered (for --once's exit status), never fatal to the daemon."""
        with self._work:
            if self.stop.is_set():
                return
            try:
                body(self.clock())
            except LockedError as exc:
                log.warning("%s: skipped this pass: %s", job, exc)
            except NewsletterError as exc:
                self._failed(job, f"failed: {exc}")
            except Exception:
                log.exception("%s: crashed (the daemon keeps running)", job)
                self.failures.append(f"{job} crashed")

    def fetch_job(self) -> None:
        """Fetch every configured source into the store, once across the daemons sharing it."""
        self._job("fetch", self._fetch_once)

    def _fetch_once(self, now: datetime) -> None:
        with (
            Database(self.cfg.database, password=self.cfg.database_password) as store,
            store.advisory_lock("fetch") as mine,
        ):
            skip = self._fetch_skip(store, now, mine)
            if skip:
                log.info("fetch: skipped: %s", skip)
                return
            log.info("fetch: starting")
            summary = self._fetch(store, self.cfg, now)
        self._report("fetch", describe_summary(summary), summary)

    def send_job(self) -> None:
        """Send to every subscriber whose local delivery hour has come, once per local date."""
        self._job("send", self._send_locked)

    def _send_locked(self, now: datetime) -> None:
        with (
            self._lock(self.cfg),
            Database(self.cfg.database, password=self.cfg.database_password) as store,
        ):
            self._send_due(store, now)

    def _send_due(self, store: Database, now: datetime) -> None:
        active = store.subscribers.list(SubscriberStatus.ACTIVE)
        settled = store.sends.keys(candidate_dates(now), SETTLED_STATUSES)
        groups = group_by_date(due_subscribers(active, now, settled))
        if not groups:
            log.info("send: nobody is due (%d active subscriber(s))", len(active))
            return
        for day, subscribers in groups.items():
            if self.stop.is_set():
                log.info("send: stopping before digest date %s", day)
                return
            log.info("send: %d subscriber(s) due for digest date %s", len(subscribers), day)
            summary = self._send(store, self.cfg, day, now, subscribers, self.stop)
            self._report("send", f"{day}: {describe_summary(summary)}", summary)

    def _report(self, job: str, text: str, summary: object) -> None:
        """Log a stage summary at the level its outcome deserves; remember failures."""
        outcome = str(getattr(summary, "outcome", "ok"))
        if outcome == "aborted" and self.stop.is_set():
            log.warning("%s: %s (the rest are sent by the next start)", job, text)
        elif outcome in ("failed", "aborted"):
            self._failed(job, text)
        elif outcome == "ok":
            log.info("%s: %s", job, text)
        else:  # partial fetch, sends left to retry
            log.warning("%s: %s", job, text)

    def _failed(self, job: str, text: str) -> None:
        log.error("%s: %s", job, text)
        self.failures.append(f"{job}: {text}")

    def catch_up(self) -> None:
        """Fetch now if a scheduled fetch was missed, then send to whoever is due."""
        if self.options.fetch:
            try:
                stale = self._fetch_is_stale()
            except Exception as exc:  # an unreadable runs table: fetching is the safe side
                log.warning("fetch: cannot tell when the last fetch ran (%s); fetching now", exc)
                stale = True
            if stale:
                self.fetch_job()
        self.send_job()

    def _fetch_skip(self, store: Database, now: datetime, mine: bool) -> str:
        """Why this process must not fetch now ("" when it should): the schedule's fetch runs
        once across every daemon sharing the database (on one machine or many)."""
        if not mine:
            return "another process sharing the database is fetching"
        last = store.runs.last_successful("fetch")
        if last is None:
            return ""
        if self.options.fetch_every is not None:
            since = now - timedelta(seconds=self.options.fetch_every / 2)
        else:
            since = last_scheduled_fetch(now, self._fetch_times, self.cfg.schedule.fetch_timezone)
        if last.started_at >= since:
            return f"another process fetched at {last.started_at:%H:%M:%S} UTC"
        return ""

    def _fetch_is_stale(self) -> bool:
        if self.options.fetch_every is not None:
            return True
        now = self.clock()
        with Database(self.cfg.database, password=self.cfg.database_password) as store:
            last = store.runs.last_successful("fetch")
        slot = last_scheduled_fetch(now, self._fetch_times, self.cfg.schedule.fetch_timezone)
        return last is None or last.started_at < slot

    # ------------------------------------------------------------ running

    def build_scheduler(self) -> BlockingScheduler:
        """The scheduler with its jobs: catch-up now, send every quarter hour, fetch at times."""
        scheduler = BlockingScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.cfg.schedule.misfire_grace_seconds,
            },
        )
        now = self.clock()
        scheduler.add_job(self.catch_up, "date", run_date=now, id="startup")
        send_trigger: BaseTrigger = (
            _every(self.options.send_every, now)
            if self.options.send_every
            else CronTrigger(minute=SEND_MINUTES, timezone=UTC)
        )
        scheduler.add_job(self.send_job, send_trigger, id="send")
        if self.options.fetch:
            zone = zoneinfo.ZoneInfo(self.cfg.schedule.fetch_timezone)
            fetch_trigger: BaseTrigger = (
                _every(self.options.fetch_every, now)
                if self.options.fetch_every
                else OrTrigger(
                    [
                        CronTrigger(hour=t.hour, minute=t.minute, timezone=zone)
                        for t in self._fetch_times
                    ]
                )
            )
            scheduler.add_job(self.fetch_job, fetch_trigger, id="fetch")
        return scheduler

    def describe(self) -> str:
        send = (
            f"every {self.options.send_every:g} s"
            if self.options.send_every
            else "every quarter hour (each subscriber at their local hour)"
        )
        if not self.options.fetch:
            fetch = "off (--no-fetch)"
        elif self.options.fetch_every:
            fetch = f"every {self.options.fetch_every:g} s"
        else:
            times = ", ".join(t.strftime("%H:%M") for t in self._fetch_times)
            fetch = f"at {times} {self.cfg.schedule.fetch_timezone}"
        return f"fetch {fetch}; send {send}"

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or one pass with --once); returns the exit status."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            if self.options.once:
                log.info("schedule --once (pid %d): one pass", os.getpid())
                self.catch_up()
            else:
                self._scheduler = self.build_scheduler()
                log.info("scheduler started (pid %d): %s", os.getpid(), self.describe())
                if not self.stop.is_set():
                    self._scheduler.start()
                with self._work:  # a job still running after shutdown: let it finish
                    pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not self.options.once:
            log.info("scheduler stopped cleanly")
            return 0
        if self.failures:
            log.error(
                "schedule --once: done with %d failure(s); see `newsletter status`",
                len(self.failures),
            )
            return 1
        log.info("schedule --once: done")
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            log.warning("received %s again: still finishing the current message", name)
            return
        self.stop.set()
        log.info("received %s: finishing the current message, then stopping", name)
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            # wait=False: joining worker threads inside a signal handler can deadlock on locks
            # the interrupted main thread holds; run() waits for the running job instead.
            scheduler.shutdown(wait=False)


def describe_summary(summary: object) -> str:
    """A run summary as its one-line text (`line()` when the summary offers one)."""
    line = getattr(summary, "line", None)
    return str(line()) if callable(line) else str(summary)


def _every(seconds: float, now: datetime) -> IntervalTrigger:
    return IntervalTrigger(
        seconds=seconds, start_date=now + timedelta(seconds=seconds), timezone=UTC
    )


def configure_logging(verbose: int) -> None:
    """Timestamped INFO logs for a long-running process (-v adds APScheduler's, -vv debug)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose >= 2 else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger("apscheduler").setLevel(logging.INFO if verbose else logging.WARNING)


# ---------------------------------------------------------------- the real stages


def _pipeline_fetch(store: Database, cfg: Config, now: datetime) -> object:
    from newsletter import pipeline

    return pipeline.fetcher(pipeline.Context(store, cfg, clock=lambda: now)).today()


def _pipeline_send(
    store: Database,
    cfg: Config,
    day: date,
    now: datetime,
    subscribers: list[Subscriber],
    stop: threading.Event,
) -> object:
    from newsletter import pipeline

    del now  # the ledger's times are the real clock's; `day` is what `now` decided
    options = pipeline.SendOptions(subscribers=subscribers, stop=stop)
    return pipeline.send_daily(pipeline.Context(store, cfg), day, options)


def _send_lock(cfg: Config) -> AbstractContextManager[object]:
    """The local send lock; none on PostgreSQL, where daemons on any machine share the day's
    queue (store/claims.py) instead of taking turns."""
    from newsletter.delivery.lock import run_lock

    if is_postgres_url(cfg.database):
        return contextlib.nullcontext()
    return run_lock(cfg, "schedule (send pass)")
