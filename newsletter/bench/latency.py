"""A relay far away, for the send benchmark: a TCP proxy in its own process that holds every
chunk for half a round trip in each direction before passing it on to the sink.

The bench's sinks run on the same machine, where a round trip costs microseconds and only CPU
counts. A real relay (an ESP's endpoint, a provider's smarthost) is 5–50 ms away, and then
each message waits for its replies: with PIPELINING two round trips a message per
connection, so the number of connections, not the CPU, sets the pace. `bench send --rtt MS`
puts this proxy in front of each sink to measure that.
"""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
from typing import Any

from newsletter.bench.sinks import Sink, free_port


async def _carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Pass what `reader` gets to `writer`, each chunk `delay` seconds after it arrived, in
    order; close `writer` after the end of input has been held as long."""
    loop = asyncio.get_running_loop()
    held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await held.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    delivering = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            held.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await delivering
    except (ConnectionError, OSError):
        delivering.cancel()
        writer.close()


async def _serve(listen: int, target: int, delay: float) -> None:
    async def connection(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            sink_r, sink_w = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _carry(client_r, sink_w, delay), _carry(sink_r, client_w, delay), return_exceptions=True
        )

    server = await asyncio.start_server(connection, "127.0.0.1", listen, backlog=256)
    print("ready", flush=True)
    async with server:
        reading = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await reading  # until the parent closes our stdin (or dies)


def main(listen: int, target: int, rtt_ms: float) -> None:
    """Run the proxy (`python -c` entry point): 127.0.0.1:`listen` → 127.0.0.1:`target`."""
    asyncio.run(_serve(listen, target, rtt_ms / 2000))


class Distant:
    """`sink` as the bench sees it from `rtt_ms` away: `port` is the proxy's, `proc` the sink's
    own (the bench reads the sink's CPU time from it)."""

    def __init__(self, sink: Sink, rtt_ms: float) -> None:
        self.sink = sink
        self.port = free_port()
        self.name = f"{sink.name}, {rtt_ms:g} ms away (a delaying proxy)"
        code = (
            f"from newsletter.bench.latency import main; main({self.port}, {sink.port}, {rtt_ms!r})"
        )
        self._proxy = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proxy.stdout is not None
        ready = select.select([self._proxy.stdout], [], [], 30)[0]
        if not ready or self._proxy.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the delaying proxy did not start")

    @property
    def proc(self) -> subprocess.Popen[Any]:
        return self.sink.proc

    def close(self) -> None:
        if self._proxy.poll() is None:
            assert self._proxy.stdin is not None
            self._proxy.stdin.close()
            try:
                self._proxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proxy.kill()
                self._proxy.wait()
        self.sink.close()
