"""`newsletter status` on a real SQLite file seeded through store methods."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.models import Paper, SubscriberStatus
from newsletter.store import Database


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A config file plus a database with one of everything `status` reports."""
    config = tmp_path / "config.toml"
    config.write_text('[storage]\ndatabase = "data/nl.db"\n', encoding="utf-8")
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo("America/New_York")).date()
    yesterday = today - timedelta(days=1)
    with Database(tmp_path / "data" / "nl.db") as store:
        ids = {}
        for email, status in [
            ("a1@example.org", SubscriberStatus.ACTIVE),
            ("a2@example.org", SubscriberStatus.ACTIVE),
            ("a3@example.org", SubscriberStatus.ACTIVE),
            ("a4@example.org", SubscriberStatus.ACTIVE),
            ("p@example.org", SubscriberStatus.PENDING),
            ("z@example.org", SubscriberStatus.PAUSED),
            ("u@example.org", SubscriberStatus.UNSUBSCRIBED),
        ]:
            ids[email] = store.subscribers.add(email, now, status=status)[0].id
        store.papers.upsert(
            [
                Paper(id="2611.00001", title="A", announced=today, sources=("arxiv_rss",)),
                Paper(id="2611.00002", title="B", announced=today, sources=("arxiv_rss",)),
                Paper(
                    id="2611.00003",
                    title="C",
                    announced=today,
                    hf_date=today,
                    upvotes=5,
                    sources=("arxiv_rss", "huggingface"),
                ),
                Paper(id="2611.00004", title="D", announced=yesterday, sources=("arxiv_rss",)),
            ],
            now,
        )
        run = store.runs.start("fetch", now - timedelta(minutes=5))
        store.runs.finish(run, "ok", "arxiv_rss 3 new · huggingface 1 updated", now)
        run = store.runs.start("send", now - timedelta(minutes=2))
        store.runs.finish(run, "failed", "sent 1 · retry 1 · failed 1", now)
        store.runs.record_fetch_success(
            "https://rss.arxiv.org/rss/cs.LG",
            "arxiv_rss",
            now,
            etag='"x"',
            last_modified=None,
            count=3,
        )
        store.runs.record_fetch_error(
            "https://huggingface.co/api/daily_papers?date=x", "huggingface", "HTTP 503", now
        )
        # The ledger: sent, retry (451), failed (550), a claim left by a crashed run.
        a1, a2, a3, a4 = (ids[f"a{i}@example.org"] for i in range(1, 5))
        for sid in (a1, a2, a3):
            assert store.sends.claim(sid, today, f"<{sid}@test>", now)
        store.sends.mark_sent(a1, today, f"<{a1}@test>", ["2611.00001"], 1, now)
        store.sends.mark_retry(a2, today, "451 4.7.1 try again later", 2, now)
        store.sends.mark_failed(a3, today, "550 5.1.1 no such user", 1, now)
        assert store.sends.claim(a4, today, f"<{a4}@test>", now - timedelta(hours=1))
        bounced, _ = store.subscribers.add("gone@example.org", now)
        store.sends.claim(bounced.id, yesterday, "<gone@test>", now)
        store.sends.mark_failed(bounced.id, yesterday, "550 mailbox unavailable", 1, now)
        store.subscribers.set_status(bounced.id, SubscriberStatus.BOUNCED, now)
    return config


def test_status_json_has_the_counts(seeded: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(seeded), "status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["subscribers"] == {
        "pending": 1,
        "active": 4,
        "paused": 1,
        "unsubscribed": 1,
        "bounced": 1,
    }
    assert data["papers"]["by_source"] == {"arxiv_rss": 3, "huggingface": 1}
    assert data["papers"]["total_stored"] == 4
    counts = data["counts"]
    assert counts["subscribers"] == 8 and counts["active"] == 4
    assert counts["papers_today"] == 4
    assert (counts["retry"], counts["stale_claims"], counts["failed"], counts["bounced"]) == (
        1,
        1,
        2,
        1,
    )
    assert [r["email"] for r in data["retry"]] == ["a2@example.org"]
    assert data["retry"][0]["last_error"] == "451 4.7.1 try again later"
    assert [r["email"] for r in data["stale_claims"]] == ["a4@example.org"]
    assert {r["email"] for r in data["failed"]} == {"a3@example.org", "gone@example.org"}
    assert data["bounced"][0]["email"] == "gone@example.org"
    assert data["bounced"][0]["last_error"] == "550 mailbox unavailable"
    assert data["last_runs"]["fetch"]["outcome"] == "ok"
    assert data["last_runs"]["send"]["summary"] == "sent 1 · retry 1 · failed 1"
    sources = {s["source"]: s for s in data["fetch_state"]}
    assert sources["arxiv_rss"]["last_count"] == 3 and sources["arxiv_rss"]["last_error"] is None
    assert sources["huggingface"]["last_error"] == "HTTP 503"
    assert sources["huggingface"]["last_success"] is None
    assert data["healthy"] is False
    assert "huggingface fetch failing: HTTP 503" in data["problems"]
    assert any(
        p.startswith("last send run failed at ") and p.endswith(": sent 1 · retry 1 · failed 1")
        for p in data["problems"]
    )


def test_status_text_is_an_aligned_block(seeded: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(seeded), "status"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Subscribers: 8 — pending 1 · active 4 · paused 1 · unsubscribed 1 · bounced 1" in out
    assert "(arxiv_rss 3, huggingface 1)" in out
    assert "Awaiting retry: 1" in out and "451 4.7.1 try again later" in out
    assert "Failed permanently: 2" in out
    assert "Bounced addresses: 1" in out and "gone@example.org" in out
    runs = [line for line in out.splitlines() if line.startswith(("  fetch ", "  send "))]
    assert len(runs) == 2
    # Columns line up: the outcome column starts at the same offset on both rows.
    assert runs[0].index("ok") == runs[1].index("failed")


def test_status_check_exits_2_on_problems_and_0_when_healthy(seeded: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(seeded), "status", "--check", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["healthy"] is False

    fresh = tmp_path / "fresh.toml"
    fresh.write_text('[storage]\ndatabase = "fresh.db"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(fresh), "status", "--check", "--json"])
    assert result.exit_code == 2, result.output
    data = json.loads(result.output)
    assert data["counts"]["subscribers"] == 0
    assert data["last_runs"] == {"fetch": None, "send": None}
    assert data["problems"] == ["no fetch has run yet: run `newsletter fetch` or start the daemon"]

    now = datetime.now(UTC)
    with Database(tmp_path / "fresh.db") as store:
        run = store.runs.start("fetch", now)
        store.runs.finish(run, "ok", "fetched 0 papers", now)
        store.runs.record_fetch_success(
            "https://rss.arxiv.org/rss/cs.LG",
            "arxiv_rss",
            now,
            etag=None,
            last_modified=None,
            count=0,
        )
    result = CliRunner().invoke(cli, ["--config", str(fresh), "status", "--check"])
    assert result.exit_code == 0, result.output
    assert "Problems: none" in result.output


def test_status_without_config_is_a_clean_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = CliRunner().invoke(cli, ["--config", str(missing), "status"])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "Traceback" not in result.output
