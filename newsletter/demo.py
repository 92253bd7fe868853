"""`newsletter demo`: the whole product, offline, in a `demo/` folder.

It writes `demo/config.toml` (and a demo-only secret key), ingests the bundled sample day
(`newsletter/data/`: an rss.arxiv.org feed and a Hugging Face Daily Papers response) through the
real fetch pipeline with the HTTP answers served from those files, adds a few demo subscribers
with different interests, starts an SMTP server (aiosmtpd) on 127.0.0.1 that files what it
receives in `demo/maildir`, sends the day's digests to it over real SMTP with the real send
loop, and writes previews of what arrived to `demo/previews/`. A second run finds the digests
already sent (the ledger), says so, and shows them again.
"""

from __future__ import annotations

import email
import email.policy
import html
import mailbox
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from newsletter import pipeline
from newsletter.config import Config, parse_config
from newsletter.delivery import SMTPMailer
from newsletter.errors import DeliveryError
from newsletter.models import Interest, InterestKind
from newsletter.preferences import Preferences
from newsletter.preview import file_stem
from newsletter.store import Database
from newsletter.subscriptions import Subscriptions

DATA = Path(__file__).resolve().parent / "data"
FEED = DATA / "demo_arxiv_rss.xml"
DAILY_PAPERS = DATA / "demo_hf_daily_papers.json"
DEMO_DAY = date(2026, 11, 24)  # the day the bundled feed announces (see data/README.md)
DEMO_NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

CONFIG = """\
# Written by `newsletter demo`. Everything here is local: delete the demo/ folder to start over.
[storage]
data_dir = "data"
database = "data/newsletter.db"

[sources]
arxiv_categories = ["cs.LG", "cs.CL", "cs.CV"]
contact_email = "demo@example.org"

[site]
base_url = "http://127.0.0.1:8000"
# The key links are signed with, written once by the demo: no environment variable needed.
secret_key_file = "secret.key"
name = "Paper Digest (demo)"
operator_name = "The newsletter demo"
postal_address = "1 Example Street, 10115 Berlin, Germany"

[email]
from_address = "digest@demo.example.org"
from_name = "Paper Digest"
list_id = "Paper Digest demo <digest.demo.example.org>"
message_id_domain = "demo.example.org"
unsubscribe_mailto = "unsubscribe@demo.example.org"

[delivery]
# What `newsletter serve` on the demo sends (confirmation mails) lands in the demo Maildir; its
# outbox page lists it. `newsletter demo` itself sends the digests over real SMTP:
method = "maildir:maildir"

[smtp]
# The demo starts its own SMTP server on a free port of 127.0.0.1 and sends there.
host = "127.0.0.1"
port = 2525
security = "none"
connections = 2
"""


@dataclass(frozen=True)
class DemoReader:
    email: str
    name: str
    interests: tuple[Interest, ...]


def _i(kind: InterestKind, value: str) -> Interest:
    return Interest(kind, value)


READERS = (
    DemoReader(
        "ada@example.org",
        "Ada Lovelace",
        (
            _i(
                InterestKind.TEXT,
                "efficient inference for large language models: KV cache compression, "
                "quantization, speculative decoding",
            ),
            _i(InterestKind.CATEGORY, "cs.CL"),
        ),
    ),
    DemoReader(
        "grace@example.org",
        "Grace Hopper",
        (
            _i(InterestKind.KEYWORD, "medical image segmentation"),
            _i(InterestKind.KEYWORD, "MRI"),
            _i(InterestKind.CATEGORY, "cs.CV"),
        ),
    ),
    DemoReader(
        "alan@example.org",
        "Alan Turing",
        (
            _i(
                InterestKind.TEXT,
                "speech and audio models: neural audio codecs, text-to-speech, speech recognition",
            ),
        ),
    ),
    DemoReader(
        "katherine@example.org",
        "Katherine Johnson",
        (
            _i(InterestKind.KEYWORD, "federated learning"),
            _i(InterestKind.KEYWORD, "differential privacy"),
            _i(InterestKind.NOT_KEYWORD, "blockchain"),
        ),
    ),
    DemoReader(
        "emmy@example.org",
        "Emmy Noether",
        (
            _i(InterestKind.KEYWORD, "state space models"),
            _i(InterestKind.KEYWORD, "Mamba"),
            _i(InterestKind.KEYWORD, "spiking neural networks"),
        ),
    ),
    DemoReader("zoe@example.org", "Zoë Ünal", ()),  # no interests: the trending digest
)


