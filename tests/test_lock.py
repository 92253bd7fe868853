"""One run at a time: the lock file in the data folder, across real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from newsletter.delivery.lock import lock_path, run_lock, send_lock
from newsletter.errors import LockedError
from tests.conftest import make_config

HOLDER = textwrap.dedent(
    """
    import sys
    from newsletter.config import parse_config
    from newsletter.delivery.lock import run_lock
    cfg = parse_config('[storage]\\ndata_dir = "data"\\n', base_dir=sys.argv[1], env={})
    with run_lock(cfg, "send"):
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


def _holder(tmp_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_is_refused_with_who_holds_it(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    proc = _holder(tmp_path)
    try:
        with pytest.raises(LockedError) as info, run_lock(cfg):
            pass
        assert f"pid {proc.pid}" in str(info.value) and "still sending" in str(info.value)
    finally:
        proc.communicate("\n", timeout=10)
    with run_lock(cfg) as path:  # released when the holder finished
        assert path == lock_path(cfg).resolve()


def test_kill_9_releases_the_lock(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    with run_lock(cfg):
        pass


def test_reentrant_within_one_process(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    with send_lock(cfg), run_lock(cfg, "run"):
        proc = subprocess.run(
            [sys.executable, "-c", HOLDER, str(tmp_path)],
            input="\n",
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert proc.returncode != 0 and "LockedError" in proc.stderr
    with run_lock(cfg):  # fully released after the outer block
        pass
