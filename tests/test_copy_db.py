"""`newsletter copy-db` and `newsletter migrate` against a real SQLite file and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.demo import DEMO_DAY, offline_transport
from newsletter.models import Interest, InterestKind, SubscriberStatus
from newsletter.sources.fetch import Fetcher
from newsletter.store import Database, schema
from newsletter.store.limits import Limit
from tests.conftest import make_config
from tests.test_store_ids import _first_release_file

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def _installation(tmp_path: Path) -> Path:
    """A SQLite installation with a row in every table, and a deleted subscriber's id."""
    cfg = make_config(tmp_path)
    with Database(cfg.database_path) as store:
        Fetcher(store, cfg, NOW, offline_transport()).today(DEMO_DAY)
        ada, _ = store.subscribers.add("Ada@example.org", NOW, status=SubscriberStatus.ACTIVE)
        store.subscribers.set_interests(ada.id, [Interest(InterestKind.KEYWORD, "Zoë ünal")], NOW)
        paper = store.papers.between(date(2000, 1, 1), date(2100, 1, 1))[0]
        store.subscribers.record_feedback(ada.id, paper.id, 1, NOW)
        gone, _ = store.subscribers.add("gone@example.org", NOW)
        store.subscribers.add_signup_request(ada.id, NOW, name="Ada L.")
        store.sends.claim(ada.id, DEMO_DAY, "<m1@example.org>", NOW)
        store.sends.mark_sent(ada.id, DEMO_DAY, "<m1@example.org>", [paper.id], 1, NOW)
        store.limits.acquire([Limit("subscribe:127.0.0.1", 5, 3600.0)], 1_764_000_000.25)
        store.claims.enqueue(DEMO_DAY, [ada.id], NOW)
        store.claims.heartbeat("host:1", DEMO_DAY, 1_764_000_000.5, NOW, sent=1)
        store.conn.execute("DELETE FROM subscribers WHERE id = ?", [gone.id])
    return cfg.database_path


def test_copy_db_moves_every_row_and_proves_it(tmp_path: Path, pg_url: str) -> None:
    sqlite_path = _installation(tmp_path)
    result = CliRunner().invoke(cli, ["copy-db", str(sqlite_path), pg_url])
    assert result.exit_code == 0, result.output
    assert "all verified" in result.output and "MISMATCH" not in result.output
    for table in ("papers", "subscribers", "interests", "feedback", "sends", "rate_hits"):
        assert f"{table} " in result.output
    with Database(sqlite_path) as old, Database(pg_url) as new:
        assert new.papers.count() == old.papers.count() > 0
        assert new.subscribers.list() == old.subscribers.list()
        assert new.sends.on(DEMO_DAY) == old.sends.on(DEMO_DAY)
        (ada,) = new.subscribers.list()
        assert new.subscribers.interests_for(ada.id)[0].value == "Zoë ünal"
        assert new.subscribers.get_by_email("ADA@EXAMPLE.ORG") == ada
        # The deleted subscriber's id is never handed out again.
        later, _ = new.subscribers.add("later@example.org", NOW)
        assert later.id == 3
        # Full-text search works on the copied papers.
        word = new.papers.count() and old.papers.between(date(2000, 1, 1), date(2100, 1, 1))[0]
        term = word.title.split()[0] if word else ""
        ids, total = new.papers.match(f'"{term}"')
        assert total >= 1 and word and word.id in ids


def test_copy_db_refuses_a_database_that_holds_rows(tmp_path: Path, pg_url: str) -> None:
    sqlite_path = _installation(tmp_path)
    with Database(pg_url) as target:
        target.subscribers.add("someone@example.org", NOW)
    result = CliRunner().invoke(cli, ["copy-db", str(sqlite_path), pg_url])
    assert result.exit_code == 1
    assert "already holds rows (in subscribers)" in result.output
    with Database(pg_url) as target:
        assert [s.email for s in target.subscribers.list()] == ["someone@example.org"]
        assert target.papers.count() == 0


def test_copy_db_wants_a_postgres_url(tmp_path: Path) -> None:
    sqlite_path = _installation(tmp_path)
    result = CliRunner().invoke(cli, ["copy-db", str(sqlite_path), str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "must be a postgresql:// URL" in result.output


def test_migrate_upgrades_sqlite_and_postgres(tmp_path: Path, postgres_server: Any) -> None:
    if isinstance(postgres_server, str):
        pytest.skip(postgres_server)
    pg_url = postgres_server.new_database(empty=True)
    latest = len(schema.MIGRATIONS)
    path = tmp_path / "data" / "newsletter.db"
    path.parent.mkdir()
    _first_release_file(path)
    for database, before in ((str(path), 1), (pg_url, 0)):
        config = tmp_path / "config.toml"
        config.write_text(f'[storage]\ndatabase = "{database}"\n', encoding="utf-8")
        first = CliRunner().invoke(cli, ["--config", str(config), "migrate"])
        assert first.exit_code == 0, first.output
        assert f"schema version {before} → {latest}" in first.output
        again = CliRunner().invoke(cli, ["--config", str(config), "migrate"])
        assert f"schema version {latest}, up to date" in again.output
    postgres_server.drop_database(pg_url)


def test_an_unreachable_server_is_one_clear_error_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.store import postgres

    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT", 1.0)
    url = f"postgresql://ann:hunter2@/newsletter?host={tmp_path}"  # no server listens there
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndatabase = "{url}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL at postgresql://ann:***@/newsletter" in result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output
