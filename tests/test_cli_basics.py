"""The CLI through click's CliRunner, against real SQLite files and a real local HTTP server."""

from __future__ import annotations

import socket
import sqlite3
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsletter.bench.fetch import serve, synthetic_feed
from newsletter.cli import cli
from newsletter.cli.base import database_message
from newsletter.config import EXAMPLE_CONFIG, load_config
from newsletter.models import Paper
from newsletter.store import Database
from tests.conftest import SECRET, fixture_bytes

ENV = {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_CONFIG": ""}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWSLETTER_CONFIG", raising=False)
    return tmp_path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=ENV, catch_exceptions=False)


def init(workdir: Path) -> Path:
    result = invoke("init")
    assert result.exit_code == 0, result.output
    return workdir / "config.toml"


def point_sources_at(config: Path, base: str) -> None:
    text = config.read_text()
    text = text.replace('"https://rss.arxiv.org/rss"', f'"{base}/rss"')
    text = text.replace('"https://huggingface.co/api/daily_papers"', f'"{base}/api/daily_papers"')
    config.write_text(text)


def test_init_writes_config_and_database(workdir: Path) -> None:
    result = invoke("init")
    assert result.exit_code == 0
    config = workdir / "config.toml"
    assert config.read_text() == EXAMPLE_CONFIG.read_text()
    db = workdir / "data" / "newsletter.db"
    assert db.exists() and f"database ready: {db}" in result.output
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert {"papers", "subscribers", "interests", "sends", "fetch_state", "runs"} <= tables
    assert version >= 1
    load_config(str(config))  # the written file is a valid config
    config.write_text(config.read_text() + "\n# mine\n")
    again = invoke("init")
    assert again.exit_code == 0 and "keeping it" in again.output
    assert config.read_text().endswith("# mine\n")


def test_subscribe_rejects_a_bad_address_without_traceback(workdir: Path) -> None:
    init(workdir)
    result = CliRunner().invoke(cli, ["subscribe", "not-an-address"], env=ENV)
    assert result.exit_code != 0
    assert "'not-an-address' is not a valid e-mail address" in result.output
    assert "@" in result.output  # says what is missing
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_subscribe_twice_is_idempotent_and_says_so(workdir: Path) -> None:
    init(workdir)
    first = invoke("subscribe", "Ada@Example.org", "--interest", "KV cache", "--confirmed")
    assert first.exit_code == 0 and "subscribed Ada@example.org (active)" in first.output
    second = invoke("subscribe", "ada@EXAMPLE.org", "--interest", "KV cache")
    assert second.exit_code == 0
    assert "already subscribed (active); nothing changed." in second.output
    third = invoke("subscribe", "ada@example.org", "--interest", "diffusion")
    assert "nothing changed except 1 new interest(s) added." in third.output
    with Database(workdir / "data" / "newsletter.db") as store:
        (sub,) = store.subscribers.list()
        assert sub.email == "Ada@example.org"
        assert [i.value for i in store.subscribers.interests_for(sub.id)] == [
            "KV cache",
            "diffusion",
        ]
    listing = invoke("subscribers")
    assert "Ada@example.org" in listing.output and "1 subscriber(s)" in listing.output


def test_an_unsubscribed_address_is_not_silently_resubscribed(workdir: Path) -> None:
    init(workdir)
    invoke("subscribe", "bo@example.org", "--confirmed")
    assert "unsubscribed bo@example.org." in invoke("unsubscribe", "bo@example.org").output
    again = invoke("subscribe", "bo@example.org")
    assert "is unsubscribed; nothing changed" in again.output
    with Database(workdir / "data" / "newsletter.db") as store:
        assert store.subscribers.list()[0].status == "unsubscribed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Eve\r\nBcc: x@evil.example"], "--name"),
        (["--category", "machine learning"], "not an arXiv category"),
        (["--interest", "  "], "must not be empty"),
        (["--like", "nope"], "not an arXiv identifier"),
        (["--timezone", "Mars/Olympus"], "not an IANA timezone"),
    ],
)
def test_subscribe_option_errors(workdir: Path, args: list[str], message: str) -> None:
    init(workdir)
    result = CliRunner().invoke(cli, ["subscribe", "eve@example.org", *args], env=ENV)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_a_bad_config_key_is_one_clear_error(workdir: Path) -> None:
    Path("config.toml").write_text('[sources]\narxiv_categories = "cs.LG"\n')
    result = CliRunner().invoke(cli, ["fetch"], env=ENV)
    assert result.exit_code == 1
    assert "sources.arxiv_categories must be a list of strings" in result.output
    assert "Traceback" not in result.output


