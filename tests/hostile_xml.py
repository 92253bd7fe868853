"""Hostile XML for the parser tests: entity expansion hidden behind a padded prolog."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

PADDING = 4 * 1024 * 1024  # a comment this long pushes the DOCTYPE past any head check


def _inject(feed: bytes, doctype: bytes, reference: bytes, marker: bytes) -> bytes:
    """`feed` with a 4 MB comment and `doctype` before its root, `reference` after `marker`."""
    root = feed.index(b"<", feed.index(b"?>") + 2 if feed.startswith(b"<?xml") else 0)
    while feed.startswith(b"<!--", root):  # keep the feed's own comments where they are
        root = feed.index(b"<", feed.index(b"-->", root) + 3)
    comment = b"<!--" + b"x" * PADDING + b"-->\n"
    body = feed[root:].replace(marker, marker + reference, 1)
    assert body != feed[root:], f"{marker!r} is not in the feed"
    return feed[:root] + comment + doctype + b"\n" + body


def expansion_attack(feed: bytes, marker: bytes, *, copies: int = 50_000) -> bytes:
    """One 4 KB internal entity referenced `copies` times after `marker`: 200 MB of text,
    yet under expat's amplification limit because the comment counts as input."""
    root_name = b"feed" if b"<feed" in feed else b"rss"
    doctype = b"<!DOCTYPE " + root_name + b' [<!ENTITY big "' + b"A" * 4000 + b'">]>'
    return _inject(feed, doctype, b"&big;" * copies, marker)


def billion_laughs(feed: bytes, marker: bytes) -> bytes:
    """The classic nested-entity bomb (10^9 'lol's), behind the same 4 MB comment."""
    levels = [b'<!ENTITY lol0 "lol">']
    levels += [b'<!ENTITY lol%d "%s">' % (n, b"&lol%d;" % (n - 1) * 10) for n in range(1, 10)]
    doctype = b"<!DOCTYPE lolz [" + b"".join(levels) + b"]>"
    return _inject(feed, doctype, b"&lol9;", marker)


def measured(parse: Callable[[], object]) -> tuple[BaseException | None, float, int]:
    """Run `parse`: (the exception it raised or None, seconds, peak bytes allocated)."""
    tracemalloc.start()
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        parse()
    except Exception as exc:
        error = exc
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, seconds, peak
