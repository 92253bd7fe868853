"""What one send run did: the CLI's summary line, the `runs` row and the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from newsletter.delivery.ledger import DeliveryReport


@dataclass
class SendSummary:
    """What one send run did, for the CLI's summary line, `runs` and `newsletter status`."""

    digest_date: date
    dry_run: bool = False
    sent: int = 0
    already_sent: int = 0
    nothing_new: int = 0
    paused: int = 0
    failed: int = 0
    retry: int = 0
    failed_earlier: int = 0
    held_back: int = 0  # due, but past `send --limit`: for a later run
    bounced: list[str] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)  # unsubscribed or paused mid-run
    failures: list[tuple[str, str]] = field(default_factory=list)
    retries: list[tuple[str, str]] = field(default_factory=list)
    empty: list[tuple[str, str]] = field(default_factory=list)
    planned: list[tuple[str, str, int]] = field(default_factory=list)
    aborted: str = ""

    def line(self) -> str:
        """The summary line: sent N · skipped N already sent · N nothing new · ... · failed N."""
        verb = "would send" if self.dry_run else "sent"
        parts = [
            f"{verb} {len(self.planned) if self.dry_run else self.sent:,}",
            f"skipped {self.already_sent:,} already sent",
            f"{self.nothing_new:,} nothing new",
            f"{self.paused:,} paused",
        ]
        for reason in sorted({why for _, why in self.left}):
            parts.append(f"{sum(1 for _, why in self.left if why == reason):,} {reason}")
        if self.retry:
            parts.append(f"{self.retry:,} left to retry")
        if self.failed_earlier:
            parts.append(f"{self.failed_earlier:,} failed earlier")
        if self.held_back:
            parts.append(f"{self.held_back:,} left for a later run (--limit)")
        text = " · ".join(parts) + f" · failed {self.failed:,}"
        if self.failed or self.retry or self.failed_earlier:
            text += " (see `newsletter status`)"
        if self.aborted:
            text += f"; stopped: {self.aborted}"
        return text

    def add(self, report: DeliveryReport) -> None:
        """Fold in what the send loop reported."""
        self.sent += report.sent
        self.already_sent += report.already_sent
        self.failed += report.failed
        self.retry += report.retry
        self.failures += report.failures
        self.retries += report.retries
        self.bounced += report.bounced
        self.left += report.left
        self.aborted = self.aborted or report.aborted

    @property
    def exit_code(self) -> int:
        """1 when a send failed permanently or the run stopped early; 75 when only retries are
        left (EX_TEMPFAIL: the next run will try again); 0 otherwise."""
        if self.failed or self.aborted:
            return 1
        return 75 if self.retry else 0

    @property
    def outcome(self) -> str:
        if self.aborted:
            return "aborted"
        if self.failed:
            return "failed"
        return "retry" if self.retry else "ok"