def test_fetch_option_errors(workdir: Path) -> None:
    init(workdir)
    result = CliRunner().invoke(cli, ["fetch", "--ids", "2401.01234,abc"], env=ENV)
    assert result.exit_code == 1 and "'abc' is not an arXiv ID" in result.output
    result = CliRunner().invoke(cli, ["fetch", "--backfill", "0"], env=ENV)
    assert result.exit_code == 2 and "--backfill" in result.output
    result = CliRunner().invoke(cli, ["fetch", "--date", "yesterday"], env=ENV)
    assert result.exit_code == 2 and "use YYYY-MM-DD" in result.output


def _rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM papers ORDER BY id").fetchall()


def test_init_and_fetch_a_2000_item_day_from_a_local_server(workdir: Path) -> None:
    feed = synthetic_feed(fixture_bytes("arxiv_rss/rss_quant-ph_2025-04-28.xml"))
    routes = {"/rss/cs.LG+cs.CL+cs.CV": feed, "/api/daily_papers": b"[]"}
    with serve(routes) as base:
        point_sources_at(init(workdir), base)
        first = invoke("fetch")
        assert first.exit_code == 0, first.output
        db = workdir / "data" / "newsletter.db"
        rows = _rows(db)
        second = invoke("fetch")
    assert "fetched 2,050 papers: 2,050 new · 0 updated · 0 unchanged" in first.output
    assert "arxiv_rss: 2,050 for 2025-04-28" in first.output
    assert len(rows) == 2050  # every new item (2,000) and cross-list (50); no replacements
    with Database(db) as store:
        new = [p for p in store.papers.search(limit=5000) if p.announce_type == "new"]
        assert len(new) == 2000
        p = store.papers.get("2504.20007")
        assert p is not None and p.authors == ("Ann Lee7", "Bo Chen", "Cy Diaz")
        assert p.title == "Synthetic paper 7: efficient attention & KV caches"
        assert store.papers.get("2504.22099") is None  # a replacement
        (run,) = store.runs.last("fetch", limit=1)
        assert run.outcome == "ok"
    # the second fetch of the same feed adds nothing and changes nothing
    assert "fetched 2,050 papers: 0 new · 0 updated · 2,050 unchanged" in second.output
    assert _rows(db) == rows
    listing = invoke("papers", "--search", "Synthetic paper 7:")
    assert listing.output.splitlines()[0].split()[:3] == ["2504.20007", "2025-04-28", "cs.CL"]
    assert "1 paper(s)" in listing.output


def test_papers_shows_escape_sequences_in_stored_titles_as_text(workdir: Path) -> None:
    init(workdir)
    hostile = "\x1b]8;;https://evil.example/\x07KV cache\x1b]8;;\x07 \x1b[2J\u202eevil\x9b31m"
    with Database(workdir / "data" / "newsletter.db") as store:  # as stored before parsing
        store.papers.upsert(  # stripped them: the listing must not trust the store
            [Paper(id="2401.00001", title=hostile, categories=("cs.LG\x1b[8m",))],
            datetime(2026, 1, 5, tzinfo=UTC),
        )
    listing = invoke("papers")
    assert listing.exit_code == 0, listing.output
    assert not any(unicodedata.category(ch) in {"Cc", "Cf"} and ch != "\n" for ch in listing.output)
    line = listing.output.splitlines()[0]
    assert line.startswith("2401.00001")
    assert "cs.LG\\x1b[8m" in line
    assert "\\x1b]8;;https://evil.example/\\x07KV cache\\x1b]8;;\\x07 \\x1b[2J\\u202eevil" in line


