"""Turning ranked digests into the bytes to send (render → MIME → DKIM), in worker processes
or in the sending process.

Rendering and building a message is pure CPU work, about 1.5 ms a digest, and one Python
process shares one GIL between it and the SMTP threads: it is the wall of a send run. So a
large run builds its messages in `delivery.build_processes` worker processes, fed by the one
producer that ranks (`sending.outgoing`), while the sending process keeps the ledger and the
SMTP connections. The workers never touch the database: what they return is only bytes and
an outcome, so killing one (even with `kill -9`) loses nothing but work. Its batches are
built again by a fresh pool, and nothing was claimed for them yet.

Results come back in the order the digests went in, and at most a few batches per worker
are in flight, so memory stays bounded however many subscribers are due.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from newsletter import delivery
from newsletter.config import Config
from newsletter.errors import DeliveryError, NewsletterError
from newsletter.models import Digest, Paper, Pick
from newsletter.render.renderer import Renderer

log = logging.getLogger("newsletter.building")

BATCH = 16  # digests per task: large enough that a task's overhead stays small
IN_FLIGHT = 4  # tasks queued per worker, so none waits while results are collected
MAX_RESTARTS = 3  # worker pools replaced after a worker died, before the run gives up


class Outcome(StrEnum):
    BUILT = "built"  # raw holds the message
    PLANNED = "planned"  # a dry run: rendered, not built
    EMPTY = "empty"  # not one pick fits under the e-mail size limit
    REFUSED = "refused"  # the email package refused a header (the address, the subject)
    BROKEN = "broken"  # a rendering bug: retried by the next run
    FATAL = "fatal"  # a run-level problem (e.g. the configuration): stop for everyone


@dataclass(frozen=True)
class BuildRequest:
    """One digest to render and build, with the Message-ID and Date it goes out under."""

    digest: Digest
    first: bool  # the subscriber's first digest: the welcome template
    message_id: str
    now: datetime


@dataclass(frozen=True)
class Built:
    """What building one digest gave: the message, or why there is none."""

    outcome: Outcome
    raw: bytes = b""
    paper_ids: tuple[str, ...] = ()  # the picks that made it into the message
    subject: str = ""
    reason: str = ""


class MessageBuilder:
    """Renders a digest and builds the exact bytes to send; never raises for one digest."""

    def __init__(self, cfg: Config, renderer: Renderer, dry_run: bool = False) -> None:
        self.cfg = cfg
        self.renderer = renderer
        self.signer = delivery.DKIMSigner.from_config(cfg)
        self.dry_run = dry_run

    def build(self, req: BuildRequest) -> Built:
        digest = req.digest
        try:
            rendered = self.renderer.for_digest(digest, first=req.first)
            if rendered.nothing_fits:  # never mail a digest whose picks were all left out
                return Built(Outcome.EMPTY, reason="no pick fits under the e-mail size limit")
            paper_ids = digest.paper_ids[: len(digest.paper_ids) - rendered.dropped]
            if self.dry_run:
                return Built(Outcome.PLANNED, paper_ids=paper_ids, subject=rendered.subject)
            raw = delivery.render_bytes(
                self.cfg,
                digest.subscriber,
                rendered,
                message_id=req.message_id,
                digest_date=digest.date,
                now=req.now,
                signer=self.signer,
            )
            return Built(Outcome.BUILT, raw, paper_ids, rendered.subject)
        except delivery.RefusedMessage as exc:
            return Built(Outcome.REFUSED, reason=f"not sent: {exc}")
        except NewsletterError as exc:
            return Built(Outcome.FATAL, reason=str(exc))
        except Exception as exc:  # a rendering bug must not stop everyone else's digest
            log.exception("could not render the digest for %s", digest.subscriber.email)
            return Built(Outcome.BROKEN, reason=f"could not render the digest: {exc}")

    def build_many(self, requests: list[BuildRequest]) -> list[Built]:
        return [self.build(r) for r in requests]


# ---------------------------------------------------------------- in the worker processes

_worker: MessageBuilder | None = None
_papers: dict[str, Paper] = {}


# A request crosses to a worker as a plain tuple with each paper as its id (the workers were
# handed the run's papers once), pickled by the C pickler alone: a Python hook per object (a
# pickler's `persistent_id`) cost the sending process as much as a worker spends building.
Packed = tuple[Any, ...]
SAME_ENTRIES = 4096  # papers checked against the workers' copies; the check starts over when full


def _pack(req: BuildRequest, held: dict[str, Paper], same: dict[int, tuple[Paper, bool]]) -> Packed:
    def ref(paper: Paper) -> Paper | str:
        """The paper's id when the workers hold it as it is, else the paper itself."""
        known = same.get(id(paper))  # entries keep their paper, so an id is never reused
        if known is None or known[0] is not paper:
            if len(same) >= SAME_ENTRIES:
                same.clear()
            copy = held.get(paper.id)
            known = same[id(paper)] = (paper, copy is paper or copy == paper)
        return paper.id if known[1] else paper

    def picks(chosen: tuple[Pick, ...]) -> tuple[Packed, ...]:
        return tuple((ref(p.paper), p.score, p.reason, p.matched) for p in chosen)

    d = req.digest
    return (
        *(d.subscriber, d.date, picks(d.picks), picks(d.trending), d.interests),
        *(d.empty_reason, d.extra, req.first, req.message_id, req.now),
    )


