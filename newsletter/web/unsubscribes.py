"""Unsubscribes that land even when the database is busy.

A one-click unsubscribe must be answered at once (mail providers give up after a few seconds)
and must not be lost (they expect it honoured within two days). When another process holds the
write lock longer than the web's busy timeout, the request is written to a spool folder next to
the database, one small file per request so that several `serve` processes can share it, and a
background thread writes it to the database as soon as the lock is free. Files left behind by a
crash or a restart are picked up when the app starts again.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from newsletter.store import is_busy

log = logging.getLogger("newsletter.web")
SUFFIX = ".unsubscribe"


class UnsubscribeQueue:
    """A spool of (subscriber id, nonce) to unsubscribe; `land` writes one to the database."""

    def __init__(
        self,
        folder: Path,
        land: Callable[[int, str], None],
        *,
        first_wait: float = 0.5,
        longest_wait: float = 10.0,
    ) -> None:
        self.folder = folder
        self._land = land
        self._first_wait = first_wait
        self._longest_wait = longest_wait
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, subscriber_id: int, nonce: str) -> None:
        """Keep an unsubscribe on disk (it survives a restart) and have the thread land it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{subscriber_id}-{secrets.token_hex(6)}"
        partial = self.folder / f".{name}.tmp"
        with partial.open("w", encoding="ascii") as f:
            f.write(f"{subscriber_id} {nonce}\n")
            f.flush()
            os.fsync(f.fileno())
        partial.replace(self.folder / f"{name}{SUFFIX}")  # whole, or not there at all
        log.warning("database busy: unsubscribe of subscriber %s queued", subscriber_id)
        self.start()

    def pending(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"*{SUFFIX}"))

    def drain(self) -> bool:
        """Land every queued unsubscribe; False when the database is still busy."""
        for path in self.pending():
            try:
                sid, _, nonce = path.read_text(encoding="ascii").strip().partition(" ")
                self._land(int(sid), nonce)
            except FileNotFoundError:
                continue  # another process landed it first
            except Exception as exc:
                if is_busy(exc):
                    return False
                log.exception("cannot land queued unsubscribe %s; it stays queued", path.name)
                continue
            path.unlink(missing_ok=True)
            log.info("queued unsubscribe of subscriber %s landed", sid)
        return True

    def start(self) -> None:
        """Start the background thread when there is something to land (and none runs)."""
        with self._lock:
            self._wake.set()
            if self._thread is not None and self._thread.is_alive():
                return
            if not self.pending():
                return
            self._thread = threading.Thread(target=self._run, name="unsubscribe-queue", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        wait = self._first_wait
        while not self._stop.is_set():
            self._wake.clear()
            if self.drain():
                with self._lock:
                    if not self._wake.is_set():  # nothing was added while draining
                        self._thread = None
                        return
                continue
            self._stop.wait(wait)
            wait = min(wait * 2, self._longest_wait)
