"""Store round trips on a real SQLite file: merge rules, no blanking, unique e-mail, migrations."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from newsletter.models import Interest, InterestKind, Paper, SendStatus, SubscriberStatus
from newsletter.store import Database, merge_papers, schema
from newsletter.store.dialect import in_chunks
from newsletter.store.errors import INTEGRITY_ERRORS
from tests.conftest import ledger_for, make_config

T0 = datetime(2025, 4, 28, 5, 0, tzinfo=UTC)
T1 = datetime(2025, 4, 28, 9, 0, tzinfo=UTC)

ARXIV = Paper(
    id="2504.17837",
    title="Statistical noise enhances quantumness benefits",
    abstract="Quantum reservoir computing offers a promising approach. " * 5,
    authors=("Youssef Kora", "Christoph Simon"),
    categories=("quant-ph", "physics.comp-ph"),
    version=1,
    announce_type="new",
    announced=date(2025, 4, 28),
    abs_url="https://arxiv.org/abs/2504.17837",
    pdf_url="https://arxiv.org/pdf/2504.17837",
    sources=("arxiv_rss",),
    journal_ref="Phys. Rev. A 1 (2025)",
    doi="10.1/x",
)
HF = Paper(
    id="2504.17837",
    title="Statistical Noise Enhances Quantumness Benefits (HF copy)",
    abstract="A shorter HF summary.",
    authors=("Y. Kora",),
    published=datetime(2025, 4, 24, tzinfo=UTC),
    abs_url="https://arxiv.org/abs/2504.17837",
    upvotes=12,
    comments=3,
    github_repo="https://github.com/example/qrc",
    github_stars=40,
    ai_keywords=("reservoir computing",),
    ai_summary="Noise helps.",
    hf_date=date(2025, 4, 28),
    sources=("huggingface",),
)


def test_full_round_trip(store: Database) -> None:
    full = replace(
        ARXIV,
        upvotes=5,
        comments=0,
        github_stars=0,
        ai_keywords=("a", "b"),
        ai_summary="s",
        hf_date=date(2025, 4, 29),
        published=datetime(2025, 4, 24, 13, 0, tzinfo=UTC),
    )
    result = store.papers.upsert([full], T0)
    assert (result.added, result.updated, result.unchanged) == (1, 0, 0)
    got = store.papers.get(full.id)
    assert got == replace(full, first_seen=T0, updated=T0)
    assert got is not None and got.comments == 0 and got.github_stars == 0  # zero is not None


def test_hugging_face_after_arxiv_adds_signals_and_keeps_the_record(store: Database) -> None:
    store.papers.upsert([ARXIV], T0)
    result = store.papers.upsert([HF], T1)
    assert result.updated == 1 and result.updated_ids == frozenset({ARXIV.id})
    p = store.papers.get(ARXIV.id)
    assert p is not None
    assert (p.title, p.abstract, p.authors) == (ARXIV.title, ARXIV.abstract, ARXIV.authors)
    assert p.categories == ARXIV.categories and p.announced == date(2025, 4, 28)
    assert (p.upvotes, p.comments, p.github_stars) == (12, 3, 40)
    assert p.github_repo == HF.github_repo and p.ai_keywords == HF.ai_keywords
    assert p.published == HF.published  # a gap filled
    assert p.sources == ("arxiv_rss", "huggingface")
    assert p.first_seen == T0 and p.updated == T1
    assert p.hf_url == "https://huggingface.co/papers/2504.17837"


def test_arxiv_after_hugging_face_becomes_canonical(store: Database) -> None:
    store.papers.upsert([HF], T0)
    store.papers.upsert([ARXIV], T1)
    p = store.papers.get(ARXIV.id)
    assert p is not None
    assert p.title == ARXIV.title and p.authors == ARXIV.authors
    assert p.upvotes == 12 and p.first_seen == T0
    assert p.sources == ("huggingface", "arxiv_rss")


def test_a_later_shorter_record_never_blanks_a_field(store: Database) -> None:
    store.papers.upsert([merge_papers(ARXIV, HF)], T0)
    sparse = Paper(id=ARXIV.id, sources=("huggingface",), upvotes=None, title="", abstract="")
    result = store.papers.upsert([sparse], T1)
    assert result.unchanged == 1 and result.updated == 0
    p = store.papers.get(ARXIV.id)
    assert p is not None and p.updated == T0  # not rewritten
    assert p.title == ARXIV.title and p.upvotes == 12 and p.github_repo == HF.github_repo
    truncated = replace(ARXIV, abstract=ARXIV.abstract[:40])
    store.papers.upsert([truncated], T1)
    assert store.papers.get(ARXIV.id).abstract == ARXIV.abstract  # type: ignore[union-attr]


def test_fresher_counts_and_newer_versions_win(store: Database) -> None:
    store.papers.upsert([merge_papers(ARXIV, HF)], T0)
    store.papers.upsert([replace(HF, upvotes=30, comments=5), replace(ARXIV, version=3)], T1)
    p = store.papers.get(ARXIV.id)
    assert p is not None and (p.upvotes, p.comments, p.version) == (30, 5, 3)
    store.papers.upsert([replace(ARXIV, version=2)], T1)
    assert store.papers.get(ARXIV.id).version == 3  # type: ignore[union-attr]


def test_the_feed_announcement_replaces_an_api_estimate_but_not_the_reverse() -> None:
    api = replace(ARXIV, sources=("arxiv_api",), announce_type="", announced=date(2025, 4, 25))
    assert merge_papers(api, ARXIV).announced == date(2025, 4, 28)
    assert merge_papers(api, ARXIV).announce_type == "new"
    assert merge_papers(ARXIV, api).announced == date(2025, 4, 28)
    cross = replace(ARXIV, announce_type="cross", announced=date(2025, 4, 29))
    assert merge_papers(ARXIV, cross).announced == date(2025, 4, 28)  # first stays


def test_duplicates_in_one_batch_merge(store: Database) -> None:
    result = store.papers.upsert([ARXIV, HF], T0)
    assert (result.added, result.updated) == (1, 0)
    p = store.papers.get(ARXIV.id)
    assert p is not None and p.upvotes == 12 and p.title == ARXIV.title


def test_unchanged_batch_is_not_rewritten(store: Database, tmp_path: Path) -> None:
    papers = [replace(ARXIV, id=f"2504.{10000 + i}") for i in range(600)]
    assert store.papers.upsert(papers, T0).added == 600
    before = store.conn.execute("SELECT * FROM papers ORDER BY id").fetchall()
    result = store.papers.upsert(papers, T1)
    assert (result.added, result.updated, result.unchanged) == (0, 0, 600)
    assert store.conn.execute("SELECT * FROM papers ORDER BY id").fetchall() == before


def test_email_is_unique_case_insensitively(store: Database) -> None:
    first, created = store.subscribers.add("Ada@Example.org", T0)
    assert created
    again, created_again = store.subscribers.add("ada@example.ORG", T1)
    assert not created_again and again.id == first.id and again.email == "Ada@Example.org"
    assert store.subscribers.get_by_email("ADA@EXAMPLE.ORG") == first
    with pytest.raises(INTEGRITY_ERRORS):
        store.conn.execute("INSERT INTO subscribers (email) VALUES ('ADA@example.org')")


def test_subscriber_round_trip(store: Database) -> None:
    sub, _ = store.subscribers.add(
        "bo@example.org",
        T0,
        name="Bo",
        status=SubscriberStatus.ACTIVE,
        timezone="Europe/Berlin",
        delivery_hour=6,
        digest_size=12,
    )
    assert (sub.name, sub.status, sub.timezone) == ("Bo", "active", "Europe/Berlin")
    assert (sub.delivery_hour, sub.digest_size) == (6, 12)
    assert sub.created_at == T0 and sub.confirmed_at == T0


def test_migrations_set_user_version_and_run_once(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "m.db"
    with Database(path) as s:
        assert s.schema_version == len(schema.MIGRATIONS)
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        s.papers.upsert([ARXIV], T0)
    calls: list[int] = []

    def add_column(db: schema.Migrator) -> None:
        calls.append(1)
        db.execute("ALTER TABLE papers ADD COLUMN note TEXT")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, add_column])
    with Database(path) as s:
        assert s.schema_version == len(schema.MIGRATIONS)
        assert s.papers.get(ARXIV.id) is not None  # data survived
        assert "note" in [r[1] for r in s.conn.execute("PRAGMA table_info(papers)").fetchall()]
    with Database(path) as s:
        assert s.schema_version == len(schema.MIGRATIONS)
    assert calls == [1]


def test_fetch_state_keeps_validators_through_an_error(store: Database) -> None:
    url = "https://rss.arxiv.org/rss/cs.LG"
    store.runs.record_fetch_success(url, "arxiv_rss", T0, etag='"e"', last_modified="lm", count=5)
    store.runs.record_fetch_error(url, "arxiv_rss", "bad XML", T1)
    state = store.runs.fetch_state(url)
    assert state is not None
    assert (state.etag, state.last_modified, state.last_count) == ('"e"', "lm", 5)
    assert state.last_success == T0 and state.last_error == "bad XML"
    assert state.last_error_at == T1
    store.runs.record_fetch_success(url, "arxiv_rss", T1, etag=None, last_modified=None, count=0)
    assert store.runs.fetch_state(url).last_error == ""  # type: ignore[union-attr]


def test_runs(store: Database) -> None:
    run_id = store.runs.start("fetch", T0)
    store.runs.finish(run_id, "ok", "fetched 1 papers", T1)
    (row,) = store.runs.last("fetch")
    assert (row.kind, row.started_at, row.outcome, row.summary, row.finished_at) == (
        "fetch",
        T0,
        "ok",
        "fetched 1 papers",
        T1,
    )
    assert row.id == run_id and store.runs.latest_per_kind() == {"fetch": row}


def test_a_failed_set_interests_keeps_the_old_interests(tmp_path: Path) -> None:
    path = tmp_path / "interests.db"
    old = [Interest(InterestKind.KEYWORD, "quantization"), Interest(InterestKind.CATEGORY, "cs.LG")]
    with Database(path) as store:
        sub, _ = store.subscribers.add("cy@example.org", T0, status=SubscriberStatus.ACTIVE)
        store.subscribers.set_interests(sub.id, old, T0)
        broken = [
            Interest(InterestKind.KEYWORD, "diffusion"),
            Interest(InterestKind.KEYWORD, None),  # type: ignore[arg-type]  # NOT NULL fails
        ]
        with pytest.raises(sqlite3.IntegrityError):
            store.subscribers.set_interests(sub.id, broken, T1)
        assert not store.conn.in_transaction
    with Database(path) as again:  # what the file holds, not what one connection sees
        kept = again.subscribers.interests_for(sub.id)
    assert [(i.kind, i.value) for i in kept] == [(i.kind, i.value) for i in old]


def test_a_transaction_commits_all_or_nothing_and_an_inner_one_joins_it(store: Database) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        sub, _ = store.subscribers.add("di@example.org", T0)
        with store.transaction():  # joins: its end commits nothing yet
            store.subscribers.set_status(sub.id, SubscriberStatus.ACTIVE, T0)
        assert store.conn.in_transaction
        raise RuntimeError("stop")
    assert store.subscribers.list() == []
    with store.transaction():
        store.subscribers.add("di@example.org", T0)
    assert [s.email for s in store.subscribers.list()] == ["di@example.org"]


def test_a_permanent_failure_and_the_bounce_it_causes_land_together(store: Database) -> None:
    sub, _ = store.subscribers.add("el@example.org", T0, status=SubscriberStatus.ACTIVE)
    assert store.sends.claim(sub.id, T0.date(), "<m@example.org>", T0)
    with pytest.raises(RuntimeError), store.transaction():
        assert store.sends.mark_failed(sub.id, T0.date(), "550 no such user", 1, T1) == 1
        raise RuntimeError("crash before the bounce is recorded")
    send = store.sends.get(sub.id, T0.date())
    assert send is not None and send.status == SendStatus.CLAIMED and send.error == ""
    assert store.sends.mark_failed(sub.id, T0.date(), "550 no such user", 1, T1) == 1


def test_send_records_carry_parsed_fields(store: Database) -> None:
    sub, _ = store.subscribers.add("fa@example.org", T0, status=SubscriberStatus.ACTIVE)
    day = T0.date()
    assert store.sends.claim(sub.id, day, "<a@example.org>", T0)
    store.sends.mark_sent(sub.id, day, "<a@example.org>", ["2504.17837", "2504.00001"], 1, T1)
    assert not store.sends.claim(sub.id, day, "<b@example.org>", T1)
    send = store.sends.get(sub.id, day)
    assert send is not None
    assert (send.subscriber_id, send.digest_date, send.status) == (sub.id, day, SendStatus.SENT)
    assert send.paper_ids == ("2504.17837", "2504.00001") and send.message_id == "<a@example.org>"
    assert (send.attempts, send.error, send.claimed_at, send.sent_at) == (1, "", T0, T1)
    assert store.sends.on(day) == [send] == store.sends.recently_sent(sub.id)
    assert store.sends.with_email([SendStatus.SENT], day) == ([(send, "fa@example.org")], 1)
    assert store.sends.counts_by_date(day) == {day: {SendStatus.SENT: 1}}
    assert store.sends.last_sent_dates(day + timedelta(days=1)) == {sub.id: day}


def test_last_sent_dates_of_some_subscribers_read_only_their_rows(store: Database) -> None:
    """A send run asks a chunk of subscribers at a time: the answer for `ids` is theirs alone,
    the latest `sent` date strictly before the day (a claimed or later row does not count)."""
    subs = [
        store.subscribers.add(f"l{i}@example.org", T0, status=SubscriberStatus.ACTIVE)[0]
        for i in range(3)
    ]
    day = T0.date()
    for back in (3, 2, 1):
        for sub in subs[:2]:
            when = day - timedelta(days=back)
            assert store.sends.claim(sub.id, when, f"<{sub.id}.{back}@x>", T0)
            if not (sub is subs[1] and back == 1):
                store.sends.mark_sent(sub.id, when, f"<{sub.id}.{back}@x>", ["p"], 1, T1)
    store.sends.claim(subs[0].id, day, "<today@x>", T0)
    store.sends.mark_sent(subs[0].id, day, "<today@x>", ["p"], 1, T1)
    a, b, c = (s.id for s in subs)
    expected = {a: day - timedelta(days=1), b: day - timedelta(days=2)}
    assert store.sends.last_sent_dates(day) == expected
    assert store.sends.last_sent_dates(day, [b, c]) == {b: day - timedelta(days=2)}
    assert store.sends.last_sent_dates(day, [c]) == {}
    assert store.sends.last_sent_dates(day, []) == {}


def test_lookups_for_more_subscribers_than_one_statement_may_bind(store: Database) -> None:
    """`newsletter subscribers` and `preview --all` ask about every subscriber at once: more
    ids than SQLite built with its default limit (32,766) or PostgreSQL's protocol (65,535)
    bind in one statement. The answer is the same as for the few ids that have rows."""
    if isinstance(store.conn, sqlite3.Connection):
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    subs = [
        store.subscribers.add(f"many{i}@example.org", T0, status=SubscriberStatus.ACTIVE)[0]
        for i in range(3)
    ]
    a, b, c = (s.id for s in subs)
    store.subscribers.add_interests(a, [Interest(InterestKind.KEYWORD, "pruning")], T0)
    store.subscribers.add_interests(c, [Interest(InterestKind.KEYWORD, "quantization")], T0)
    store.subscribers.record_feedback(b, "2401.00001", 1, T0)
    day = T0.date()
    assert store.sends.claim(a, day - timedelta(days=1), "<a@x>", T0)
    store.sends.mark_sent(a, day - timedelta(days=1), "<a@x>", ["2401.00002"], 1, T1)
    ids = [a, *range(10_000_000, 10_070_000), c, b, a]  # a in the first run and the last
    interests = store.subscribers.interests_for_many(ids)
    assert {sid: [i.value for i in got] for sid, got in interests.items()} == {
        a: ["pruning"],
        c: ["quantization"],
    }
    assert [f.paper_id for f in store.subscribers.feedback_for_many(ids)[b]] == ["2401.00001"]
    assert store.sends.sent_paper_ids(ids) == {a: {"2401.00002"}}
    assert store.sends.last_sent_dates(day, ids) == {a: day - timedelta(days=1)}


def test_papers_received_among_the_candidates_are_found_wherever_they_are_in_the_history(
    store: Database,
) -> None:
    """`sent_paper_ids(among=...)` reads the rows sent since the recent candidates were first
    seen (a day's slack for clocks), and finds the others (first seen months before the
    newest, or not known when) by their quoted ID in the older rows, among them IDs holding
    LIKE's wildcards, a quote and a backslash; on both backends."""
    sub = store.subscribers.add("hist@example.org", T0, status=SubscriberStatus.ACTIVE)[0]
    other = store.subscribers.add("other@example.org", T0, status=SubscriberStatus.ACTIVE)[0]
    day = date(2026, 12, 10)

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    odd = 'we"b\\1'
    seen = {
        "2611.00001": at("2026-11-28 06:00"),
        "2611.00002": at("2026-11-28 06:00"),
        "2612.00003": at("2026-12-04 06:00"),  # its announcement estimated before its ID month
        "2612.00004": at("2026-12-09 06:00"),
        "2612.00005": at("2026-12-09 06:00"),
        "1706.03762": at("2025-03-01 06:00"),  # stored long ago, listed by Hugging Face again
        "web_100%": None,  # first seen: not known
        odd: None,
        "web_1000": None,
    }
    history = [  # (subscriber, digest date, sent at, papers, accepted by the server)
        (sub.id, "2026-11-30", "2026-11-30 07:00", ["2611.00001", "2610.00009"], True),
        (sub.id, "2026-11-27", "2026-11-27 07:00", ["2611.00002"], True),  # clocks: slack
        (sub.id, "2026-11-24", "2026-12-05 07:00", ["2612.00003"], True),  # a late send
        (sub.id, "2025-03-02", "2025-03-02 07:00", ["1706.03762", "2502.00005"], True),
        (sub.id, "2024-06-01", "2024-06-01 07:00", ["web_100%"], True),
        (sub.id, "2024-06-02", "2024-06-02 07:00", [odd], True),
        (sub.id, "2023-01-05", "2023-01-05 07:00", ["2301.00077"], True),
        (sub.id, "2026-12-08", "2026-12-08 07:00", ["2612.00004"], False),  # refused
        (sub.id, "2026-12-10", "2026-12-10 07:00", ["2612.00005"], True),  # being rebuilt
        # Sent before the paper was first seen: no real row can be; it shows the bound holds.
        (sub.id, "2026-11-01", "2026-11-01 07:00", ["2612.00004"], True),
        (other.id, "2026-11-29", "2026-11-29 07:00", ["2611.00001"], True),
    ]
    for sid, when, sent_at, pids, accepted in history:
        digest_day, now = date.fromisoformat(when), at(sent_at)
        assert store.sends.claim(sid, digest_day, f"<{sid}.{when}@x>", now)
        if accepted:
            store.sends.mark_sent(sid, digest_day, f"<{sid}.{when}@x>", pids, 1, now)
        else:
            store.sends.mark_failed(sid, digest_day, "550 no", 1, now)
    ids = [sub.id, other.id]
    want = {
        sub.id: {"2611.00001", "2611.00002", "2612.00003", "1706.03762", "web_100%", odd},
        other.id: {"2611.00001"},
    }
    assert store.sends.sent_paper_ids(ids, before=day, among=seen) == want
    everything = store.sends.sent_paper_ids(ids, before=day)
    assert {k: v & set(seen) for k, v in everything.items()} == {
        sub.id: want[sub.id] | {"2612.00004"},
        other.id: want[other.id],
    }
    recent = {p: t for p, t in seen.items() if t and t.year == 2026}
    assert store.sends.sent_paper_ids(ids, before=day, among=recent) == {
        sub.id: {"2611.00001", "2611.00002", "2612.00003"},
        other.id: {"2611.00001"},
    }
    assert store.sends.sent_paper_ids(before=day, among={"2610.00009": None}) == {
        sub.id: {"2610.00009"}
    }
    # All first seen at known times, one long ago: no row sent before that is read.
    known = {"1706.03762": seen["1706.03762"], "2611.00001": seen["2611.00001"]}
    assert store.sends.sent_paper_ids(
        ids, before=day, among={**known, "2301.00077": at("2025-03-01")}
    ) == {
        sub.id: {"1706.03762", "2611.00001"},
        other.id: {"2611.00001"},
    }
    assert store.sends.sent_paper_ids(ids, before=day, among={"2301.00077": None}) == {
        sub.id: {"2301.00077"}
    }
    # A first sighting written without a time zone counts as UTC.
    naive = {"2611.00002": datetime(2026, 11, 28, 6, 0), "2611.00001": seen["2611.00001"]}
    assert store.sends.sent_paper_ids([sub.id], before=day, among=naive) == {
        sub.id: {"2611.00001", "2611.00002"}
    }
    # More old candidates than are looked up one by one: every row they may be in is read,
    # since the oldest was first seen when that is known for all of them, else every row.
    many: dict[str, datetime | None] = {f"2301.{i:05d}": at("2025-02-01") for i in range(80)}
    many.update({"2502.00005": at("2025-02-28"), "2611.00001": seen["2611.00001"]})
    assert store.sends.sent_paper_ids([sub.id], before=day, among=many) == {
        sub.id: {"2502.00005", "2611.00001"}
    }
    many = {**{f"x{i}": None for i in range(80)}, odd: None, "2301.00077": at("2025-03-01")}
    assert store.sends.sent_paper_ids([sub.id], before=day, among=many) == {
        sub.id: {odd, "2301.00077"}
    }
    # The statement binds the subscribers' IDs besides its own bounds and patterns: no more
    # than SQLite's lowest limit (999 before 3.32) in all.
    if isinstance(store.conn, sqlite3.Connection):
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    lookups = {**{f"y{i}": at("2024-01-01") for i in range(63)}, **known}
    crowd = [*range(10_000_000, 10_001_500), sub.id, other.id]
    assert store.sends.sent_paper_ids(crowd, before=day, among=lookups) == {
        sub.id: {"1706.03762", "2611.00001"},
        other.id: {"2611.00001"},
    }
    assert store.sends.last_sent_dates(day, crowd) == {
        sub.id: date(2026, 11, 30),
        other.id: date(2026, 11, 29),
    }
    store.upvotes.record([Paper(id="2611.00001", upvotes=7)], date(2026, 11, 28))
    papers = [*(f"z{i}" for i in range(1500)), "2611.00001"]
    assert store.upvotes.history(papers, until=day) == {"2611.00001": [(date(2026, 11, 28), 7)]}
    with pytest.raises(ValueError, match="no room"):
        next(in_chunks([1], others=999))
    assert store.sends.sent_paper_ids([sub.id], before=day, among={}) == {}


