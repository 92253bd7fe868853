"""`newsletter preview`: files and a local index of the digests as they would be sent, sending
and recording nothing. Real SQLite file, real ranker, real HTTP server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import http.client
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner, Result

from newsletter import pipeline
from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.delivery import message_id_for
from newsletter.models import Interest, InterestKind, SubscriberStatus
from newsletter.preview import preview_server
from newsletter.render.renderer import MAX_HTML_BYTES
from newsletter.store import Database
from tests.conftest import SECRET, free_port
from tests.render_factory import DAY, corpus, paper

ENV = {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_CONFIG": ""}
NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
READERS = {
    "kv@example.org": ["KV cache", "quantization"],
    "seg@example.org": ["segmentation", "vision transformer"],
    "cost@example.org": ["cost efficient serving", "sentiment analysis"],
}
CONFIG = """
[storage]
data_dir = "data"
database = "data/newsletter.db"
[site]
base_url = "https://digest.example.org"
name = "Preview Digest"
operator_name = "Example Lab"
postal_address = "1 Example Road, Cambridge"
[email]
from_address = "digest@example.org"
message_id_domain = "digest.example.org"
"""


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    cfg = load_config(str(path))
    with Database(cfg.database_path) as store:
        rows = corpus()
        store.papers.upsert([paper(i, rows[i]) for i in range(len(rows))], NOW)
        for address, wanted in READERS.items():
            sub, _ = store.subscribers.add(address, NOW, status=SubscriberStatus.ACTIVE)
            store.subscribers.add_interests(
                sub.id, [Interest(InterestKind.KEYWORD, w) for w in wanted], NOW
            )
        store.subscribers.add("gone@example.org", NOW, status=SubscriberStatus.UNSUBSCRIBED)
    return path


def stem(address: str) -> str:
    """The file name `preview --out` and the demo give a reader's digest: 'kv-example-org'."""
    return address.replace("@", "-").replace(".", "-")


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], env=ENV)


def test_preview_all_writes_html_text_and_eml_and_records_nothing(
    config_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "previews"
    result = invoke(config_path, "preview", "--all", "--date", DAY.isoformat(), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "nothing was sent or recorded" in result.output
    cfg = load_config(str(config_path))
    with Database(cfg.database_path) as store:
        assert store.sends.on(DAY) == []
        subs = {s.email: s for s in store.subscribers.list()}
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem(a)}.{ext}" for a in READERS for ext in ("eml", "html", "txt")
    )
    for address in READERS:
        html = (out / f"{stem(address)}.html").read_text(encoding="utf-8")
        assert len(html.encode()) < MAX_HTML_BYTES
        doc = lxml.html.document_fromstring(html)
        assert not doc.cssselect("script")
        cards = doc.cssselect("table.card")
        assert cards and all(c.get("style") for c in cards)
        assert all(a.get("href").startswith("https://") for a in doc.iter("a"))
        text = (out / f"{stem(address)}.txt").read_text(encoding="utf-8")
        raw = (out / f"{stem(address)}.eml").read_bytes()
        assert b"\r\n" in raw and max(len(line) for line in raw.split(b"\r\n")) <= 998
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["To"].addresses[0].addr_spec == address  # type: ignore[union-attr]
        assert msg["Message-ID"] == message_id_for(cfg, subs[address].id, DAY)
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        parts = [p.get_content().replace("\r\n", "\n") for p in msg.iter_parts()]  # type: ignore[attr-defined]
        assert parts == [text.rstrip("\n") + "\n", html.rstrip("\n") + "\n"]


