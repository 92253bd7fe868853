"""Helpers shared by the web tests: CSRF fields, outbox reading, links from real e-mails."""

from __future__ import annotations

import contextlib
import email
import re
import threading
import time
import warnings
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import uvicorn
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from newsletter.bench.serve import ServeDidNotStart, serve_process
from newsletter.config import Config
from newsletter.web.app import create_app
from tests.conftest import SECRET

with warnings.catch_warnings():  # starlette's notice about its httpx-based client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

__all__ = ["TestClient"]

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://[^\s<>\"']+")


def csrf_tokens(html: str) -> list[str]:
    return CSRF_FIELD.findall(html)


def outbox(path: Path) -> list[EmailMessage]:
    """Messages the Maildir mailer wrote, parsed back, oldest first."""
    files = [f for sub in ("new", "cur") for f in (path / sub).glob("*") if f.is_file()]
    files.sort(key=lambda f: (f.stat().st_mtime_ns, f.name))
    return [
        email.message_from_bytes(f.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for f in files
    ]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(msg: EmailMessage, path_prefix: str) -> str:
    """The first link in the text part whose path starts with `path_prefix` (e.g. /confirm/)."""
    for url in LINK.findall(text_of(msg)):
        if path_prefix in url:
            return url.rstrip(".,);")
    raise AssertionError(f"no {path_prefix} link in {text_of(msg)!r}")


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def old_token(
    purpose: str, subscriber_id: int, age_seconds: int, nonce: str = "", **extra: object
) -> str:
    """A correctly signed token issued `age_seconds` ago (itsdangerous reads the real clock);
    without a `nonce` it is a link as minted before subscribers had nonces."""

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    serializer = URLSafeTimedSerializer(SECRET, salt=f"newsletter.{purpose}", signer=PastSigner)
    payload = {"s": subscriber_id, **extra, **({"n": nonce} if nonce else {})}
    return str(serializer.dumps(payload))


def tamper(token: str) -> str:
    """The token with one character of its signature changed."""
    i = len(token) - 5
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


@contextlib.contextmanager
def running_serve(config: Path, port: int, env: dict[str, str]) -> Iterator[str]:
    """A real `newsletter serve` process on 127.0.0.1:`port` (`bench.serve.serve_process`);
    the test fails with the process's output if it never answers /healthz."""
    try:
        with serve_process(config, port, env) as base:
            yield base
    except ServeDidNotStart as e:
        pytest.fail(str(e))


@contextlib.contextmanager
def app_in_thread(cfg: Config, port: int) -> Iterator[str]:
    """The web app on a real uvicorn at 127.0.0.1:`port`, in a thread; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
