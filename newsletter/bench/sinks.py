"""SMTP sinks for the send benchmark, each in its own process: Postfix's `smtp-sink` (C, the
real ceiling) when installed, else an aiosmtpd sink (Python, itself slow)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SMTP_SINK = ("smtp-sink", "/usr/sbin/smtp-sink")


def aiosmtpd_main(port: int) -> None:
    """Run an aiosmtpd sink that accepts and discards everything (`python -c` entry point)."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smtp_sink_path() -> str | None:
    for name in SMTP_SINK:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found and os.access(found, os.X_OK):
            return found
    return None


class Sink:
    """A sink process listening on 127.0.0.1:`port`; `name` says which."""

    def __init__(self, prefer_smtp_sink: bool = True) -> None:
        self.port = free_port()
        binary = smtp_sink_path() if prefer_smtp_sink else None
        if binary is not None:
            self.name = "Postfix smtp-sink"
            # -u: the user to run as, required when started as root; 256: the listen backlog
            user = ["-u", "root"] if os.geteuid() == 0 else []
            self.proc = subprocess.Popen(
                [binary, *user, f"127.0.0.1:{self.port}", "256"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            self._wait_listening()
        else:
            self.name = "aiosmtpd"
            code = f"from newsletter.bench.sinks import aiosmtpd_main; aiosmtpd_main({self.port})"
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.proc.stdout is not None
            if self.proc.stdout.readline().strip() != "ready":
                self.close()
                raise RuntimeError("the aiosmtpd sink process did not start")

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"smtp-sink exited: {err.strip()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.close()
        raise RuntimeError("smtp-sink did not start listening")

    def close(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the aiosmtpd sink stops at end of input
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
