"""`newsletter serve` as a real process on a local port: the issue's "what it must show"."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from newsletter import links
from newsletter.config import Config, parse_config
from newsletter.delivery import build_message, message_id_for
from newsletter.models import SubscriberStatus
from newsletter.render.renderer import RenderedEmail
from newsletter.store import Database
from tests.conftest import SECRET, free_port
from tests.web_support import csrf_tokens, link_in, outbox, path_of, running_serve, tamper


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Config]]:
    port = free_port()
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'[site]\nbase_url = "http://127.0.0.1:{port}"\nname = "Served Digest"\n'
        '[delivery]\nmethod = "maildir:outbox"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    cfg = parse_config(config_file.read_text(), base_dir=tmp_path, env=env)
    with running_serve(config_file, port, env) as base:
        yield base, cfg


def test_newsletter_serve_subscribe_confirm_one_click_and_tampered_token(
    served: tuple[str, Config],
) -> None:
    base, cfg = served
    with httpx.Client(base_url=base) as browser:
        home = browser.get("/subscribe")
        assert home.status_code == 200 and '<form method="post" action="/"' in home.text
        r = browser.post(
            "/",
            data={
                "csrf_token": csrf_tokens(home.text)[0],
                "email": "served@example.org",
                "keywords": "reinforcement learning",
                "timezone": "UTC",
                "hour": "7",
                "size": "10",
            },
        )
        assert r.status_code == 200 and "Check your inbox" in r.text

    mails = outbox(cfg.path("outbox"))
    assert len(mails) == 1
    with Database(cfg.database_path) as db:
        sub = db.subscribers.get_by_email("served@example.org")
        assert sub is not None and sub.status == SubscriberStatus.PENDING
        confirm = link_in(mails[0], "/confirm/")
        assert confirm.startswith(base + "/confirm/")
        assert httpx.get(confirm).status_code == 200  # a scanner's fetch: the page only asks
        assert db.subscribers.get(sub.id).status == SubscriberStatus.PENDING  # type: ignore[union-attr]
        assert httpx.post(confirm).status_code == 200
        sub = db.subscribers.get(sub.id)
        assert sub is not None and sub.status == SubscriberStatus.ACTIVE

        digest = build_message(
            cfg,
            sub,
            RenderedEmail("Papers for today", "<p>papers</p>", "papers", "pre"),
            message_id=message_id_for(cfg, sub.id, datetime.now(UTC).date()),
            kind="digest",
        )
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https_url = str(digest["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
        one_click = httpx.post(https_url, data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 200
        assert db.subscribers.get(sub.id).status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]

        bad = httpx.get(base + tamper(path_of(confirm)))
        assert 400 <= bad.status_code < 500 and "This link does not work" in bad.text


# Another process holding the write lock, as a long `fetch` or `send` transaction would.
HOLD_WRITE_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def _timed_get(client: httpx.Client, url: str) -> tuple[int, float]:
    started = time.monotonic()
    status = client.get(url).status_code
    return status, time.monotonic() - started


def test_one_click_unsubscribe_while_another_process_holds_the_write_lock(
    served: tuple[str, Config],
) -> None:
    base, cfg = served
    with Database(cfg.database_path) as db:
        sub, _ = db.subscribers.add(
            "locked@example.org", datetime.now(UTC), status=SubscriberStatus.ACTIVE
        )
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(cfg.database_path), "8"],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        locked_at = time.monotonic()
        answer: dict[str, float] = {}

        def one_click() -> None:
            url, form = links.unsubscribe_url(cfg, sub), {"List-Unsubscribe": "One-Click"}
            answer["status"] = httpx.post(url, data=form, timeout=30).status_code
            answer["took"] = time.monotonic() - locked_at

        poster = threading.Thread(target=one_click)
        poster.start()
        health = []  # while the POST waits for the lock, the event loop answers others
        with httpx.Client(timeout=30) as client:
            client.get(base + "/healthz")  # connect first: time the answers, not the handshake
            while poster.is_alive() or not health:
                health.append(_timed_get(client, base + "/healthz"))
                time.sleep(0.05)
        poster.join()
        assert holder.poll() is None  # the lock was held the whole time
        status, answered = int(answer["status"]), answer["took"]
        assert 200 <= status < 300 and answered < 5, (status, answered)
        health_took = max(took for _, took in health)
        assert {code for code, _ in health} == {200} and health_took < 0.5, health
        with Database(cfg.database_path) as db:
            assert db.subscribers.get(sub.id).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
        holder.wait(timeout=30)
        deadline = time.monotonic() + 20
        with Database(cfg.database_path) as db:
            while db.subscribers.get(sub.id).status != SubscriberStatus.UNSUBSCRIBED:  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the queued unsubscribe never landed"
                time.sleep(0.1)
        landed = time.monotonic() - locked_at
    finally:
        holder.kill()
    print(
        f"\none-click under another process's write lock: {status} in {answered:.2f} s;"
        f" /healthz meanwhile: {len(health)} requests, max {health_took * 1000:.1f} ms;"
        f" unsubscribed {landed:.1f} s after the lock was taken (held 8 s)"
    )


@dataclass
class ChunkedFlood:
    """A raw-socket POST that sends `total` bytes of chunks as fast as the server takes them,
    and records how much went out and what came back (read alongside, as a server may answer
    and close before the body ends)."""

    port: int
    path: str
    total: int = 100 * 2**20
    sent: int = 0
    reply: bytes = b""
    closed_at: float = 0.0

    def _read(self, sock: socket.socket) -> None:
        try:
            while data := sock.recv(65536):
                self.reply += data
        except OSError:
            pass

    def run(self, chunk: int = 64 * 1024) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            reader = threading.Thread(target=self._read, args=(sock,))
            reader.start()
            head = (
                f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            )
            piece = f"{chunk:x}\r\n".encode() + b"a" * chunk + b"\r\n"
            try:
                sock.sendall(head.encode())
                while self.sent < self.total:
                    sock.sendall(piece)
                    self.sent += chunk
                sock.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the server closed the connection: what we want
            self.closed_at = time.monotonic()
            reader.join(timeout=10)


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/", b"HTTP/1.1 413"),  # the form is read: cut off at 64 KB
        ("/unsubscribe/not-a-token", b"HTTP/1.1 400"),  # never read: the connection is closed
    ],
)
def test_serve_stays_responsive_while_a_100_mb_chunked_post_is_refused(
    served: tuple[str, Config], path: str, answer: bytes
) -> None:
    base, _ = served
    flood = ChunkedFlood(int(base.rsplit(":", 1)[1]), path)
    sender = threading.Thread(target=flood.run)
    latencies = []
    with httpx.Client(timeout=5) as client:
        client.get(base + "/healthz")  # connect first: time the answers, not the handshake
        started = time.monotonic()
        sender.start()
        # From the first chunk until the refusal, and a little after it.
        while (sender.is_alive() or len(latencies) < 10) and time.monotonic() - started < 60:
            t0 = time.monotonic()
            assert client.get(base + "/healthz").text == "ok"
            latencies.append(time.monotonic() - t0)
            time.sleep(0.02)
    sender.join(timeout=30)
    assert flood.reply.startswith(answer), flood.reply[:200]
    assert flood.sent < flood.total, "the whole 100 MB was read"
    assert latencies and max(latencies) < 0.1, max(latencies)
    print(
        f"\n100 MB chunked POST {path}: {answer[9:12].decode()}, connection closed after"
        f" {flood.sent / 2**20:.1f} MB sent ({flood.closed_at - started:.2f} s);"
        f" /healthz meanwhile: {len(latencies)} requests, max {max(latencies) * 1000:.1f} ms"
    )
