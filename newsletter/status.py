"""`newsletter status`: one report of subscribers, fetches, sends and failures (no SQL here).

`gather_status` reads everything through store methods into a `StatusReport`; `to_dict` is the
`--json` shape for monitoring and `format_status` the aligned text block for people.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from newsletter.config import Config
from newsletter.models import Bounce, FetchState, Run, Send, SendStatus, SubscriberStatus
from newsletter.store import Database

# A `claimed` ledger row older than this belongs to a run that died mid-send: the next run
# sends it again (with the same Message-ID).
STALE_CLAIM_AFTER = timedelta(minutes=15)
# How far back failures and send counts are reported.
LOOKBACK_DAYS = 7
# A source whose last success is older than this is reported as a problem.
FETCH_STALE_AFTER = timedelta(hours=36)
LIST_LIMIT = 50
_BAD_OUTCOMES = {"failed", "aborted", "error"}


@dataclass
class StatusReport:
    generated_at: datetime
    database: str
    subscribers: dict[str, int]
    papers_day: date
    papers_today: dict[str, int]
    papers_total: int
    latest_paper_day: date | None
    last_runs: dict[str, dict[str, Any] | None]
    sends_by_date: dict[str, dict[str, int]]
    retry: list[dict[str, Any]]
    retry_total: int
    stale_claims: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    failed_total: int
    bounced: list[dict[str, Any]]
    bounced_total: int
    fetch_state: list[dict[str, Any]]
    workers: list[dict[str, Any]] = field(default_factory=list)
    queue: dict[str, Any] | None = None  # the latest digest date's shared send queue
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (dates as ISO strings) for `status --json`."""
        return {
            "generated_at": self.generated_at.isoformat(),
            "database": self.database,
            "healthy": not self.problems,
            "problems": self.problems,
            "counts": {
                "subscribers": sum(self.subscribers.values()),
                "active": self.subscribers.get(SubscriberStatus.ACTIVE, 0),
                "papers_today": sum(self.papers_today.values()),
                "papers_total": self.papers_total,
                "retry": self.retry_total,
                "stale_claims": len(self.stale_claims),
                "failed": self.failed_total,
                "bounced": self.bounced_total,
            },
            "subscribers": {s.value: self.subscribers.get(s.value, 0) for s in SubscriberStatus},
            "papers": {
                "day": self.papers_day.isoformat(),
                "by_source": self.papers_today,
                "total_stored": self.papers_total,
                "latest_day": _iso(self.latest_paper_day),
            },
            "last_runs": self.last_runs,
            "sends_by_date": self.sends_by_date,
            "retry": self.retry,
            "stale_claims": self.stale_claims,
            "failed": self.failed,
            "bounced": self.bounced,
            "fetch_state": self.fetch_state,
            "workers": self.workers,
            "queue": self.queue,
        }


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _run(run: Run) -> dict[str, Any]:
    outcome = run.outcome or ("running or interrupted" if not run.finished_at else "")
    return {
        "started_at": run.started_at.isoformat(),
        "finished_at": _iso(run.finished_at),
        "outcome": outcome,
        "summary": run.summary,
    }


def _runs(latest: dict[str, Run]) -> dict[str, dict[str, Any] | None]:
    """fetch and send always present (None = never ran), then any other kind."""
    out: dict[str, dict[str, Any] | None] = {"fetch": None, "send": None}
    out.update({kind: _run(run) for kind, run in latest.items()})
    return out


def _send(send: Send, email: str) -> dict[str, Any]:
    return {
        "email": email,
        "digest_date": send.digest_date.isoformat(),
        "status": str(send.status),
        "attempts": send.attempts,
        "last_error": send.error or None,
        "updated_at": _iso(send.updated_at),
    }


def _bounce(bounce: Bounce) -> dict[str, Any]:
    return {
        "subscriber_id": bounce.subscriber_id,
        "email": bounce.email,
        "hard_failures": bounce.hard_failures,
        "bounced_at": _iso(bounce.bounced_at),
        "last_error": bounce.last_error or None,
    }


def _sources(states: list[FetchState]) -> list[dict[str, Any]]:
    """fetch_state rows (one per URL) folded into one entry per source: newest success/error."""
    out: dict[str, dict[str, Any]] = {}
    for st in states:
        src = out.setdefault(
            st.source,
            {
                "source": st.source,
                "urls": 0,
                "last_success": None,
                "last_count": None,
                "last_error": None,
                "last_error_at": None,
                "last_error_url": None,
            },
        )
        src["urls"] += 1
        success, error_at = _iso(st.last_success), _iso(st.last_error_at)
        if success and (src["last_success"] or "") < success:
            src["last_success"], src["last_count"] = success, st.last_count
        if st.last_error and (src["last_error_at"] or "") < (error_at or ""):
            src["last_error"], src["last_error_at"] = st.last_error, error_at
            src["last_error_url"] = st.url
    return list(out.values())