def test_preview_one_address_and_bad_input(config_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "one"
    result = invoke(config_path, "preview", "KV@example.org", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "kv-example-org.eml",
        "kv-example-org.html",
        "kv-example-org.txt",
    ]  # the names the demo's previews have
    missing = invoke(config_path, "preview", "nobody@example.org", "--out", str(out))
    assert missing.exit_code == 1 and "nobody@example.org is not a subscriber" in missing.output
    neither = invoke(config_path, "preview")
    assert neither.exit_code == 2 and "EMAIL, --all" in neither.output
    bad_date = invoke(config_path, "preview", "--all", "--date", "26/11/2026")
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output


def test_two_addresses_with_one_file_name_do_not_overwrite(
    config_path: Path, tmp_path: Path
) -> None:
    cfg = load_config(str(config_path))
    with Database(cfg.database_path) as store:
        ids = []
        for address in ("k.v@example.org", "k-v@example.org"):
            sub, _ = store.subscribers.add(address, NOW, status=SubscriberStatus.ACTIVE)
            store.subscribers.add_interests(sub.id, [Interest(InterestKind.KEYWORD, "KV")], NOW)
            ids.append(sub.id)
    out = tmp_path / "clash"
    result = invoke(config_path, "preview", "--all", "--date", DAY.isoformat(), "--out", str(out))
    assert result.exit_code == 0, result.output
    for name, address in (("k-v-example-org", "k.v"), (f"k-v-example-org-{ids[1]}", "k-v")):
        raw = (out / f"{name}.eml").read_bytes()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["To"].addresses[0].addr_spec == f"{address}@example.org"  # type: ignore[union-attr]
        assert f"{out / name}.html/.txt/.eml" in result.output


@pytest.fixture
def server(config_path: Path) -> Iterator[str]:
    cfg = load_config(str(config_path))
    store = Database(cfg.database_path)
    httpd = preview_server(
        DAY.isoformat(),
        lambda: pipeline.preview_digests(pipeline.Context(store, cfg, clock=lambda: NOW), DAY),
        free_port(),
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.url
    finally:
        httpd.shutdown()
        httpd.server_close()
        store.close()


def test_preview_server_lists_and_serves_digests(server: str) -> None:
    with urllib.request.urlopen(server) as resp:
        index = resp.read().decode()
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    doc = lxml.html.document_fromstring(index)
    rows = doc.cssselect("table tr")[1:]
    assert {r.cssselect("td")[0].text_content() for r in rows} == set(READERS)
    href = rows[0].cssselect("a")[0].get("href")
    assert href.startswith(urllib.parse.urlsplit(server).path)
    with urllib.request.urlopen(urllib.parse.urljoin(server, href)) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        body = resp.read()
        page = lxml.html.document_fromstring(body.decode())
    assert rows[0].cssselect("td")[3].text_content() == f"{len(body) / 1024:.1f} KB"  # bytes
    assert page.cssselect("table.card")
    with urllib.request.urlopen(
        urllib.parse.urljoin(server, href.replace(".html", ".eml"))
    ) as resp:
        assert resp.headers["Content-Type"].startswith("message/rfc822")
        assert b"multipart/alternative" in resp.read()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(server + "99.html")
    assert err.value.code == 404


def _get(url: str, host: str | None = None) -> tuple[int, bytes]:
    """GET `url` with the Host header `host` (default: the URL's; "": none at all), as a
    DNS-rebinding page's requests would carry the attacker's host name."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.putrequest("GET", parts.path or "/", skip_host=host is not None)
        if host:
            conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_preview_server_answers_only_localhost_and_its_secret_path(server: str) -> None:
    parts = urllib.parse.urlsplit(server)
    port, secret_path = parts.port, parts.path
    assert port is not None and len(secret_path.strip("/")) >= 20  # random, not guessable
    status, body = _get(server)
    assert status == 200 and b"kv@example.org" in body
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost", f"[::1]:{port}"):
        assert _get(server, host)[0] == 200, host
    # A rebinding page's requests name its own host; a wrong port is someone else's server.
    for host in (f"attacker.example:{port}", "attacker.example", f"localhost:{port + 1}", ""):
        status, body = _get(server, host)
        assert status == 403 and b"kv@example.org" not in body, host
    for path in ("/", "/index.html", "/0.html", "/0.eml", secret_path[:-3] + "/"):
        status, body = _get(f"http://127.0.0.1:{port}{path}")
        assert status == 404 and b"@example.org" not in body, path


def test_previews_come_a_chunk_at_a_time_and_are_the_same_as_all_at_once(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`preview --all` on a large list must not hold every digest: `iter_previews` ranks a
    chunk of subscribers at a time and lets each preview go once it is used. The messages
    are the ones a single pass gives, byte for byte, the welcome digest included (a reader
    with no earlier digest gets it, whichever chunk they are in)."""
    import gc
    import weakref

    from newsletter import tokens

    # the links' signing time, in whole seconds: both passes must sign in the same one
    monkeypatch.setattr(tokens._CLOCK, "get_timestamp", lambda: 1_795_000_000)
    cfg = load_config(str(config_path))
    with Database(cfg.database_path) as store:
        seg = next(s for s in store.subscribers.list() if s.email == "seg@example.org")
        earlier = DAY.replace(day=DAY.day - 1)
        assert store.sends.claim(seg.id, earlier, "<old@digest.example.org>", NOW)
        store.sends.mark_sent(seg.id, earlier, "<old@digest.example.org>", [], 1, NOW)
        ctx = pipeline.Context(store, cfg, clock=lambda: NOW)
        whole = {p.subscriber.email: p.eml for p in pipeline.iter_previews(ctx, DAY)}
        alive: list[weakref.ref[object]] = []
        chunked = {}
        for preview in pipeline.iter_previews(ctx, DAY, chunk=1):
            gc.collect()
            assert sum(r() is not None for r in alive) == 0  # earlier previews and digests
            chunked[preview.subscriber.email] = preview.eml
            alive += [weakref.ref(preview), weakref.ref(preview.digest)]
            del preview
    assert chunked == whole and sorted(whole) == sorted(READERS)
    subjects = {
        a: email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
        for a, raw in whole.items()
    }
    assert not subjects["seg@example.org"].startswith("Welcome")
    assert subjects["kv@example.org"].startswith("Welcome")


def test_preview_all_reports_a_message_it_cannot_build_and_writes_the_rest(
    config_path: Path, tmp_path: Path
) -> None:
    """A stored address no message can carry (a copied database may hold one: sign-up
    refuses it) is named with the reason, as `send` would fail it; the others are written."""
    cfg = load_config(str(config_path))
    with Database(cfg.database_path) as store:
        sub, _ = store.subscribers.add("zoë@example.org", NOW, status=SubscriberStatus.ACTIVE)
        store.subscribers.add_interests(sub.id, [Interest(InterestKind.KEYWORD, "KV cache")], NOW)
    out = tmp_path / "some"
    result = invoke(config_path, "preview", "--all", "--date", DAY.isoformat(), "--out", str(out))
    assert result.exit_code == 1
    assert "not previewed: zoë@example.org:" in result.output and "SMTPUTF8" in result.output
    assert f"{len(READERS)} preview(s) in {out}" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem(a)}.{ext}" for a in READERS for ext in ("eml", "html", "txt")
    )
