"""Send workers sharing one PostgreSQL store: which subscribers each worker takes.

`send_shared` is `pipeline.send_daily` for a store that several processes (on one machine or
many) send from at once. Each queues the subscribers it finds due (`store.claims`), then takes
a batch at a time under a lease and hands it to the same send path a single run uses
(`pipeline.send_batch`: rank, render and build, claim each message in the ledger, send and
record it; the run's build processes start once and serve every batch). A worker that dies
holds its batch until the lease ends; then another takes it, and the ledger's `claimed` row
gives the resend the same Message-ID. When nothing is left to take but other workers still hold
leases, a worker waits for them: it finishes only when every row of the day is done, so a dead
worker's batch is never left behind.

`run_workers` starts N such workers as processes on this machine (`newsletter send -w N`).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from typing import TYPE_CHECKING

from newsletter.delivery.summary import SendSummary
from newsletter.models import SendStatus, SubscriberStatus
from newsletter.sending import SendOptions, Target, send_targets
from newsletter.store.claims import worker_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from newsletter.building import Builders
    from newsletter.config import Config
    from newsletter.delivery import DeliveryReport
    from newsletter.pipeline import Context
    from newsletter.store import Database

    SendBatch = Callable[
        [Context, date, list[Target], SendSummary, SendOptions, Builders], DeliveryReport | None
    ]

log = logging.getLogger("newsletter.pipeline")

# Longest pause between looks at the queue while other workers hold leases.
POLL_SECONDS = 1.0


def shares_work(ctx: Context, opts: SendOptions) -> bool:
    """True when this run takes its subscribers from the shared queue: a PostgreSQL store and
    an ordinary run (`--to`, `--limit` and `--resend` pick their own subscribers)."""
    return (
        ctx.store.postgres
        and not opts.dry_run
        and not opts.only
        and opts.limit is None
        and opts.resend is None
    )


def _batch_targets(ctx: Context, day: date, ids: list[int]) -> list[Target]:
    """The claimed subscribers still to send, each with their ledger row (read now: another
    worker may have finished one of them since the queue was filled)."""
    out: list[Target] = []
    for sid in ids:
        sub = ctx.store.subscribers.get(sid)
        if sub is None or sub.status != SubscriberStatus.ACTIVE:
            continue
        row = ctx.store.sends.get(sid, day)
        if row is not None and row.status in (SendStatus.SENT, SendStatus.FAILED):
            continue
        out.append((sub, row))
    return out


def send_shared(
    ctx: Context,
    day: date,
    opts: SendOptions,
    summary: SendSummary,
) -> SendSummary:
    """Queue the due subscribers, then take and send batches until the day's queue is done."""
    from newsletter.pipeline import message_builders, send_batch  # pipeline imports this module

    store = ctx.store
    worker = worker_name()
    claims = store.claims
    due = [sub.id for sub, _ in send_targets(ctx, day, summary, opts)]
    claims.enqueue(day, due, ctx.clock())
    run_id = store.runs.start("send", ctx.clock())
    try:
        # Leases are renewed by a thread of their own, on a connection of their own.
        with (
            message_builders(ctx, day, len(due)) as builders,
            _side(ctx.cfg) as side,
            _lease_keeper(side, worker, ctx.cfg.storage.send_lease_seconds),
        ):
            _take_and_send(ctx, day, opts, summary, worker, builders, send_batch)
    except BaseException as exc:
        store.runs.finish(run_id, "aborted", f"stopped: {exc}", ctx.clock())
        claims.finished(worker, ctx.clock(), summary.sent)
        raise
    claims.finished(worker, ctx.clock(), summary.sent)
    store.runs.finish(run_id, summary.outcome, summary.line(), ctx.clock())
    return summary


def _take_and_send(
    ctx: Context,
    day: date,
    opts: SendOptions,
    summary: SendSummary,
    worker: str,
    builders: Builders,
    send: SendBatch,
) -> None:
    """Take a batch under a lease, send it, mark it done; until the day's queue is empty."""
    claims, storage = ctx.store.claims, ctx.cfg.storage
    while not (opts.stop and opts.stop.is_set()):
        now = time.time()
        claims.heartbeat(worker, day, now, ctx.clock(), summary.sent)
        ids = claims.take(
            day, worker, storage.send_batch, storage.send_lease_seconds, now, ctx.clock()
        )
        if not ids:
            expiry = claims.next_expiry(day)
            if expiry is None:
                break  # every row of the day is done
            ctx.sleep(min(POLL_SECONDS, max(expiry - time.time(), 0.05)))
            continue
        report = send(ctx, day, _batch_targets(ctx, day, ids), summary, opts, builders)
        if report is not None and report.aborted:
            break  # the server is unreachable: the lease hands the rest on
        claims.done(day, worker, ids, ctx.clock())


def _side(cfg: Config) -> Database:
    """A second connection to the store, for renewing leases while the batch is on the wire."""
    from newsletter.store import Database

    return Database(cfg.database, password=cfg.database_password)


@contextlib.contextmanager
def _lease_keeper(side: Database, worker: str, lease: float) -> Iterator[None]:
    """While the block runs, a thread extends `worker`'s leases every third of a lease, so a
    batch that takes longer than one lease to rank, build and send (a slow or rate-limited relay,
    a loaded machine starting its build processes) stays this worker's and no other worker
    takes it and mails it a second time. A worker that dies stops renewing with it. Only this
    thread uses `side`."""
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(lease / 3):
            try:
                side.claims.renew(worker, lease, time.time())
            except Exception:  # the store is briefly unreachable: try again next time
                log.warning("could not renew the leases of %s", worker, exc_info=True)

    keeper = threading.Thread(target=keep, name=f"lease-keeper {worker}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()


def _worker(cfg: Config, day: date) -> SendSummary:
    """One worker process: its own connection, the shared queue."""
    from newsletter import pipeline
    from newsletter.store import Database

    with Database(cfg.database, password=cfg.database_password) as store:
        return pipeline.send_daily(pipeline.Context(store, cfg), day)


def run_workers(cfg: Config, day: date, workers: int) -> list[SendSummary]:
    """Run `workers` send workers as processes on this machine; their summaries."""
    context = multiprocessing.get_context("spawn")  # no inherited connections or threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_worker, cfg, day) for _ in range(workers)]
        return [f.result() for f in futures]