@dataclass(frozen=True)
class DemoResult:
    root: Path
    previews: Path
    maildir: Path
    exit_code: int


# ---------------------------------------------------------------- set-up


def demo_config(root: Path) -> Config:
    """Write demo/config.toml and demo/secret.key once; load them (the key only for the demo)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "config.toml"
    if not path.exists():
        path.write_text(CONFIG, encoding="utf-8")
    key_file = root / "secret.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
        key_file.chmod(0o600)
    env = dict(os.environ)
    if len(env.get("NEWSLETTER_SECRET_KEY", "")) < 16:  # unset (or unusable): the demo's own
        env["NEWSLETTER_SECRET_KEY"] = key_file.read_text(encoding="utf-8").strip()
    return parse_config(
        path.read_text(encoding="utf-8"), base_dir=root.resolve(), env=env, source=str(path)
    )


def offline_transport() -> httpx.MockTransport:
    """HTTP answers from the bundled sample files, so the real fetch code runs offline."""
    feed, daily = FEED.read_bytes(), DAILY_PAPERS.read_bytes()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "rss.arxiv.org":
            return httpx.Response(200, content=feed, headers={"Content-Type": "application/xml"})
        if request.url.host == "huggingface.co" and request.url.path == "/api/daily_papers":
            first = request.url.params.get("p", "0") == "0"
            body = daily if first and request.url.params.get("date") == str(DEMO_DAY) else b"[]"
            return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
        return httpx.Response(404, text="the demo serves only the bundled sample day")

    return httpx.MockTransport(answer)


def reader_preferences(reader: DemoReader) -> Preferences:
    """A demo reader as the CLI's `subscribe --confirmed` would take them."""

    def values(kind: InterestKind) -> list[str]:
        return [i.value for i in reader.interests if i.kind == kind]

    return Preferences(
        keywords=values(InterestKind.KEYWORD),
        description="\n\n".join(values(InterestKind.TEXT)),
        negatives=values(InterestKind.NOT_KEYWORD),
        categories=values(InterestKind.CATEGORY),
        name=reader.name,
    )


def add_readers(store: Database, cfg: Config, now: datetime) -> None:
    """The demo readers, active at once (they asked the operator directly)."""
    people = Subscriptions(store, cfg, lambda: now)
    for reader in READERS:
        if store.subscribers.get_by_email(reader.email) is None:
            people.add_by_operator(reader.email, reader_preferences(reader), confirmed=True)


# ---------------------------------------------------------------- the local SMTP server


class _MaildirHandler:
    """aiosmtpd handler: file each message, exactly as received, in a Maildir."""

    def __init__(self, path: Path) -> None:
        self.maildir = mailbox.Maildir(path, create=True)
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        trace = f"Return-Path: <{envelope.mail_from}>\r\n".encode()
        trace += "".join(f"Delivered-To: {r}\r\n" for r in envelope.rcpt_tos).encode()
        with self.lock:
            self.maildir.add(trace + bytes(envelope.original_content or envelope.content))
        return "250 2.0.0 Message accepted for delivery"


