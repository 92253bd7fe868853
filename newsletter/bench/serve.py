"""`newsletter serve` under pressure: /healthz latency while another process holds the write lock
and while 100 MB chunked POSTs are refused, as ratios against its idle latency in the same run.

A real `newsletter serve` process is started on a temporary SQLite file. The baseline is /healthz
answered on an idle server (one kept-alive connection, 200 requests). Then:

- **write lock**: another process takes `BEGIN IMMEDIATE` and holds it for 4 s (as a long fetch or
  send transaction would) while a one-click unsubscribe is POSTed; /healthz is timed meanwhile,
  and the one-click's own answer time is printed (it is queued rather than lost when the lock
  outlasts the wait);
- **chunked flood**: a raw socket sends 100 MB of chunks to `/` (read, cut off at 64 KB: 413) and
  to a path that never reads a body (400, connection closed); /healthz is timed meanwhile.

    python -m newsletter.bench serve          # or: make bench

The tests (`tests/test_web_serve.py`) check what happens in each case; the timings live here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from newsletter import links
from newsletter.config import parse_config
from newsletter.models import SubscriberStatus
from newsletter.store import Database

# Another process holding the write lock: argv = database path, seconds to hold it.
HOLD_WRITE_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def newsletter_command() -> list[str]:
    """The installed `newsletter` script, or the module run by this interpreter."""
    script = Path(sys.executable).parent / "newsletter"
    return [str(script)] if script.exists() else [sys.executable, "-m", "newsletter"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeDidNotStart(RuntimeError):
    """`newsletter serve` exited or never answered /healthz; the message has its output."""


@contextlib.contextmanager
def serve_process(config: Path, port: int, env: dict[str, str]) -> Iterator[str]:
    """A real `newsletter serve` process on 127.0.0.1:`port`; yields its base URL once /healthz
    answers (ServeDidNotStart with its output if it never does), and stops it with SIGTERM (then
    kill) afterwards."""
    proc = subprocess.Popen(
        [*newsletter_command(), "--config", str(config), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        out = proc.stdout.read().decode() if proc.stdout else ""
        raise ServeDidNotStart(f"newsletter serve ({config}) did not start:\n{out}")
    try:
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def write_lock_held(database: Path, seconds: float) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holding SQLite's write lock on `database` for `seconds`; yields it once
    the lock is taken (its `poll()` is None while it holds the lock)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(database), str(seconds)],
        stdout=subprocess.PIPE,
    )
    try:
        if holder.stdout is None or holder.stdout.readline() != b"locked\n":
            raise RuntimeError("the lock holder did not take the write lock")
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=30)


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


def health_while(client: httpx.Client, url: str, busy: threading.Thread) -> list[float]:
    """Seconds each /healthz took, asked every 20 ms while `busy` runs (at least 10 asked)."""
    took: list[float] = []
    while busy.is_alive() or len(took) < 10:
        started = time.perf_counter()
        if client.get(url).text != "ok":
            raise RuntimeError("/healthz did not answer ok")
        took.append(time.perf_counter() - started)
        time.sleep(0.02)
    return took


def _figures(label: str, took: list[float], idle_median: float) -> str:
    worst = max(took)
    return (
        f"{label}: {len(took)} requests, median {statistics.median(took) * 1000:.1f} ms,"
        f" max {worst * 1000:.1f} ms ({worst / idle_median:.1f}× the idle median)"
    )


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        config_file = root / "config.toml"
        config_file.write_text(
            f'[site]\nbase_url = "http://127.0.0.1:{port}"\nname = "Bench Digest"\n'
            '[delivery]\nmethod = "maildir:outbox"\n',
            encoding="utf-8",
        )
        env = {**os.environ, "NEWSLETTER_SECRET_KEY": "bench-secret-key-" + "x" * 32}
        cfg = parse_config(config_file.read_text(), base_dir=root, env=env)
        with Database(cfg.database_path) as db:
            sub, _ = db.subscribers.add(
                "bench@example.org", datetime.now(UTC), status=SubscriberStatus.ACTIVE
            )
        with serve_process(config_file, port, env) as base, httpx.Client(timeout=30) as client:
            health = base + "/healthz"
            client.get(health)  # connect first: time the answers, not the handshake
            idle = []
            for _ in range(200):
                started = time.perf_counter()
                client.get(health)
                idle.append(time.perf_counter() - started)
            idle_median = statistics.median(idle)
            print(
                f"idle /healthz: median {idle_median * 1000:.2f} ms,"
                f" max {max(idle) * 1000:.1f} ms (200 requests, one connection)"
            )

            with write_lock_held(cfg.database_path, 4):
                answer: dict[str, float] = {}

                def one_click() -> None:
                    started = time.perf_counter()
                    url, form = links.unsubscribe_url(cfg, sub), {"List-Unsubscribe": "One-Click"}
                    httpx.post(url, data=form, timeout=30).raise_for_status()
                    answer["took"] = time.perf_counter() - started

                poster = threading.Thread(target=one_click)
                poster.start()
                took = health_while(client, health, poster)
                poster.join()
            print(
                f"one-click unsubscribe under another process's write lock (held 4 s):"
                f" answered in {answer['took'] * 1000:.0f} ms, before the lock was released"
            )
            print(_figures("  /healthz meanwhile", took, idle_median))

            for path in ("/", "/unsubscribe/not-a-token"):
                flood = ChunkedFlood(port, path)
                sender = threading.Thread(target=flood.run)
                started = time.monotonic()
                sender.start()
                took = health_while(client, health, sender)
                sender.join(timeout=30)
                cut_ms = (flood.closed_at - started) * 1000
                print(
                    f"100 MB chunked POST {path}: {flood.reply[9:12].decode() or 'closed'}"
                    f" after {flood.sent / 2**20:.1f} MB ({cut_ms:.0f} ms)"
                )
                print(_figures("  /healthz meanwhile", took, idle_median))
