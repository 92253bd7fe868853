"""The send bench's far relay: a proxy that holds each direction for half a round trip and
passes the SMTP session through unchanged."""

from __future__ import annotations

import smtplib
import time

from newsletter.bench.latency import Distant
from newsletter.bench.sinks import Sink


def test_the_proxy_adds_its_round_trip_and_carries_a_whole_session() -> None:
    far = Distant(Sink(prefer_smtp_sink=False), rtt_ms=200)
    try:
        with smtplib.SMTP("127.0.0.1", far.port, timeout=10) as smtp:
            smtp.ehlo()
            start = time.monotonic()
            for _ in range(3):
                assert smtp.noop()[0] == 250
            took = time.monotonic() - start
            assert took >= 3 * 0.2 * 0.95, took  # a floor: a round trip cannot come sooner
            body = b"Subject: x\r\n\r\n" + b"line\r\n" * 20_000  # several TCP chunks
            assert smtp.sendmail("a@example.org", ["b@example.org"], body) == {}
        assert far.proc is far.sink.proc  # the bench reads the sink's own CPU
    finally:
        far.close()
    assert far.sink.proc.poll() is not None and far._proxy.poll() is not None