@contextmanager
def local_smtp_server(maildir: Path) -> Iterator[int]:
    """An aiosmtpd server on a free port of 127.0.0.1; yields the port."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(
        _MaildirHandler(maildir), hostname="127.0.0.1", port=port, decode_data=False
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


# ---------------------------------------------------------------- previews


def received_messages(maildir: Path) -> dict[str, tuple[bytes, EmailMessage]]:
    """Messages in the demo Maildir by Message-ID: (raw bytes, parsed)."""
    box = mailbox.Maildir(maildir, create=True)
    out: dict[str, tuple[bytes, EmailMessage]] = {}
    for key in box.iterkeys():
        raw = box.get_bytes(key)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        out[str(msg["Message-ID"])] = (raw, msg)
    return out


def _describe(interests: tuple[Interest, ...]) -> str:
    words = [f"not {i.value}" if i.kind == InterestKind.NOT_KEYWORD else i.value for i in interests]
    return ", ".join(words) or "none: the trending digest"


def write_previews(store: Database, maildir: Path, out: Path) -> list[tuple[str, str, str]]:
    """Write each demo reader's received digest as .html, .txt and .eml; returns the index."""
    out.mkdir(parents=True, exist_ok=True)
    sent = store.sends.sent_message_ids(DEMO_DAY)
    inbox = received_messages(maildir)
    rows: list[tuple[str, str, str]] = []
    for reader in READERS:
        sub = store.subscribers.get_by_email(reader.email)
        if sub is None or sub.id not in sent or sent[sub.id] not in inbox:
            continue
        raw, msg = inbox[sent[sub.id]]
        stem = file_stem(sub)
        (out / f"{stem}.eml").write_bytes(raw)
        for part in msg.iter_parts():
            ext = {"text/html": "html", "text/plain": "txt"}.get(part.get_content_type())
            if ext:
                (out / f"{stem}.{ext}").write_text(part.get_content(), encoding="utf-8")
        rows.append((reader.email, str(msg["Subject"]), stem))
    names = {r.email: (r.name, _describe(r.interests)) for r in READERS}
    items = "\n".join(
        f"<tr><td><strong>{html.escape(names[addr][0])}</strong><br><small>"
        f"{html.escape(addr)}</small></td><td>{html.escape(names[addr][1])}</td>"
        f'<td><a href="{stem}.html">{html.escape(subject)}</a><br><small>'
        f'<a href="{stem}.txt">text part</a> · <a href="{stem}.eml">.eml as received</a>'
        "</small></td></tr>"
        for addr, subject, stem in rows
    )
    (out / "index.html").write_text(
        "<!doctype html><html lang='en'><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Demo digests</title><style>body{font:15px/1.5 system-ui,sans-serif;"
        "max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2937}"
        "table{border-collapse:collapse;width:100%}td{border-top:1px solid #e5e7eb;"
        "padding:.6rem .5rem;vertical-align:top;overflow-wrap:anywhere}a{color:#1d4ed8}"
        "small{color:#6b7280}"
        # A phone stacks each reader's cells: three columns do not fit in 375 px.
        "@media (max-width:40rem){table,tbody,tr,td{display:block}tr:first-child{display:none}"
        "td{border:0;padding:.2rem 0}tr{border-top:1px solid #e5e7eb;padding:.6rem 0}}</style>"
        f"<h1>Demo digests for {DEMO_DAY:%a %d %b %Y}</h1>"
        "<p>Each subscriber's digest as the local SMTP server received it "
        f"({len(rows)} messages in <code>demo/maildir</code>).</p>"
        f"<table><tr><th align=left>Reader</th><th align=left>Interests</th>"
        f"<th align=left>Digest</th></tr>\n{items}\n</table></html>\n",
        encoding="utf-8",
    )
    return rows


# ---------------------------------------------------------------- the demo


def run_demo(root: Path, *, echo: Callable[[str], None] = print) -> DemoResult:
    """Run the demo in `root` (created if needed); safe to run again."""
    cfg = demo_config(root)
    maildir, previews = root / "maildir", root / "previews"
    with Database(cfg.database, password=cfg.database_password) as store:
        offline = pipeline.Context(
            store, cfg, clock=lambda: DEMO_NOW, transport=offline_transport()
        )
        fetched = pipeline.fetcher(offline).today(DEMO_DAY)
        echo(f"sample day {DEMO_DAY}: {fetched.line()}")
        add_readers(store, cfg, DEMO_NOW)
        with local_smtp_server(maildir) as port:
            run_cfg = replace(cfg, smtp=replace(cfg.smtp, port=port))
            echo(f"local SMTP server on 127.0.0.1:{port}, filing mail in {maildir}")
            try:
                ctx = pipeline.Context(store, run_cfg, mailer=SMTPMailer(run_cfg))
                summary = pipeline.send_daily(ctx, DEMO_DAY)
            except DeliveryError as exc:
                raise DeliveryError(f"the demo could not send: {exc}") from None
        echo(summary.line())
        if summary.already_sent and not summary.sent:
            echo(
                f"The demo digests for {DEMO_DAY} were already sent (the send ledger never "
                "sends one twice); showing them again."
            )
        rows = write_previews(store, maildir, previews)
    for address, subject, stem in rows:
        echo(f"  {address:<24} {subject}  → {previews / (stem + '.html')}")
    echo(f"Open {previews / 'index.html'} in a browser, or run `make preview` to serve them.")
    echo(f"The digests as received: {maildir} (one file per message, a Maildir).")
    return DemoResult(root, previews, maildir, summary.exit_code)
