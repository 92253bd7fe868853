"""The parts of a send run between ranking and the wire: who is due, and each digest built
lazily into the bytes to send while earlier ones are on the wire (`pipeline.send_daily`
runs them in order)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from newsletter import delivery
from newsletter.delivery.summary import SendSummary
from newsletter.errors import DeliveryError, NewsletterError
from newsletter.models import Digest, Send, SendStatus, Subscriber, SubscriberStatus
from newsletter.render.renderer import RenderedEmail

if TYPE_CHECKING:
    from newsletter.pipeline import Context

log = logging.getLogger("newsletter.pipeline")

SEND_CHUNK = 1000  # subscribers ranked per batch while earlier messages are on the wire

Target = tuple[Subscriber, Send | None]  # a subscriber due, with their ledger row for the date
BuildDigests = Callable[["Context", date, list[Subscriber]], list[Digest]]


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
    return todo[: opts.limit] if opts.limit is not None else todo


def outgoing(
    ctx: Context,
    targets: list[Target],
    day: date,
    ledger: delivery.Ledger,
    summary: SendSummary,
    build: BuildDigests,
) -> Iterator[delivery.Outgoing]:
    """Rank, render and build each message lazily, in chunks, while earlier ones are sent."""
    rows = {sub.id: row for sub, row in targets}
    earlier = ctx.store.sends.last_sent_dates(day)
    renderer = ctx.get_renderer()
    for chunk in delivery.iter_chunks([sub for sub, _ in targets], SEND_CHUNK):
        digests = {d.subscriber.id: d for d in build(ctx, day, chunk)}
        for sub in chunk:
            digest = digests.get(sub.id)
            if digest is None or not digest.picks:
                reason = (digest.empty_reason if digest else "") or "no new papers matched"
                summary.nothing_new += 1
                summary.empty.append((sub.email, reason))
                if not summary.dry_run:
                    ledger.skipped(sub, day, reason)
                continue
            render = functools.partial(
                renderer.for_digest, digest, first=digest.subscriber.id not in earlier
            )
            job = build_job(ctx, digest, rows.get(sub.id), render, ledger, summary)
            if job is not None:
                yield job


def build_job(
    ctx: Context,
    digest: Digest,
    row: Send | None,
    render: Callable[[], RenderedEmail],
    ledger: delivery.Ledger,
    summary: SendSummary,
) -> delivery.Outgoing | None:
    """One digest rendered and built into the bytes to send; None when it cannot be (recorded
    in the ledger and the summary: a refused address fails, a rendering error is retried)."""
    cfg, sub, day = ctx.cfg, digest.subscriber, digest.date
    message_id = (row.message_id if row else "") or delivery.message_id_for(cfg, sub.id, day)
    prior = row.attempts if row else 0
    job = delivery.Outgoing(sub, day, message_id, b"", cfg.email.from_address, (), prior)
    try:
        rendered = render()
        if rendered.nothing_fits:  # never mail a digest whose picks were all left out
            reason = "no pick fits under the e-mail size limit"
            summary.nothing_new += 1
            summary.empty.append((sub.email, reason))
            if not summary.dry_run:
                ledger.skipped(sub, day, reason)
            return None
        if summary.dry_run:
            summary.planned.append((sub.email, rendered.subject, len(digest.picks)))
            return None
        job.paper_ids = digest.paper_ids[: len(digest.paper_ids) - rendered.dropped]
        job.raw = delivery.render_bytes(
            cfg,
            sub,
            rendered,
            message_id=message_id,
            digest_date=day,
            now=ledger.clock(),
            signer=ctx.signer,
        )
        return job
    except delivery.RefusedMessage as exc:
        reason = f"not sent: {exc}"
        if not summary.dry_run:
            ledger.claim(job)
            if ledger.failed(sub, day, reason, job.prior_attempts):
                summary.bounced.append(sub.email)
        summary.failed += 1
        summary.failures.append((sub.email, reason))
    except NewsletterError:
        raise  # a run-level problem (e.g. the configuration): stop, as for everyone
    except Exception as exc:  # a rendering bug must not stop everyone else's digest
        log.exception("could not render the digest for %s", sub.email)
        reason = f"could not render the digest: {exc}"
        if not summary.dry_run:
            ledger.claim(job)
            ledger.retry(job, reason, job.prior_attempts)
        summary.retry += 1
        summary.retries.append((sub.email, reason))
    return None