def _unpack(packed: Packed) -> BuildRequest:
    sub, day, chosen, trending, interests, empty, extra, first, message_id, now = packed

    def picks(rows: tuple[Packed, ...]) -> tuple[Pick, ...]:
        return tuple(
            Pick(_papers[ref] if type(ref) is str else ref, score, reason, matched)
            for ref, score, reason, matched in rows
        )

    digest = Digest(sub, day, picks(chosen), picks(trending), interests, empty, extra)
    return BuildRequest(digest, first, message_id, now)


def _dumps(packed: list[Packed]) -> bytes:
    return pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL)


def _start_worker(
    cfg: Config,
    kind: type[Renderer],
    inline_per_email: bool,
    max_html_bytes: int,
    dry_run: bool,
    lifeline: Connection,
    papers: list[Paper],
    styled: dict[str, str],
) -> None:
    global _worker
    _papers.update((p.id, p) for p in papers)
    # Ctrl-C reaches the whole process group; the sending process handles it (it stops
    # between messages, then closes the pool). SIGTERM stays fatal: a broken pool ends its
    # remaining workers with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(lifeline,), daemon=True).start()
    renderer = kind(
        cfg, inline_per_email=inline_per_email, max_html_bytes=max_html_bytes, styled=styled
    )
    with contextlib.suppress(Exception):  # a broken or missing template: its build says so
        renderer.prepare()
    _worker = MessageBuilder(cfg, renderer, dry_run)


def _ready() -> None:
    """A task that only makes the pool start a worker now rather than on the first batch."""


