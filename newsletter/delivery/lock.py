"""One send run at a time: an exclusive lock file in the data folder.

`run_lock(cfg)` takes `<data_dir>/newsletter.lock` with `flock` (released by the kernel when the
process exits, even after `kill -9`, so a crash never leaves a stale lock behind). A second
process gets `LockedError` saying who holds it. Within one process the lock is re-entrant, so
the scheduler can hold it for its lifetime while calling the same `send_daily` as `send`.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from newsletter.config import Config
from newsletter.errors import LockedError

LOCK_NAME = "newsletter.lock"

_held: dict[Path, tuple[IO[str], int]] = {}
_guard = threading.RLock()


def lock_path(cfg: Config) -> Path:
    return cfg.path(cfg.storage.data_dir) / LOCK_NAME


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""


@contextmanager
def run_lock(cfg: Config, purpose: str = "send") -> Iterator[Path]:
    """Hold the run lock for the duration of the block; raise LockedError if another has it."""
    path = lock_path(cfg).resolve()
    with _guard:
        if path in _held:
            handle, depth = _held[path]
            _held[path] = (handle, depth + 1)
            reentered = True
        else:
            reentered = False
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+", encoding="utf-8")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise LockedError(
                    f"another newsletter run holds {path}{_holder(path)}: it is still sending. "
                    "Wait for it to finish (a crashed run releases the lock by itself)."
                ) from None
            handle.seek(0)
            handle.truncate()
            started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            handle.write(f"pid {os.getpid()}, {purpose}, started {started}\n")
            handle.flush()
            _held[path] = (handle, 1)
    try:
        yield path
    finally:
        with _guard:
            handle, depth = _held[path]
            if reentered or depth > 1:
                _held[path] = (handle, depth - 1)
            else:
                del _held[path]
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                handle.close()


def send_lock(cfg: Config) -> AbstractContextManager[Path]:
    """The lock `send`, `run` and the scheduler's send passes share."""
    return run_lock(cfg, "send")
