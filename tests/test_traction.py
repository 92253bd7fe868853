"""Papers that gain traction after their first day: the rule, the upvote history the Hugging
Face fetch writes (recorded answers at the transport), and the pick with its reason in the
e-mail a real SMTP server received."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from newsletter.config import ConfigError
from newsletter.models import InterestKind
from newsletter.ranking.traction import Rise, find_rising
from newsletter.sources.fetch import Fetcher
from newsletter.store import Database, schema
from tests.conftest import SMTPSink, fixture_bytes, make_config
from tests.interest_support import (
    NOW,
    add_reader,
    invoke,
    paper,
    store_of,
    texts_by_recipient,
    unwrap,
    write_config,
)

DAY = date(2026, 11, 24)
YESTERDAY, BEFORE = DAY - timedelta(days=1), DAY - timedelta(days=2)


def test_the_rule_for_a_late_rise() -> None:
    history = {
        "rose": [(BEFORE, 3), (YESTERDAY, 8), (DAY, 120)],
        "rose_earlier": [(BEFORE, 5), (YESTERDAY, 90)],  # latest count from yesterday: still news
        "hot_from_the_start": [(YESTERDAY, 200), (DAY, 260)],
        "one_sighting": [(DAY, 300)],
        "quiet": [(YESTERDAY, 8), (DAY, 49)],
        "stale": [(DAY - timedelta(days=5), 1), (BEFORE, 80)],
        "future": [(YESTERDAY, 1), (DAY + timedelta(days=1), 500)],
        # Crossed yesterday, counted again today: still news, from its last quiet count.
        "crossed_yesterday": [(BEFORE, 4), (YESTERDAY, 70), (DAY, 95)],
        # Crossed long ago (a backfill counts old papers again): no news.
        "crossed_last_week": [(DAY - timedelta(days=8), 8), (BEFORE, 300), (DAY, 302)],
        "falling_back": [(BEFORE, 8), (YESTERDAY, 200), (DAY, 60)],
    }
    got = find_rising(history, DAY, 50)
    assert got == {
        "rose": Rise(120, 8, YESTERDAY),
        "rose_earlier": Rise(90, 5, BEFORE),
        "crossed_yesterday": Rise(95, 4, BEFORE),
    }
    assert got["rose"].figure(DAY) == "▲ 120, up from 8 yesterday"
    assert got["rose_earlier"].figure(DAY) == "▲ 90, up from 5 on Nov 22"
    assert find_rising(history, DAY, 0) == {}  # 0 turns it off


def test_the_threshold_is_an_operator_setting(tmp_path: Path) -> None:
    assert make_config(tmp_path).digest.traction_threshold == 50
    cfg = make_config(tmp_path, "[digest]\ntraction_threshold = 200\n")
    assert cfg.digest.traction_threshold == 200
    with pytest.raises(ConfigError, match=r"digest\.traction_threshold cannot be negative"):
        make_config(tmp_path, "[digest]\ntraction_threshold = -1\n")


def test_the_history_table_is_a_migration_that_may_run_again(tmp_path: Path) -> None:
    with Database(tmp_path / "n.db") as store:
        assert store.schema_version == len(schema.MIGRATIONS)
        again = schema.Migrator(store.conn, store.dialect)
        schema._m6_upvote_history(again)  # IF NOT EXISTS: harmless under another number
        cols = [r[1] for r in store.conn.execute("PRAGMA table_info(upvote_history)")]
    assert cols == ["paper_id", "day", "upvotes"]


def hf_answer(upvotes: dict[str, int]) -> httpx.MockTransport:
    items = json.loads(fixture_bytes("huggingface/daily_papers_2items_2026-08_TRIMMED.json"))
    for item in items:
        item["paper"]["upvotes"] = upvotes[item["paper"]["id"]]
    body = json.dumps(items).encode()
    return httpx.MockTransport(lambda request: httpx.Response(200, content=body))


def test_each_hugging_face_fetch_records_the_days_counts(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    first = datetime(2026, 8, 18, 9, 0, tzinfo=UTC)
    with Database(cfg.database_path) as store:
        for now, counts in (
            (first, {"2608.09888": 700, "2608.15089": 8}),
            (first + timedelta(hours=5), {"2608.09888": 781, "2608.15089": 12}),  # same day
            (first + timedelta(days=1), {"2608.09888": 790, "2608.15089": 447}),
        ):
            Fetcher(store, cfg, now, hf_answer(counts), lambda s: None).today(
                now.date(), sources=["huggingface"]
            )
        history = store.upvotes.history(["2608.09888", "2608.15089"], until=date(2026, 8, 19))
        stored = store.papers.get("2608.15089")
    assert history == {
        "2608.09888": [(date(2026, 8, 18), 781), (date(2026, 8, 19), 790)],
        "2608.15089": [(date(2026, 8, 18), 12), (date(2026, 8, 19), 447)],
    }
    assert stored is not None and stored.upvotes == 447


def test_a_paper_that_rose_after_its_first_day_reaches_a_reader_with_the_reason(
    tmp_path: Path, smtp_server: SMTPSink
) -> None:
    config = write_config(tmp_path, smtp_server.port)
    with store_of(config) as store:
        rose = paper("2611.00001", "Sparse attention for long context models", YESTERDAY)
        quiet = paper("2611.00002", "Attention sinks in long context models", YESTERDAY)
        store.papers.upsert([rose, quiet], NOW)
        store.upvotes.record([paper(rose.id, "", YESTERDAY, upvotes=8)], YESTERDAY)
        store.upvotes.record([paper(quiet.id, "", YESTERDAY, upvotes=9)], YESTERDAY)
        store.papers.upsert([paper(rose.id, rose.title, YESTERDAY, upvotes=120)], NOW)
        store.upvotes.record([paper(rose.id, "", DAY, upvotes=120)], DAY)
        store.upvotes.record([paper(quiet.id, "", DAY, upvotes=11)], DAY)
        interest = [(InterestKind.KEYWORD, "long context")]
        seen = add_reader(store, "ann@example.org", interest)
        add_reader(store, "bob@example.org", interest)
        # Ann had yesterday's digest, with neither paper in it.
        store.sends.claim(seen, YESTERDAY, "<y@test>", NOW)
        store.sends.mark_sent(seen, YESTERDAY, "<y@test>", ["2511.00009"], 1, NOW)
    result = invoke(config, "send", "--date", DAY.isoformat())
    assert result.exit_code == 0, result.output
    got = {k: unwrap(v) for k, v in texts_by_recipient(smtp_server).items()}
    ann, bob = got["ann@example.org"], got["bob@example.org"]
    assert "Sparse attention for long context models" in ann
    assert "▲ 120, up from 8 yesterday" in ann
    why = ann.split("Why:", 1)[1].split(" arXiv: ", 1)[0]
    assert why.count("▲") == 1, why  # the rise says the count; it is not shown twice
    assert "Attention sinks" not in ann  # dated before her last digest, and no rise
    # Bob never had a digest: both are new to him; the risen one says so too.
    assert "Attention sinks" in bob and "▲ 120, up from 8 yesterday" in bob
