"""The parts of a send run between ranking and the wire: who is due, and each digest built
lazily into the bytes to send while earlier ones are on the wire (`pipeline.send_daily`
runs them in order)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from newsletter import delivery
from newsletter.building import Builders, BuildRequest, Built, Outcome
from newsletter.delivery.summary import SendSummary
from newsletter.errors import DeliveryError, NewsletterError
from newsletter.models import Digest, Send, SendStatus, Subscriber, SubscriberStatus

if TYPE_CHECKING:
    from newsletter.pipeline import Context

log = logging.getLogger("newsletter.pipeline")

SEND_CHUNK = 1000  # subscribers ranked per batch while earlier messages are on the wire
FIRST_CHUNK = 100  # the first batch is small, so the first messages go out within ~0.1 s

Target = tuple[Subscriber, Send | None]  # a subscriber due, with their ledger row for the date
# ranks a chunk of subscribers; the last argument is each one's latest digest date before the
# day (`Sends.last_sent_dates`), read once per chunk for the ranking and the welcome template
BuildDigests = Callable[["Context", date, list[Subscriber], dict[int, date]], list[Digest]]


@dataclass
class SendOptions:
    """How `send_daily` narrows or watches a run (all optional)."""

    dry_run: bool = False  # rank and render, but neither send nor record anything
    only: list[str] | None = None  # these addresses only (`--to`)
    limit: int | None = None  # at most this many digests
    resend: str | None = None  # send this subscriber's digest again, under a new Message-ID
    subscribers: list[Subscriber] | None = None  # the scheduler's subscribers due this hour
    progress: Callable[[delivery.DeliveryReport], None] | None = None
    stop: threading.Event | None = None  # set on SIGTERM: stop between messages


def _resend_target(ctx: Context, day: date, address: str) -> Subscriber:
    sub = ctx.store.subscribers.get_by_email(address.strip())
    if sub is None:
        raise DeliveryError(f"--resend: {address} is not a subscriber")
    if sub.status != SubscriberStatus.ACTIVE:
        raise DeliveryError(f"--resend: {sub.email} is {sub.status}, not active; not sending")
    now = ctx.clock()
    mid = delivery.message_id_for(ctx.cfg, sub.id, day, variant=int(now.timestamp()))
    ctx.store.sends.reopen(sub.id, day, mid, now)
    return sub


def _only(candidates: list[Subscriber], only: list[str]) -> list[Subscriber]:
    wanted = {e.strip().lower() for e in only}
    chosen = [s for s in candidates if s.email.lower() in wanted]
    missing = wanted - {s.email.lower() for s in chosen}
    if missing:
        raise DeliveryError(f"--to: {', '.join(sorted(missing))} is not a subscriber")
    idle = [s for s in chosen if s.status != SubscriberStatus.ACTIVE]
    if idle:
        raise DeliveryError(f"--to: {idle[0].email} is {idle[0].status}, not active")
    return chosen


def send_targets(ctx: Context, day: date, summary: SendSummary, opts: SendOptions) -> list[Target]:
    """Who gets a digest in this run, each with their ledger row for the date (if any)."""
    if opts.resend and not opts.dry_run:
        candidates = [_resend_target(ctx, day, opts.resend)]
    elif opts.subscribers is not None:
        candidates = list(opts.subscribers)
    else:
        candidates = ctx.store.subscribers.list()
    if opts.only:
        candidates = _only(candidates, opts.only)
    summary.paused = sum(1 for s in candidates if s.status == SubscriberStatus.PAUSED)
    rows = {send.subscriber_id: send for send in ctx.store.sends.on(day)}
    todo: list[Target] = []
    for sub in candidates:
        if sub.status != SubscriberStatus.ACTIVE:
            continue
        row = rows.get(sub.id)
        if row is not None and row.status == SendStatus.SENT:
            summary.already_sent += 1
        elif row is not None and row.status == SendStatus.FAILED:
            summary.failed_earlier += 1
        else:
            todo.append((sub, row))
    if opts.limit is not None and len(todo) > opts.limit:
        summary.held_back += len(todo) - opts.limit
        return todo[: opts.limit]
    return todo


def outgoing(
    ctx: Context,
    targets: list[Target],
    day: date,
    ledger: delivery.Ledger,
    summary: SendSummary,
    build: BuildDigests,
    builders: Builders,
) -> Iterator[delivery.Outgoing]:
    """Rank in chunks, then render and build each message (`builders`: in worker processes or
    here), lazily and in order, while earlier ones are sent."""
    rows = {sub.id: row for sub, row in targets}
    for req, built in builders.map(_requests(ctx, targets, day, ledger, summary, build)):
        job = settle(req, built, rows.get(req.digest.subscriber.id), ledger, summary)
        if job is not None:
            yield job


def _requests(
    ctx: Context,
    targets: list[Target],
    day: date,
    ledger: delivery.Ledger,
    summary: SendSummary,
    build: BuildDigests,
) -> Iterator[BuildRequest]:
    """The digests to build, ranked a chunk at a time; empty ones are recorded as skipped."""
    rows = {sub.id: row for sub, row in targets}
    for chunk in _chunks([sub for sub, _ in targets]):
        earlier = ctx.store.sends.last_sent_dates(day, [sub.id for sub in chunk])
        digests = {d.subscriber.id: d for d in build(ctx, day, chunk, earlier)}
        for sub in chunk:
            digest = digests.get(sub.id)
            if digest is None or not digest.picks:
                reason = digest.empty_reason if digest else ""
                _nothing_new(sub, day, reason, ledger, summary)
                continue
            row = rows.get(sub.id)
            message_id = (row.message_id if row else "") or delivery.message_id_for(
                ctx.cfg, sub.id, day
            )
            yield BuildRequest(digest, sub.id not in earlier, message_id, ledger.clock())


def _chunks(subs: list[Subscriber]) -> Iterator[list[Subscriber]]:
    """`FIRST_CHUNK` subscribers, then `SEND_CHUNK` at a time (ranking a chunk of 1,000 takes
    about half a second, and the connections would wait for the first one)."""
    first = min(FIRST_CHUNK, len(subs))
    if first:
        yield subs[:first]
    yield from delivery.iter_chunks(subs[first:], SEND_CHUNK)


def _nothing_new(
    sub: Subscriber, day: date, reason: str, ledger: delivery.Ledger, summary: SendSummary
) -> None:
    reason = reason or "no new papers matched"
    summary.nothing_new += 1
    summary.empty.append((sub.email, reason))
    if not summary.dry_run:
        ledger.skipped(sub, day, reason)


def settle(
    req: BuildRequest,
    built: Built,
    row: Send | None,
    ledger: delivery.Ledger,
    summary: SendSummary,
) -> delivery.Outgoing | None:
    """The message to send, or None when there is none (recorded in the ledger and the
    summary: an empty digest is skipped, a refused address fails, a rendering error is
    retried by the next run)."""
    digest = req.digest
    sub, day = digest.subscriber, digest.date
    prior = row.attempts if row else 0
    job = delivery.Outgoing(
        sub, day, req.message_id, built.raw, ledger.cfg.email.from_address, built.paper_ids, prior
    )
    if built.outcome == Outcome.BUILT:
        return job
    if built.outcome == Outcome.FATAL:
        raise NewsletterError(built.reason)  # e.g. the configuration: stop, as for everyone
    if built.outcome == Outcome.PLANNED:
        summary.planned.append((sub.email, built.subject, len(digest.picks)))
    elif built.outcome == Outcome.EMPTY:
        _nothing_new(sub, day, built.reason, ledger, summary)
    elif built.outcome == Outcome.REFUSED:
        if not summary.dry_run:
            ledger.claim(job)
            # an address no message can carry counts toward `bounce_after` as a refused
            # mailbox does: we can never deliver to it (the sender's is checked with the config)
            if ledger.failed(sub, day, built.reason, prior):
                summary.bounced.append(sub.email)
        summary.failed += 1
        summary.failures.append((sub.email, built.reason))
    else:
        if not summary.dry_run:
            ledger.claim(job)
            ledger.retry(job, built.reason, prior)
        summary.retry += 1
        summary.retries.append((sub.email, built.reason))
    return None