def _workers(store: Database, now: datetime) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The send workers seen lately (each with the rows it holds and its earliest lease) and
    the shared queue of the latest digest date (None: no worker has shared one)."""
    epoch = now.timestamp()
    workers = []
    for w in store.claims.workers():
        if w.finished_at:
            state = "finished"
        elif w.holding and w.lease_until is not None and w.lease_until < epoch:
            state = "lease expired"
        else:
            state = "sending" if w.holding else "waiting"
        workers.append(
            {
                "worker": w.worker,
                "digest_date": w.digest_date,
                "state": state,
                "sent": w.sent,
                "holding": w.holding,
                "lease_until": _iso(_epoch(w.lease_until)),
                "last_seen": _iso(_epoch(w.heartbeat_at)),
                "finished_at": w.finished_at or None,
            }
        )
    day = store.claims.latest_date()
    if day is None:
        return workers, None
    return workers, {"digest_date": day.isoformat(), **store.claims.counts(day, epoch)._asdict()}


def _epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def gather_status(store: Database, cfg: Config, now: datetime) -> StatusReport:
    """Collect the report at `now` (aware); "today" for papers is arXiv's day (fetch timezone)."""
    papers_day = now.astimezone(zoneinfo.ZoneInfo(cfg.schedule.fetch_timezone)).date()
    since = papers_day - timedelta(days=LOOKBACK_DAYS)
    retry, retry_total = store.sends.with_email([SendStatus.RETRY], since, LIST_LIMIT)
    claimed, _ = store.sends.with_email([SendStatus.CLAIMED], since, 10 * LIST_LIMIT)
    stale = [(s, e) for s, e in claimed if (s.claimed_at or now) <= now - STALE_CLAIM_AFTER]
    failed, failed_total = store.sends.with_email([SendStatus.FAILED], since, LIST_LIMIT)
    bounced, bounced_total = store.subscribers.bounced(LIST_LIMIT)
    report = StatusReport(
        generated_at=now,
        database=store.location,
        subscribers={str(s): n for s, n in store.subscribers.counts().items()},
        papers_day=papers_day,
        papers_today=dict(sorted(store.papers.counts_by_source(papers_day).items())),
        papers_total=store.papers.count(),
        latest_paper_day=store.papers.latest_day(),
        last_runs=_runs(store.runs.latest_per_kind()),
        sends_by_date={
            day.isoformat(): {str(status): n for status, n in counts.items()}
            for day, counts in store.sends.counts_by_date(since).items()
        },
        retry=[_send(s, e) for s, e in retry],
        retry_total=retry_total,
        stale_claims=[_send(s, e) | {"claimed_at": _iso(s.claimed_at)} for s, e in stale],
        failed=[_send(s, e) for s, e in failed],
        failed_total=failed_total,
        bounced=[_bounce(b) for b in bounced],
        bounced_total=bounced_total,
        fetch_state=_sources(store.runs.fetch_states()),
    )
    report.workers, report.queue = _workers(store, now)
    report.problems = find_problems(report, now)
    return report


def find_problems(report: StatusReport, now: datetime) -> list[str]:
    """Short sentences a monitor can alert on (empty when all is well)."""
    problems: list[str] = []
    if report.last_runs.get("fetch") is None:
        problems.append("no fetch has run yet: run `newsletter fetch` or start the daemon")
    for kind, run in report.last_runs.items():
        if run is not None and run["outcome"] in _BAD_OUTCOMES:
            detail = _short(run["summary"], 100)
            problems.append(
                f"last {kind} run {run['outcome']} at {_when(run['started_at'])}: {detail}"
            )
    for st in report.fetch_state:
        success, error_at = _parse(st["last_success"]), _parse(st["last_error_at"])
        if st["last_error"] and (success is None or (error_at and error_at > success)):
            problems.append(f"{st['source']} fetch failing: {st['last_error']}")
        elif success is not None and now - success > FETCH_STALE_AFTER:
            problems.append(f"{st['source']} not fetched since {st['last_success']}")
    if report.retry_total:
        problems.append(f"{report.retry_total} send(s) awaiting retry")
    if report.stale_claims:
        problems.append(f"{len(report.stale_claims)} send(s) interrupted mid-run (stale claims)")
    if report.failed_total:
        problems.append(f"{report.failed_total} send(s) failed permanently")
    if report.queue and report.queue["expired"]:
        problems.append(
            f"{report.queue['expired']} subscriber(s) held by a worker whose lease ran out"
            " (it died?): the next worker to run takes them, under the same Message-IDs"
        )
    return problems