def test_the_ledger_is_indexed_by_subscriber_and_send_time(store: Database) -> None:
    """Migration 8: the no-repeat rule reads a reader's rows since a time through it."""
    if isinstance(store.conn, sqlite3.Connection):
        sql = "SELECT sql FROM sqlite_master WHERE name = 'idx_sends_subscriber_sent'"
    else:
        sql = "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_sends_subscriber_sent'"
    (definition,) = store.conn.execute(sql).fetchone()
    assert "sends" in definition and "(subscriber_id, sent_at)" in definition


def test_a_bounce_that_fails_takes_the_permanent_failure_back_with_it(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "[smtp]\nbounce_after = 1\n")
    with Database(cfg.database_path) as store:
        sub, _ = store.subscribers.add("el@example.org", T0, status=SubscriberStatus.ACTIVE)
        assert store.sends.claim(sub.id, T0.date(), "<m@example.org>", T0)
        store.conn.execute(  # the status change fails inside SQLite, after the failure is written
            "CREATE TRIGGER no_bounce BEFORE UPDATE OF status ON subscribers"
            " WHEN NEW.status = 'bounced' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
        with pytest.raises(sqlite3.IntegrityError, match="disk full"):
            ledger_for(store, cfg, lambda: T1).failed(sub, T0.date(), "550 no such user", 1)
        send = store.sends.get(sub.id, T0.date())
        assert send is not None and send.status == SendStatus.CLAIMED and send.error == ""
        hard = store.conn.execute("SELECT hard_failures FROM subscribers").fetchone()[0]
        assert hard == 0 and store.subscribers.get(sub.id).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
