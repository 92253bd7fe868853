"""`newsletter send` end to end: real ranker and renderer, a real SQLite file, a real aiosmtpd."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsletter import pipeline
from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.demo import DEMO_DAY, offline_transport
from newsletter.models import Interest, InterestKind, SendStatus, SubscriberStatus
from newsletter.render.renderer import Renderer
from newsletter.sources.fetch import Fetcher
from newsletter.store import Database
from tests.conftest import SECRET, SMTPSink

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DAY = DEMO_DAY.isoformat()
READERS = {
    "ada@example.org": ("Ada", ["KV cache compression", "quantization"]),
    "grace@example.org": ("Grace Hopper", ["medical image segmentation"]),
    "alan@example.org": ("Alan", ["speech recognition", "audio codec"]),
    "zoe@example.org": ("Zoë Ünal", []),
}


def write_config(
    tmp_path: Path, port: int, extra: str = "", database: str = "data/newsletter.db"
) -> Path:
    """A config for a send to 127.0.0.1:`port`; `database` a path or a PostgreSQL URL; `extra`
    goes under [smtp] (or opens further sections)."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[storage]\ndata_dir = "data"\ndatabase = "{database}"\n'
        '[site]\nbase_url = "https://papers.example.org"\nname = "Test Digest"\n'
        'postal_address = "1 Test Street"\n'
        '[email]\nmessage_id_domain = "test.example.org"\n'
        'unsubscribe_mailto = "unsubscribe@example.org"\n'
        # every send here builds its messages in worker processes, however small the run
        "[delivery]\nbuild_processes = 2\nbuild_from = 1\n"
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        "max_attempts = 2\nretry_backoff_seconds = 0.01\n" + extra,
        encoding="utf-8",
    )
    return path


def seed(config: Path, readers: dict[str, tuple[str, list[str]]] = READERS) -> None:
    """The demo's sample day through the real fetch code, and a few subscribers."""
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        Fetcher(store, cfg, NOW, offline_transport()).today(DEMO_DAY)
        for address, (name, interests) in readers.items():
            sub, _ = store.subscribers.add(address, NOW, name=name, status=SubscriberStatus.ACTIVE)
            store.subscribers.set_interests(
                sub.id, [Interest(InterestKind.KEYWORD, i) for i in interests], NOW
            )


@pytest.fixture
def config(tmp_path: Path, smtp_server: SMTPSink, database_target: str) -> Path:
    path = write_config(tmp_path, smtp_server.port, database=database_target)
    seed(path)
    return path