def test_fetch_reports_a_failed_source_and_exits_nonzero_only_when_all_fail(
    workdir: Path,
) -> None:
    routes = {
        "/rss/": b"<html><body>Service Unavailable</body></html>",
        "/api/daily_papers": fixture_bytes("huggingface/daily_papers_2items_2026-08_TRIMMED.json"),
    }
    with serve(routes) as base:
        point_sources_at(init(workdir), base)
        result = CliRunner().invoke(cli, ["fetch", "--date", "2026-08-11"], env=ENV)
        assert result.exit_code == 0, result.output
        assert "arxiv_rss: FAILED (" in result.output and "sent an HTML page" in result.output
        assert "huggingface: 2 for 2026-08-11" in result.output
        only_rss = CliRunner().invoke(cli, ["fetch", "--source", "arxiv_rss"], env=ENV)
        assert only_rss.exit_code == 1 and "Traceback" not in only_rss.output


def test_empty_weekend_feed_through_the_cli(workdir: Path) -> None:
    routes = {"/rss/": fixture_bytes("arxiv_rss/rss_cs_empty_weekend_2025-04-27.xml")}
    with serve(routes) as base:
        point_sources_at(init(workdir), base)
        result = invoke("fetch", "--source", "arxiv_rss")
    assert result.exit_code == 0
    assert "arXiv announced no new papers for 2025-04-27" in result.output


def test_init_follows_the_config_option(workdir: Path) -> None:
    result = invoke("--config", "site/newsletter.toml", "init")
    assert result.exit_code == 0, result.output
    assert (workdir / "site" / "newsletter.toml").exists()
    assert (workdir / "site" / "data" / "newsletter.db").exists()
    assert not (workdir / "config.toml").exists()


def test_subscribers_marks_avoided_words_and_liked_papers(workdir: Path) -> None:
    init(workdir)
    added = invoke(
        "subscribe",
        "ada@example.org",
        "--interest",
        "KV cache",
        "--not",
        "medical imaging",
        "--confirmed",
    )
    assert added.exit_code == 0, added.output
    listing = invoke("subscribers").output
    assert "KV cache, not: medical imaging" in listing


def test_pyproject_license_is_an_spdx_string_setuptools_reads_without_warnings() -> None:
    import tomllib

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text("utf-8"))
    assert meta["project"]["license"] == "MIT"  # a table makes setuptools >= 77 warn
    assert "setuptools>=77" in meta["build-system"]["requires"]


def test_papers_search_orders_by_relevance_and_marks_cut_titles(workdir: Path) -> None:
    init(workdir)
    day = datetime(2026, 1, 5, tzinfo=UTC)
    long_title = "Diffusion transformers for video diffusion at scale, " * 3
    with Database(workdir / "data" / "newsletter.db") as store:
        store.papers.upsert(
            [
                Paper(
                    id="2401.00001",
                    title="A survey of graph methods",
                    abstract="Graphs; one aside mentions diffusion.",
                    announced=day.date(),
                ),
                Paper(
                    id="2401.00002",
                    title=long_title,
                    abstract="Diffusion models: a diffusion sampler for diffusion video.",
                    announced=day.date(),
                ),
            ],
            day,
        )
    listing = invoke("papers", "--search", "diffusion")
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert [line.split()[0] for line in lines[:2]] == ["2401.00002", "2401.00001"]
    assert "…" in lines[0] and long_title[:40] in lines[0]


