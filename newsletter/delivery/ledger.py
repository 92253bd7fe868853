"""The send ledger as the send loop uses it: one message to send, the thread-safe ledger
(claim before sending, record after the server's answer), and the report of a run.

`store/sends.py` holds the SQL; this module holds the rules (bounce after `smtp.bounce_after`
consecutive refusals of the mailbox; other permanent failures neither count nor reset the
count).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from newsletter.config import Config
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.store import Database


@dataclass
class Outgoing:
    """One built message waiting to be sent, with what the ledger needs to know about it."""

    subscriber: Subscriber
    digest_date: date
    message_id: str
    raw: bytes
    sender: str
    paper_ids: tuple[str, ...] = ()
    prior_attempts: int = 0

    @property
    def recipients(self) -> list[str]:
        return [self.subscriber.email]


class Ledger:
    """The send ledger, safe to use from the sending threads (one lock around the store)."""

    def __init__(
        self,
        store: Database,
        cfg: Config,
        clock: Callable[[], datetime],
        on_bounce: Callable[[int], None],
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.clock = clock
        self.on_bounce = on_bounce  # `Subscriptions.bounce`: the status change is not ours
        self.lock = threading.Lock()

    def claim(self, job: Outgoing) -> bool:
        with self.lock:
            return self.store.sends.claim(
                job.subscriber.id, job.digest_date, job.message_id, self.clock()
            )

    def claim_many(self, jobs: Sequence[Outgoing]) -> list[bool]:
        """Claim a batch of messages in one commit; for each, whether it may go out."""
        with self.lock:
            return self.store.sends.claim_many(
                [(j.subscriber.id, j.digest_date, j.message_id) for j in jobs], self.clock()
            )

    def sent(self, job: Outgoing, attempts: int) -> None:
        with self.lock:
            self.store.sends.mark_sent(
                job.subscriber.id,
                job.digest_date,
                job.message_id,
                job.paper_ids,
                attempts,
                self.clock(),
            )

    def retry(self, job: Outgoing, error: str, attempts: int) -> None:
        with self.lock:
            self.store.sends.mark_retry(
                job.subscriber.id, job.digest_date, error, attempts, self.clock()
            )

    def failed(
        self, job_subscriber: Subscriber, day: date, error: str, attempts: int, bounce: bool = True
    ) -> bool:
        """Record a permanent failure; True when the subscriber is now marked bounced. Only a
        `bounce` (the recipient refused, not the message) counts toward `smtp.bounce_after`."""
        with self.lock, self.store.transaction():
            now = self.clock()
            hard = self.store.sends.mark_failed(
                job_subscriber.id, day, error, attempts, now, hard=bounce
            )
            if bounce and hard >= self.cfg.smtp.bounce_after:
                self.on_bounce(job_subscriber.id)
                return True
            return False

    def stopped_receiving(self, job: Outgoing) -> str:
        """Just before a claimed message goes out: "" while its subscriber is still active;
        otherwise why it must not go (e.g. "unsubscribed during the run"), recorded as the
        row's skip reason. The run chose its subscribers when it began, and a reader may have
        unsubscribed or paused since."""
        with self.lock:
            status = self.store.sends.recipient_status(job.subscriber.id)
            if status == SubscriberStatus.ACTIVE:
                return ""
            if status is None:  # the row is gone, and its ledger rows with it
                return "deleted during the run"
            reason = f"{status} during the run"
            self.store.sends.mark_skipped(job.subscriber.id, job.digest_date, reason, self.clock())
            return reason

    def skipped(self, subscriber: Subscriber, day: date, reason: str) -> None:
        with self.lock:
            self.store.sends.mark_skipped(subscriber.id, day, reason, self.clock())


@dataclass
class DeliveryReport:
    """What one delivery run did; failures carry (address, reason)."""

    sent: int = 0
    already_sent: int = 0
    retry: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    retries: list[tuple[str, str]] = field(default_factory=list)
    bounced: list[str] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)  # stopped receiving mid-run
    aborted: str = ""