def _exit_with(lifeline: Connection) -> None:
    """End this worker once the sending process is gone, even by `kill -9`: the pool's own
    pipes never report that (each worker holds both ends), and an orphan would keep its
    memory and the terminal's output. Only the sending process holds the other end of
    `lifeline`, and never writes to it: the read returns when that process ends."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(1)


def _build_in_worker(pickled: bytes) -> list[Built]:
    assert _worker is not None, "the worker was not initialised"
    requests = [_unpack(packed) for packed in pickle.loads(pickled)]
    return _worker.build_many(requests)


# ---------------------------------------------------------------- the two ways to build


def _batches(requests: Iterable[BuildRequest], size: int) -> Iterator[list[BuildRequest]]:
    batch: list[BuildRequest] = []
    for req in requests:
        batch.append(req)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Builders:
    """Builds in the sending process (the default for small runs, and `build_processes = 0`)."""

    processes = 0

    def __init__(self, builder: MessageBuilder) -> None:
        self.builder = builder

    def map(self, requests: Iterable[BuildRequest]) -> Iterator[tuple[BuildRequest, Built]]:
        """Each request with what building it gave, in order, lazily."""
        for req in requests:
            yield req, self.builder.build(req)

    def pids(self) -> list[int]:
        return []

    def close(self) -> None:
        pass

    def __enter__(self) -> Builders:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


class ProcessBuilders(Builders):
    """Builds in `processes` worker processes (forkserver: no inherited SQLite connection,
    no copy of the sending threads), replacing the pool when a worker dies."""

    def __init__(
        self,
        cfg: Config,
        renderer: Renderer,
        processes: int,
        dry_run: bool = False,
        papers: Sequence[Paper] = (),
    ) -> None:
        """`papers`: the run's candidate papers, handed to each worker once."""
        self.cfg = cfg
        self.processes = processes
        self._mp = multiprocessing.get_context("forkserver")
        self._mp.set_forkserver_preload(["newsletter.building", "premailer"])
        multiprocessing.forkserver.ensure_running()  # its imports run while we style templates
        lifeline, self._lifeline = self._mp.Pipe(duplex=False)
        # each worker renders as the sending process's renderer would (its class and options),
        # from the template sources this process styles once (rather than once per worker)
        with contextlib.suppress(Exception):  # a broken or missing template: its build says so
            renderer.prepare()
        self._initargs = (
            cfg,
            type(renderer),
            renderer.inline_per_email,
            renderer.max_html_bytes,
            dry_run,
            lifeline,
            list(papers),
            renderer.styled_sources(),
        )
        self._papers = {p.id: p for p in papers}
        self._same: dict[int, tuple[Paper, bool]] = {}
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        """A pool whose workers start now: they get ready (imports, templates styled) while
        the sending process ranks the first subscribers, instead of after it."""
        pool = ProcessPoolExecutor(
            self.processes,
            mp_context=self._mp,
            initializer=_start_worker,
            initargs=self._initargs,
        )

        def start() -> None:  # in a thread: the first start waits for the forkserver's imports
            with contextlib.suppress(RuntimeError):  # the pool was shut down before
                for _ in range(self.processes):
                    pool.submit(_ready)

        threading.Thread(target=start, name="start-builders", daemon=True).start()
        return pool

    def map(self, requests: Iterable[BuildRequest]) -> Iterator[tuple[BuildRequest, Built]]:
        batches = _batches(requests, BATCH)
        pending: deque[tuple[list[BuildRequest], Future[list[Built]]]] = deque()
        restarts = 0

        def submit(batch: list[BuildRequest]) -> None:
            blob = _dumps([_pack(req, self._papers, self._same) for req in batch])
            pending.append((batch, self._pool.submit(_build_in_worker, blob)))

        for _ in range(self.processes * IN_FLIGHT):
            batch = next(batches, None)
            if batch is None:
                break
            submit(batch)
        while pending:
            batch, future = pending[0]
            try:
                results = future.result()
            except BrokenProcessPool:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise DeliveryError(
                        "the processes building messages keep dying (out of memory? killed?); "
                        "what was not sent is left for the next run: see the log"
                    ) from None
                log.warning("a process building messages died; building its batches again")
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
                lost = [b for b, _ in pending]
                pending.clear()
                for b in lost:
                    submit(b)
                continue
            pending.popleft()
            following = next(batches, None)
            if following is not None:
                submit(following)
            yield from zip(batch, results, strict=True)

    def pids(self) -> list[int]:
        """The worker processes' ids (the benchmark reads their memory)."""
        return [p.pid for p in multiprocessing.active_children() if p.pid is not None]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._lifeline.close()


def builders_for(
    cfg: Config,
    renderer: Renderer,
    digests: int,
    dry_run: bool,
    papers: Callable[[], Sequence[Paper]],
) -> Builders:
    """Worker processes when the run is large enough to gain from them, else this process.
    `papers` gives the run's candidate papers (read only when workers are used)."""
    wanted = cfg.delivery.build_processes
    processes = (os.cpu_count() or 1) if wanted < 0 else wanted
    if processes <= 0 or digests < max(cfg.delivery.build_from, 1):
        return Builders(MessageBuilder(cfg, renderer, dry_run))
    return ProcessBuilders(cfg, renderer, processes, dry_run, papers())