def test_file_and_database_problems_are_one_line_errors(workdir: Path) -> None:
    """What an operator can get wrong on disk is said in one line, never a traceback."""

    def fails(*args: str) -> str:
        result = CliRunner().invoke(cli, list(args), env=ENV)
        assert result.exit_code in (1, 2), (args, result.output)
        assert isinstance(result.exception, SystemExit), (args, result.exception)  # not a crash
        return result.output

    (workdir / "folder").mkdir()
    assert "cannot read the config file folder: Is a directory" in fails(
        "--config", "folder", "status"
    )
    (workdir / "latin1.toml").write_bytes(b'[site]\nname = "Caf\xe9"\n')
    assert "is not UTF-8 text (byte" in fails("--config", "latin1.toml", "status")
    assert "folder is a folder: give the config file's path" in fails("init", "--path", "folder")
    config = init(workdir)
    text = config.read_text()
    config.write_text(text.replace('database = "data/newsletter.db"', 'database = "folder"'))
    assert "cannot open the database (storage.database)" in fails("papers")
    (workdir / "notes.txt").write_text("not a database\n")
    config.write_text(text.replace('database = "data/newsletter.db"', 'database = "notes.txt"'))
    assert "storage.database is not an SQLite database" in fails("status")
    config.write_text(text)
    invoke("subscribe", "ann@example.org", "--interest", "diffusion", "--confirmed")
    out = fails("preview", "ann@example.org", "--out", "notes.txt/previews")
    assert "cannot use" in out and "notes.txt" in out


def test_options_that_would_be_ignored_are_refused(workdir: Path) -> None:
    init(workdir)
    for args, words in (
        (["papers", "--limit", "0"], "x>=1"),
        (["papers", "--limit", "-1"], "x>=1"),
        (["fetch", "--ids", "2401.01234", "--source", "huggingface"], "drop --source/--date"),
        (["fetch", "--ids", "2401.01234", "--date", "2026-01-01"], "drop --source/--date"),
        (["fetch", "--backfill", "3", "--date", "2026-01-01"], "counts back from today"),
    ):
        result = CliRunner().invoke(cli, args, env=ENV)
        assert result.exit_code == 2 and words in result.output, (args, result.output)


def test_a_limited_send_says_how_many_wait_for_a_later_run(workdir: Path) -> None:
    init(workdir)
    for name in ("ann", "bob", "cy"):
        invoke("subscribe", f"{name}@example.org", "--interest", "diffusion", "--confirmed")
    result = invoke("send", "--dry-run", "--limit", "1", "--date", "2026-11-24")
    assert "2 left for a later run (--limit)" in result.output, result.output


def test_run_exits_nonzero_when_no_source_could_be_fetched(workdir: Path) -> None:
    down = b"<html><body>Service Unavailable</body></html>"
    with serve({"/rss/": down, "/api/daily_papers": down}) as base:
        point_sources_at(init(workdir), base)
        result = CliRunner().invoke(cli, ["run", "--date", "2026-08-11"], env=ENV)
    assert result.exit_code == 1, result.output
    assert "no source could be fetched" in result.output and "Traceback" not in result.output


def test_a_malformed_address_that_is_no_subscriber_says_why(workdir: Path) -> None:
    init(workdir)
    bad = CliRunner().invoke(cli, ["unsubscribe", "bad@@example.org"], env=ENV)
    assert bad.exit_code == 1
    assert "bad@@example.org is not a subscriber: 'bad@@example.org' is not a valid" in bad.output
    fine = CliRunner().invoke(cli, ["unsubscribe", "nobody@example.org"], env=ENV)
    assert fine.exit_code == 1 and fine.output.strip().endswith("is not a subscriber")


def test_serve_on_a_port_in_use_says_so_before_claiming_to_serve(workdir: Path) -> None:
    init(workdir)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(cli, ["serve", "--port", port], env=ENV)
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.output
    assert "serving" not in result.output


def test_what_sqlite_says_is_told_as_what_to_do() -> None:
    """The locked and read-only cases cannot be staged here (a 30 s busy wait; root ignores
    file modes), so their wording is checked on the errors SQLite raises for them."""
    locked = database_message(sqlite3.OperationalError("database is locked"))
    assert locked.startswith("the database is busy") and "try again" in locked
    readonly = database_message(sqlite3.OperationalError("attempt to write a readonly database"))
    assert "read-only for this user" in readonly
    assert database_message(sqlite3.DatabaseError("disk I/O error")) == (
        "database error: disk I/O error"
    )
