"""`newsletter demo`: offline, real SMTP into a Maildir, one digest per demo reader, rerunnable."""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.data import build_demo_data
from newsletter.demo import DAILY_PAPERS, FEED, READERS
from newsletter.web.app import create_app
from tests.conftest import FIXTURES


def run(tmp_path: Path) -> str:
    result = CliRunner().invoke(
        cli, ["demo", "--dir", str(tmp_path / "demo")], env={"NEWSLETTER_SECRET_KEY": ""}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_sends_one_digest_per_reader_and_reruns(tmp_path: Path) -> None:
    out = run(tmp_path)
    assert f"sent {len(READERS)} · skipped 0 already sent" in out
    demo = tmp_path / "demo"
    box = mailbox.Maildir(demo / "maildir", create=False)
    raws = [box.get_bytes(k) for k in box.iterkeys()]
    assert len(raws) == len(READERS)
    recipients = set()
    for raw in raws:
        assert max(len(line) for line in raw.splitlines()) <= 998
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith(">")
        recipients.add(msg["To"].addresses[0].addr_spec)
    assert recipients == {r.email for r in READERS}
    previews = demo / "previews"
    assert (previews / "index.html").exists()
    for reader in READERS:
        stem = reader.email.replace("@", "-").replace(".", "-")
        html = (previews / f"{stem}.html").read_text(encoding="utf-8")
        assert "<script" not in html.lower() and "arxiv.org/abs/" in html
    assert (demo / "secret.key").stat().st_mode & 0o077 == 0

    again = run(tmp_path)
    assert f"sent 0 · skipped {len(READERS)} already sent" in again
    assert "were already sent" in again
    assert len(list(box.iterkeys())) == len(READERS)


def test_demo_digests_show_a_tldr_where_hugging_face_gave_a_summary(tmp_path: Path) -> None:
    import json

    run(tmp_path)
    items = json.loads(DAILY_PAPERS.read_text(encoding="utf-8"))
    summaries = {x["paper"]["id"]: x["paper"]["ai_summary"] for x in items}
    box = mailbox.Maildir(tmp_path / "demo" / "maildir", create=False)
    shown = 0
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        html = msg.get_body(("html",)).get_content()
        for card in re.findall(r'<table role="presentation" class="card".*?</table>', html, re.S):
            pid = re.search(r"arxiv\.org/abs/([\d.]+)", card).group(1)  # type: ignore[union-attr]
            if summaries.get(pid):
                assert "TL;DR" in card, pid
                shown += 1
            else:
                assert "TL;DR" not in card, pid
    assert shown >= len(READERS)  # every reader sees at least one on average


LIGHT_HTML_BYTES = 30 * 1024  # issue 15: a digest's HTML stays far from Gmail's ~102 KB clip


def test_demo_digests_are_light_and_preview_prints_their_size(tmp_path: Path) -> None:
    """Every demo reader's digest, as `preview --all` renders it and as the demo sent it (their
    first, the welcome digest), is at most 30 KB of HTML; `preview` prints each size."""
    from newsletter.demo import DEMO_DAY

    run(tmp_path)
    demo, out = tmp_path / "demo", tmp_path / "sizes"
    args = ["preview", "--all", "--date", DEMO_DAY.isoformat(), "--out", str(out)]
    result = CliRunner().invoke(
        cli,
        ["--config", str(demo / "config.toml"), *args],
        env={"NEWSLETTER_SECRET_KEY": "", "NEWSLETTER_CONFIG": ""},
    )
    assert result.exit_code == 0, result.output
    printed = re.findall(r"^(\S+)\.html/\.txt/\.eml .*?, ([\d.]+) KB HTML", result.output, re.M)
    assert len(printed) == len(READERS), result.output
    for stem, kb in printed:
        size = len(Path(f"{stem}.html").read_bytes())
        assert kb == f"{size / 1024:.1f}", stem  # the size printed is the file's
        assert size <= LIGHT_HTML_BYTES, f"{stem}.html is {size:,} bytes"
    box = mailbox.Maildir(demo / "maildir", create=False)
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert len(html.encode()) <= LIGHT_HTML_BYTES, msg["To"]


def test_every_demo_digest_leads_with_trending_picks_that_match(tmp_path: Path) -> None:
    """Readers with interests open on 'Trending in your topics': upvoted picks that match; the
    reader without interests on the day's most trending; no section heading twice."""
    import lxml.html

    run(tmp_path)
    box = mailbox.Maildir(tmp_path / "demo" / "maildir", create=False)
    interests = {r.email: bool(r.interests) for r in READERS}
    seen = set()
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        address = msg["To"].addresses[0].addr_spec
        doc = lxml.html.document_fromstring(msg.get_body(("html",)).get_content())
        headings = [h.text_content() for h in doc.cssselect("h2.section-title")]
        assert len(headings) == len(set(headings)), (address, headings)
        first = doc.cssselect("table.card p.reason")[0].text_content()
        assert "▲" in first, (address, first)
        if interests[address]:
            assert headings[0] == "Trending in your topics", (address, headings)
            assert first.startswith(("matches: ", "like: ")), (address, first)
        else:
            assert headings[0] == "Most trending today", (address, headings)
        seen.add(address)
    assert seen == set(interests)


def test_bundled_sample_day_is_what_the_builder_makes(tmp_path: Path) -> None:
    """The committed demo files are what the builder makes from the repo's copy of the corpus."""
    assert build_demo_data.DEFAULT_CORPUS == FIXTURES / "eval" / "corpus.jsonl"
    feed, daily = build_demo_data.build(build_demo_data.DEFAULT_CORPUS, tmp_path)
    assert feed.read_bytes() == FEED.read_bytes()
    assert daily.read_bytes() == DAILY_PAPERS.read_bytes()


def test_demo_preview_shows_the_digests_that_were_sent(tmp_path: Path) -> None:
    """`make preview` (demo --preview) serves the demo day through `preview --serve`'s code:
    after the demo sent its digests, the preview shows those same digests, not the next ones."""
    import threading
    import urllib.request

    from newsletter import pipeline
    from newsletter.demo import DEMO_DAY, demo_config
    from newsletter.preview import preview_server
    from newsletter.store import Database

    run(tmp_path)
    box = mailbox.Maildir(tmp_path / "demo" / "maildir", create=False)
    sent = {}
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        sent[msg["To"].addresses[0].addr_spec] = (str(msg["Subject"]), msg["Message-ID"])
    cfg = demo_config(tmp_path / "demo")
    with Database(cfg.database_path) as store:
        previews = pipeline.preview_digests(pipeline.Context(store, cfg), DEMO_DAY)
        assert {p.subscriber.email: (p.subject, p.message_id) for p in previews} == sent
        server = preview_server(DEMO_DAY.isoformat(), lambda: previews, 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with urllib.request.urlopen(server.url) as page:
                index = page.read().decode()
            assert all(r.email in index for r in READERS)
            with urllib.request.urlopen(f"{server.url}0.html") as page:
                assert page.status == 200 and b"arxiv.org/abs/" in page.read()
        finally:
            server.shutdown()
            server.server_close()


def test_after_the_demo_the_site_shows_the_demo_day_with_counts_and_search_finds_it(
    tmp_path: Path,
) -> None:
    from newsletter.demo import DEMO_DAY, demo_config
    from tests.web_support import TestClient

    run(tmp_path)
    client = TestClient(create_app(demo_config(tmp_path / "demo")))
    home = client.get("/")
    assert home.status_code == 200 and "Tuesday 24 November 2026" in home.text
    assert DEMO_DAY.isoformat() in home.text
    assert re.search(r"▲ [1-9]", home.text) and "Hugging Face" in home.text
    first = re.search(r'<h2 class="paper-title"><a href="/paper/([^"]+)">([^<]+)</a>', home.text)
    assert first is not None
    words = " ".join(first.group(2).split()[:4])
    found = client.get("/search", params={"q": words})
    assert found.status_code == 200 and f'id="p-{first.group(1)}"' in found.text