# ---------------------------------------------------------------- text output


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


def _when(iso: str | None) -> str:
    """'2026-11-26T04:23:32.1+00:00' → '2026-11-26 04:23' (stored times are UTC)."""
    return iso[:16].replace("T", " ") if iso else "never"


def _short(text: str | None, width: int = 70) -> str:
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def _sends_section(title: str, rows: list[dict[str, Any]], total: int) -> list[str]:
    lines = [f"{title}: {total}"]
    lines += _table(
        [
            [
                r["digest_date"],
                r["email"],
                f"{r['attempts'] or 0} attempt(s)",
                _short(r["last_error"]),
            ]
            for r in rows
        ]
    )
    if total > len(rows):
        lines.append(f"  … and {total - len(rows)} more")
    return lines


def _head(report: StatusReport) -> list[str]:
    subs = report.subscribers
    at = report.generated_at.astimezone(UTC)
    today = sum(report.papers_today.values())
    by_source = ", ".join(f"{k} {v}" for k, v in report.papers_today.items()) or "none yet"
    return [
        f"newsletter status at {at:%Y-%m-%d %H:%M} UTC ({report.database})",
        f"Subscribers: {sum(subs.values())} — "
        + " · ".join(f"{s.value} {subs.get(s.value, 0)}" for s in SubscriberStatus),
        f"Papers for {report.papers_day} (arXiv's day): {today} ({by_source})",
        f"  {report.papers_total} stored; latest announced/listed day: "
        f"{report.latest_paper_day or 'none'}",
    ]


def _runs_section(report: StatusReport) -> list[str]:
    rows = [
        [kind, "never", "", ""]
        if run is None
        else [kind, _when(run["started_at"]), run["outcome"] or "-", _short(run["summary"], 60)]
        for kind, run in report.last_runs.items()
    ]
    by_date = [
        [day, " · ".join(f"{s} {n}" for s, n in counts.items())]
        for day, counts in report.sends_by_date.items()
    ]
    return [
        "Last runs:",
        *_table(rows),
        "Sends by digest date:",
        *(_table(by_date) or [f"  none in the last {LOOKBACK_DAYS} days"]),
    ]


def _sources_section(report: StatusReport) -> list[str]:
    rows = [
        [
            st["source"],
            f"last ok {_when(st['last_success'])}",
            f"{st['last_count'] if st['last_count'] is not None else '-'} item(s)",
            f"error {_when(st['last_error_at'])}: {_short(st['last_error'], 50)}"
            if st["last_error"]
            else "",
        ]
        for st in report.fetch_state
    ]
    return ["Sources:", *(_table(rows) or ["  never fetched"])]


def _workers_section(report: StatusReport) -> list[str]:
    if not report.workers and report.queue is None:
        return []  # a single-process (SQLite) installation: nothing shared to show
    rows = [
        [
            w["worker"],
            w["state"],
            f"sent {w['sent']}",
            f"holds {w['holding']}",
            f"lease to {_when(w['lease_until'])}" if w["holding"] else "",
            f"seen {_when(w['last_seen'])}",
        ]
        for w in report.workers
    ]
    lines = ["Send workers:", *(_table(rows) or ["  none seen"])]
    if report.queue:
        q = report.queue
        lines.append(
            f"  queue for {q['digest_date']}: {q['queued']} queued · {q['claimed']} claimed ·"
            f" {q['expired']} lease expired · {q['done']} done"
        )
    return lines


def format_status(report: StatusReport) -> str:
    """The human-readable status block."""
    lines = _head(report) + _runs_section(report)
    lines += _sends_section("Awaiting retry", report.retry, report.retry_total)
    lines += _sends_section(
        "Interrupted (claimed, not finished)", report.stale_claims, len(report.stale_claims)
    )
    lines += _sends_section("Failed permanently", report.failed, report.failed_total)
    lines.append(f"Bounced addresses: {report.bounced_total}")
    lines += _table(
        [[b["email"], _when(b["bounced_at"]), _short(b["last_error"])] for b in report.bounced]
    )
    lines += _sources_section(report)
    lines += _workers_section(report)
    lines.append("Problems: " + ("none" if not report.problems else f"{len(report.problems)}"))
    lines += [f"  - {p}" for p in report.problems]
    return "\n".join(lines)