def send(config: Path, *args: str) -> Result:
    env = {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_CONFIG": str(config)}
    return CliRunner().invoke(cli, ["send", "--date", DAY, *args], env=env)


def received(sink: SMTPSink) -> dict[str, list[email.message.EmailMessage]]:
    out: dict[str, list[email.message.EmailMessage]] = {}
    for rec, msg in zip(sink.received, sink.messages(), strict=True):
        for rcpt in rec["to"]:
            out.setdefault(rcpt, []).append(msg)
    return out


def ledger(config: Path) -> dict[str, dict]:
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        emails = {s.id: s.email for s in store.subscribers.list()}
        return {emails[r.subscriber_id]: r for r in store.sends.on(DEMO_DAY)}


def test_send_twice_sends_nothing_the_second_time(config: Path, smtp_server: SMTPSink) -> None:
    first = send(config)
    assert first.exit_code == 0, first.output
    assert "sent 4 · skipped 0 already sent · 0 nothing new · 0 paused · failed 0" in first.output
    got = received(smtp_server)
    assert sorted(got) == sorted(READERS)
    rows = ledger(config)
    for address, messages in got.items():
        assert len(messages) == 1
        msg = messages[0]
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Message-ID"] == rows[address].message_id
        assert msg["Message-ID"].endswith("@test.example.org>")
        papers = rows[address].paper_ids
        html = msg.get_body(("html",)).get_content()
        assert papers and all(f"https://arxiv.org/abs/{pid}" in html for pid in papers)
        assert rows[address].status == SendStatus.SENT
    assert got["zoe@example.org"][0]["To"].addresses[0].display_name == "Zoë Ünal"
    for rec in smtp_server.received:
        raw = rec["data"]
        assert raw.count(b"\n") == raw.count(b"\r\n")
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998

    second = send(config)
    assert second.exit_code == 0, second.output
    assert "sent 0 · skipped 4 already sent" in second.output
    assert len(smtp_server.received) == 4
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        runs = store.runs.last("send")
    assert [r.outcome for r in runs[:2]] == ["ok", "ok"]
    assert runs[0].summary.startswith("sent 0 · skipped 4 already sent")


def test_a_550_fails_one_subscriber_and_the_exit_status_says_so(
    config: Path, smtp_server: SMTPSink
) -> None:
    smtp_server.scripted["grace@example.org"] = ["550 5.1.1 <grace@example.org>: no such user"]
    result = send(config)
    assert result.exit_code == 1
    assert "sent 3 ·" in result.output and "failed 1 (see `newsletter status`)" in result.output
    assert "failed: grace@example.org: the SMTP server refused the recipient: 550 5.1.1" in (
        result.output
    )
    rows = ledger(config)
    assert rows["grace@example.org"].status == SendStatus.FAILED
    assert "550 5.1.1" in rows["grace@example.org"].error
    assert sorted(received(smtp_server)) == sorted(set(READERS) - {"grace@example.org"})


def test_an_address_no_message_can_carry_fails_and_counts_as_a_bounce(
    tmp_path: Path, smtp_server: SMTPSink, database_target: str
) -> None:
    """A stored address the message cannot carry (a non-ASCII local part needs SMTPUTF8,
    which sign-up refuses, but a copied database may hold one) is refused when its message
    is built: that reader's digest fails with the reason, the others go out, and it counts
    toward `bounce_after` (here 1), so it is not failed again every day."""
    path = write_config(tmp_path, smtp_server.port, "bounce_after = 1\n", database_target)
    seed(path, {**READERS, "zoë@example.org": ("Zoë", ["quantization"])})
    result = send(path)
    assert result.exit_code == 1, result.output
    rows = ledger(path)
    assert rows["zoë@example.org"].status == SendStatus.FAILED
    assert "needs SMTPUTF8" in rows["zoë@example.org"].error
    assert sorted(received(smtp_server)) == sorted(READERS)
    cfg = load_config(str(path))
    with Database(cfg.database) as store:
        (zoe,) = [s for s in store.subscribers.list() if s.email == "zoë@example.org"]
        assert zoe.status == SubscriberStatus.BOUNCED


def test_451_then_250_is_delivered_once(config: Path, smtp_server: SMTPSink) -> None:
    smtp_server.scripted["alan@example.org"] = ["451 4.7.1 greylisted, try again", None]
    result = send(config)
    assert result.exit_code == 0, result.output
    assert len(received(smtp_server)["alan@example.org"]) == 1
    assert ledger(config)["alan@example.org"].attempts == 2


def test_still_failing_4xx_is_left_for_the_next_run(config: Path, smtp_server: SMTPSink) -> None:
    smtp_server.scripted["alan@example.org"] = ["451 4.3.0 try later"] * 2
    result = send(config)
    assert result.exit_code == 75, result.output
    assert "1 left to retry" in result.output
    assert ledger(config)["alan@example.org"].status == SendStatus.RETRY
    again = send(config)
    assert again.exit_code == 0, again.output
    assert "sent 1 · skipped 3 already sent" in again.output
    ids = {m["Message-ID"] for m in received(smtp_server)["alan@example.org"]}
    assert len(ids) == 1


def test_dry_run_to_limit_and_resend(config: Path, smtp_server: SMTPSink) -> None:
    dry = send(config, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would send 4" in dry.output and "would send ada@example.org: Welcome to" in dry.output
    assert smtp_server.received == [] and ledger(config) == {}

    one = send(config, "--to", "ALAN@example.org")
    assert one.exit_code == 0 and "sent 1 ·" in one.output
    assert list(received(smtp_server)) == ["alan@example.org"]
    two = send(config, "--limit", "2")
    assert "sent 2 · skipped 1 already sent" in two.output
    assert len(smtp_server.received) == 3

    first_id = received(smtp_server)["alan@example.org"][0]["Message-ID"]
    again = send(config, "--resend", "alan@example.org")
    assert again.exit_code == 0 and "sent 1 ·" in again.output
    resent = received(smtp_server)["alan@example.org"]
    assert len(resent) == 2 and resent[1]["Message-ID"] != first_id
    assert ledger(config)["alan@example.org"].message_id == resent[1]["Message-ID"]

    unknown = send(config, "--to", "nobody@example.org")
    assert unknown.exit_code == 1 and "nobody@example.org is not a subscriber" in unknown.output


def test_nothing_new_and_paused_are_counted(config: Path, smtp_server: SMTPSink) -> None:
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        grace = store.subscribers.get_by_email("grace@example.org")
        store.subscribers.set_status(grace.id, SubscriberStatus.PAUSED, NOW)
    later = CliRunner().invoke(
        cli,
        ["send", "--date", "2026-12-10"],
        env={"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_CONFIG": str(config)},
    )
    assert later.exit_code == 0, later.output
    assert "sent 0 · skipped 0 already sent · 3 nothing new · 1 paused · failed 0" in later.output
    assert smtp_server.received == []
    with Database(cfg.database) as store:
        rows = store.sends.on(date(2026, 12, 10))
    assert len(rows) == 3 and all(r.status == SendStatus.SKIPPED for r in rows)


def test_eve_bcc_name_adds_no_header_and_no_recipient(
    tmp_path: Path, smtp_server: SMTPSink
) -> None:
    path = write_config(tmp_path, smtp_server.port)
    seed(path, {"eve@example.org": ("Eve\r\nBcc: x@evil.test", ["quantization"])})
    result = send(path)
    assert result.exit_code == 0, result.output
    (rec,) = smtp_server.received
    assert rec["to"] == ["eve@example.org"]
    head = rec["data"].split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and not head.startswith(b"Bcc:")
    msg = email.message_from_bytes(rec["data"], policy=email.policy.default)
    assert msg["Bcc"] is None and len(msg["To"].addresses) == 1


def test_a_second_run_is_refused_while_one_holds_the_lock(config: Path, backend: str) -> None:
    if backend == "postgres":
        pytest.skip("on PostgreSQL a second run shares the work: tests/test_send_workers.py")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from newsletter.config import load_config; "
            "from newsletter.delivery.lock import send_lock\n"
            f"with send_lock(load_config({str(config)!r})):\n"
            "    print('locked', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NEWSLETTER_SECRET_KEY": SECRET},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = send(config)
        assert result.exit_code == 1
        assert "another newsletter run holds" in result.output
        assert "Traceback" not in result.output
    finally:
        holder.communicate("\n", timeout=10)
    assert ledger(config) == {}


def test_run_fetches_then_sends_and_a_rerun_sends_nothing(
    tmp_path: Path, smtp_server: SMTPSink
) -> None:
    from newsletter.bench.fetch import serve
    from newsletter.demo import DAILY_PAPERS, FEED

    routes = {"/rss/": FEED.read_bytes(), "/api/daily_papers": DAILY_PAPERS.read_bytes()}
    with serve(routes) as base:
        config = write_config(
            tmp_path,
            smtp_server.port,
            f'[sources]\narxiv_rss_url = "{base}/rss"\n'
            f'huggingface_url = "{base}/api/daily_papers"\n',
        )
        cfg = load_config(str(config))
        with Database(cfg.database) as store:
            for address in ("ada@example.org", "zoe@example.org"):
                store.subscribers.add(address, NOW, status=SubscriberStatus.ACTIVE)
        env = {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_CONFIG": str(config)}
        first = CliRunner().invoke(cli, ["run", "--date", DAY], env=env)
        assert first.exit_code == 0, first.output
        assert "fetched 480 papers: 480 new" in first.output
        assert "sent 2 · skipped 0 already sent" in first.output
        second = CliRunner().invoke(cli, ["run", "--date", DAY], env=env)
        assert second.exit_code == 0, second.output
        assert (
            "480 unchanged" in second.output and "sent 0 · skipped 2 already sent" in second.output
        )
    assert len(smtp_server.received) == 2


class BrokenForGrace(Renderer):
    """Fault injection around the real renderer (at module level: the building processes
    import it by name)."""

    def welcome(self, digest):  # type: ignore[no-untyped-def]
        if digest.subscriber.email == "grace@example.org":
            raise RuntimeError("template exploded")
        return super().welcome(digest)


def test_a_digest_that_cannot_be_rendered_is_retried_and_the_rest_go_out(
    config: Path, smtp_server: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    from newsletter.delivery import mailer_from_config

    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        ctx = pipeline.Context(store, cfg, mailer=mailer_from_config(cfg))
        ctx.renderer = BrokenForGrace(cfg)
        summary = pipeline.send_daily(ctx, DEMO_DAY)
    assert (summary.sent, summary.retry, summary.failed) == (3, 1, 0)
    assert summary.exit_code == 75
    assert summary.retries == [
        ("grace@example.org", "could not render the digest: template exploded")
    ]
    assert sorted(received(smtp_server)) == sorted(set(READERS) - {"grace@example.org"})
    assert ledger(config)["grace@example.org"].status == SendStatus.RETRY
    assert send(config).output.count("sent 1 · skipped 3 already sent") == 1


def test_a_digest_in_which_no_pick_fits_is_skipped_with_the_reason_and_not_sent(
    config: Path, smtp_server: SMTPSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    from newsletter.delivery import mailer_from_config
    from newsletter.render.renderer import Renderer

    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        ctx = pipeline.Context(store, cfg, mailer=mailer_from_config(cfg))
        ctx.renderer = Renderer(cfg, max_html_bytes=2_000)  # below even a one-card digest
        summary = pipeline.send_daily(ctx, DEMO_DAY)
    assert smtp_server.received == []  # no empty digest went out
    assert (summary.sent, summary.nothing_new, summary.failed) == (0, 4, 0)
    reason = "no pick fits under the e-mail size limit"
    assert sorted(summary.empty) == sorted((address, reason) for address in READERS)
    rows = ledger(config)
    assert len(rows) == 4
    assert all(r.status == SendStatus.SKIPPED and r.error == reason for r in rows.values())


def test_without_a_secret_key_the_run_does_not_start(config: Path, smtp_server: SMTPSink) -> None:
    result = CliRunner().invoke(
        cli,
        ["send", "--date", DAY],
        env={"NEWSLETTER_SECRET_KEY": "", "NEWSLETTER_CONFIG": str(config)},
    )
    assert result.exit_code == 1
    assert "NEWSLETTER_SECRET_KEY is not set" in result.output and "Traceback" not in result.output
    assert smtp_server.received == [] and ledger(config) == {}


def test_the_first_digest_is_the_welcome_digest_and_the_next_is_not(
    config: Path, smtp_server: SMTPSink
) -> None:
    first = send(config)
    assert first.exit_code == 0, first.output
    subjects = {a: str(m["Subject"]) for a, ms in received(smtp_server).items() for m in ms}
    assert subjects and all(s.startswith("Welcome to Test Digest: ") for s in subjects.values())
    welcome = received(smtp_server)["ada@example.org"][0]
    assert "Here is your first digest" in welcome.get_body(("plain",)).get_content()
    smtp_server.received.clear()
    tomorrow = DEMO_DAY + timedelta(days=1)
    cfg = load_config(str(config))
    with Database(cfg.database) as store:  # the next day's announcements: twins of today's
        today = store.papers.between(DEMO_DAY, DEMO_DAY)
        store.papers.upsert(
            [
                replace(p, id=f"2611.{90000 + i}", announced=tomorrow, hf_date=None)
                for i, p in enumerate(today)
            ],
            NOW,
        )
    nxt = send(config, "--date", tomorrow.isoformat())
    assert nxt.exit_code == 0, nxt.output
    later = [str(m["Subject"]) for ms in received(smtp_server).values() for m in ms]
    assert later and all(s.startswith("Papers for Wed 25 Nov: ") for s in later)


@pytest.mark.parametrize(
    ("change", "reason"),
    [("unsubscribe", "unsubscribed during the run"), ("pause", "paused during the run")],
)
def test_a_reader_who_leaves_while_the_run_is_in_flight_gets_nothing(
    config: Path, smtp_server: SMTPSink, monkeypatch: pytest.MonkeyPatch, change: str, reason: str
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    from newsletter.delivery import DeliveryReport, mailer_from_config
    from newsletter.sending import SendOptions
    from newsletter.subscriptions import Subscriptions

    cfg = load_config(str(config))
    # The reader acts through a connection of their own, as the web app would.
    with Database(cfg.database) as store, Database(cfg.database) as web_store:
        people = Subscriptions(web_store, cfg, lambda: NOW)
        zoe = web_store.subscribers.get_by_email("zoe@example.org")
        assert zoe is not None and zoe.id == max(s.id for s in web_store.subscribers.list())
        seen_at_change: list[int] = []

        def progress(report: DeliveryReport) -> None:
            if report.sent == 1 and not seen_at_change:  # ada's digest is out, zoe's is queued
                seen_at_change.append(len(smtp_server.received))
                getattr(people, change)(zoe)

        ctx = pipeline.Context(store, cfg, mailer=mailer_from_config(cfg))
        summary = pipeline.send_daily(ctx, DEMO_DAY, SendOptions(progress=progress))
        last_run = store.runs.last("send")[0]
    assert seen_at_change == [1]
    assert sorted(received(smtp_server)) == sorted(set(READERS) - {"zoe@example.org"})
    assert (summary.sent, summary.failed, summary.retry, summary.exit_code) == (3, 0, 0, 0)
    assert summary.left == [("zoe@example.org", reason)]
    assert f"sent 3 · skipped 0 already sent · 0 nothing new · 0 paused · 1 {reason}" in (
        summary.line()
    )
    assert last_run.outcome == "ok" and f"1 {reason}" in last_run.summary
    row = ledger(config)["zoe@example.org"]
    assert (row.status, row.error) == (SendStatus.SKIPPED, reason)

    again = send(config)
    assert again.exit_code == 0, again.output
    assert "sent 0 · skipped 3 already sent" in again.output
    assert "zoe@example.org" not in received(smtp_server)


def test_a_subscriber_whose_row_went_while_queued_is_skipped_without_an_error(
    tmp_path: Path,
) -> None:
    from newsletter.delivery import Outgoing
    from newsletter.subscriptions import Subscriptions
    from tests.conftest import ledger_for, make_config

    cfg = make_config(tmp_path)
    with Database(cfg.database) as store:
        old = NOW - timedelta(days=cfg.web.pending_expiry_days + 1)
        sub, _ = store.subscribers.add("p@example.org", old, status=SubscriberStatus.PENDING)
        job = Outgoing(sub, DEMO_DAY, "<m@test.example.org>", b"", cfg.email.from_address)
        ledger = ledger_for(store, cfg, lambda: NOW)
        assert ledger.claim(job)
        assert Subscriptions(store, cfg, lambda: NOW).expire_pending() == 1
        assert ledger.stopped_receiving(job) == "deleted during the run"
        assert store.sends.on(DEMO_DAY) == []


def test_every_chunk_of_a_run_is_ranked_against_the_papers_read_when_it_started(
    config: Path,
) -> None:
    """A send run reads the day's candidates once (`pipeline.candidates`) and ranks each chunk
    of subscribers against them: a paper stored meanwhile (a fetch on another machine) is not
    in this run's later digests, so everyone in one run picks from the same papers."""
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        ctx = pipeline.Context(store, cfg)
        subs = [s for s in store.subscribers.list() if s.email == "zoe@example.org"]
        among = pipeline.candidates(ctx, DEMO_DAY)
        (base,) = store.papers.get_many([among.papers[0].id]).values()
        late = replace(base, id="2611.99999", upvotes=10_000, comments=50, hf_date=DEMO_DAY)
        store.papers.upsert([late], NOW)
        (fresh,) = pipeline.build_digests(ctx, DEMO_DAY, subs)
        (same,) = pipeline.build_digests(ctx, DEMO_DAY, subs, among)
    # zoe has no interests: her digest is the day's most trending, the late paper first
    assert fresh.picks[0].paper.id == "2611.99999"
    assert "2611.99999" not in {p.paper.id for p in (*same.picks, *same.trending)}
    assert len(same.picks) == len(fresh.picks)
