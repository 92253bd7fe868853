"""Delivery: the mailers (SMTP, Maildir outbox) and the ledger-driven send loop.

The only module that talks SMTP.

Exactly once, through faults
----------------------------
Every (subscriber, digest date) has one row in the `sends` ledger. Before a message goes out,
its row is *claimed* (status `claimed`, with the message's Message-ID; up to `CLAIM_BATCH`
rows in one commit, before any of them is queued for a connection); after the server's
`250` it is marked `sent` with the Message-ID and the picked paper IDs. A rerun for the same
date skips `sent` rows and claims everything else again, so a crash at any point (even
`kill -9`) neither skips anyone nor sends a second digest to anyone whose row says `sent`.

Temporary failures (4xx replies, dropped connections, timeouts) are retried within the run with
exponential backoff (same bytes, same Message-ID), then left `retry` for the next run; permanent
failures (5xx) are marked `failed` with the server's reply and the run goes on. After
`smtp.bounce_after` consecutive refusals of the mailbox (`DeliveryError.bounce`: see
`smtp._about_the_mailbox`) the subscriber is marked `bounced`; a refusal of the message
itself (size, content, policy) fails that day's message and does not count.

A run chooses its subscribers when it starts, and a large one takes minutes, so each sending
thread reads the subscriber's status again just before the message goes out: someone who
unsubscribed (or paused) meanwhile is not sent it, and their row is `skipped` with the reason.

The one unavoidable window: a crash (or a lost connection) after the server has answered `250`
to the final "." but before the ledger row is written. The next run cannot know the message
was accepted and sends it again. It sends it with the *same* Message-ID (the ID is derived
from the subscriber and the digest date and kept in the claimed row), so a receiving system
that deduplicates by Message-ID (Gmail does) drops the copy; no other copy is ever possible.
The window is one SQLite commit wide, because the ledger is written as soon as the reply
arrives, in the sending thread.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from newsletter.config import Config
from newsletter.delivery.ledger import DeliveryReport, Ledger, Outgoing
from newsletter.delivery.mailer import Mailer, MailSession
from newsletter.delivery.smtp import ConnectionFailed
from newsletter.errors import DeliveryError
from newsletter.models import Subscriber

log = logging.getLogger("newsletter.deliver")
MAX_BACKOFF_SECONDS = 300.0
SWITCH_INTERVAL = 0.0005  # seconds; see _Dispatcher.run
# Built messages waiting for a connection (~60 KB each): enough to keep the connections busy
# while the next batch of subscribers is ranked.
QUEUE_DEPTH = 256
# Messages claimed in one ledger commit. A claim only has to precede the message's DATA, and
# a claimed message that never went out is simply claimed and sent again by the next run.
CLAIM_BATCH = 16


class SendRate:
    """At most `rate` messages per second across all connections (0: no limit)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


def backoff_delay(cfg: Config, attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, 4, ... times the base)."""
    delay = cfg.smtp.retry_backoff_seconds * 2.0 ** (attempt - 1)
    return min(delay, MAX_BACKOFF_SECONDS)


class _Dispatcher:
    """Sending threads, one per connection, fed from a bounded queue."""

    def __init__(
        self,
        cfg: Config,
        mailer: Mailer,
        ledger: Ledger,
        sleep: Callable[[float], None],
        progress: Callable[[DeliveryReport], None] | None,
        halt: threading.Event | None = None,
    ) -> None:
        self.cfg = cfg
        self.mailer = mailer
        self.ledger = ledger
        self.sleep = sleep
        self.progress = progress
        self.halt = halt  # set from outside (the scheduler's SIGTERM): stop between messages
        self.report = DeliveryReport()
        self.limiter = SendRate(cfg.smtp.rate_per_second, sleep=sleep)
        workers = max(1, mailer.connections)
        self.jobs: queue.Queue[Outgoing | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._work, name=f"smtp-{i}", daemon=True)
            for i in range(workers)
        ]

    def _count(self, **changes: int) -> None:
        with self._lock:
            for key, n in changes.items():
                setattr(self.report, key, getattr(self.report, key) + n)
            if self.progress is not None:
                self.progress(self.report)

    def _check_halt(self) -> None:
        if self.halt is not None and self.halt.is_set() and not self.stop.is_set():
            self._abort("shutdown requested (SIGTERM or Ctrl-C)")

    def _abort(self, reason: str) -> None:
        with self._lock:
            if not self.report.aborted:
                self.report.aborted = reason
        self.stop.set()

    def _work(self) -> None:
        session = self.mailer.open_session()
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                try:
                    self._check_halt()
                    if self.stop.is_set():
                        reason = f"not attempted: the run stopped ({self.report.aborted})"
                        self._leave(job, reason)
                    else:
                        self._deliver(session, job)
                except Exception as exc:  # e.g. a ledger write failed: stop, never guess
                    log.exception("delivery thread failed")
                    self._abort(f"internal error while sending to {job.subscriber.email}: {exc}")
                    # keep draining the queue (as `not attempted`), so the producer never blocks
        finally:
            session.close()

    def _leave(self, job: Outgoing, reason: str, attempts: int | None = None) -> None:
        self.ledger.retry(job, reason, job.prior_attempts if attempts is None else attempts)
        with self._lock:
            self.report.retries.append((job.subscriber.email, reason))
        self._count(retry=1)

    def _deliver(self, session: MailSession, job: Outgoing) -> None:
        left = self.ledger.stopped_receiving(job)
        if left:
            log.info("not sending to %s: %s", job.subscriber.email, left)
            with self._lock:
                self.report.left.append((job.subscriber.email, left))
            self._count()
            return
        attempts = job.prior_attempts
        tries = 0
        while True:
            self.limiter.wait()
            attempts += 1
            tries += 1
            try:
                session.send_raw(job.raw, job.sender, job.recipients)
            except ConnectionFailed as exc:
                if exc.temporary and tries < self.cfg.smtp.max_attempts and not self.stop.is_set():
                    self.sleep(backoff_delay(self.cfg, tries))
                    continue
                self._leave(job, f"{exc} {exc.reply}".strip(), attempts)
                self._abort(str(exc) + (f" ({exc.reply})" if exc.reply else ""))
                return
            except DeliveryError as exc:
                reason = str(exc)
                if not exc.temporary:
                    bounced = self.ledger.failed(
                        job.subscriber, job.digest_date, reason, attempts, bounce=exc.bounce
                    )
                    log.warning("permanent failure for %s: %s", job.subscriber.email, reason)
                    with self._lock:
                        self.report.failures.append((job.subscriber.email, reason))
                        if bounced:
                            self.report.bounced.append(job.subscriber.email)
                    self._count(failed=1)
                    return
                if tries >= self.cfg.smtp.max_attempts or self.stop.is_set():
                    log.warning("giving up for this run on %s: %s", job.subscriber.email, reason)
                    self._leave(job, reason, attempts)
                    return
                log.info("temporary failure for %s (%s); retrying", job.subscriber.email, reason)
                self.sleep(backoff_delay(self.cfg, tries))
                continue
            self.ledger.sent(job, attempts)
            self._count(sent=1)
            return

    def run(self, jobs: Iterable[Outgoing]) -> DeliveryReport:
        # While this thread ranks and renders (CPU-bound), each SMTP reply a sending thread
        # waits for would also wait up to the GIL switch interval (5 ms by default) before that
        # thread runs again: several round trips per message. Switch more often meanwhile.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL))
        for t in self.threads:
            t.start()
        try:
            for batch in _batched(jobs, CLAIM_BATCH):
                self._check_halt()
                if self.stop.is_set() or not self._claim_and_queue(batch):
                    break
        except KeyboardInterrupt:
            self._abort("interrupted")
            raise
        finally:
            for _ in self.threads:
                self._put(None)
            for t in self.threads:
                t.join()
            sys.setswitchinterval(switch)
        return self.report

    def _claim_and_queue(self, batch: list[Outgoing]) -> bool:
        """Claim a batch in one commit and queue what may go out; False once the run stops."""
        oks = self.ledger.claim_many(batch)
        claimed = [job for job, ok in zip(batch, oks, strict=True) if ok]
        if len(claimed) < len(batch):
            self._count(already_sent=len(batch) - len(claimed))
        for i, job in enumerate(claimed):
            self._check_halt()
            if self.stop.is_set():  # claimed but never attempted: left for the next run
                reason = f"not attempted: the run stopped ({self.report.aborted})"
                for left in claimed[i:]:
                    self._leave(left, reason)
                return False
            self._put(job)
        return True

    def _put(self, item: Outgoing | None) -> None:
        """Queue a message (or a stop marker) unless no sending thread is left to take it."""
        while any(t.is_alive() for t in self.threads):
            try:
                self.jobs.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        if item is not None:
            raise DeliveryError("every sending thread stopped; see the log for why")


def deliver(
    cfg: Config,
    mailer: Mailer,
    jobs: Iterable[Outgoing],
    ledger: Ledger,
    *,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[DeliveryReport], None] | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Claim, send and record each message; `mailer.connections` connections in parallel.

    `jobs` may be a lazy iterator: messages are built while earlier ones are on the wire.
    A connection-level failure (server unreachable, login refused) stops the run; what was
    not sent is left `retry` (or unclaimed) for the next run. Setting `stop` (the scheduler
    does on SIGTERM) ends the run the same way between messages: none is cut in half.
    """
    return _Dispatcher(cfg, mailer, ledger, sleep, progress, halt=stop).run(jobs)


def _batched(jobs: Iterable[Outgoing], size: int) -> Iterator[list[Outgoing]]:
    """Lists of up to `size` jobs, each yielded as soon as it is full (or the jobs end)."""
    batch: list[Outgoing] = []
    for job in jobs:
        batch.append(job)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_chunks(items: Sequence[Subscriber], size: int) -> Iterator[list[Subscriber]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
