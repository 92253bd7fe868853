"""Quoted-printable bodies (RFC 2045: no line over 76 octets whatever the HTML looks like),
by the C encoder, with the encoding of text that many messages share kept.

Quoted-printable works line by line (a soft break, an encoded space before a line break: all
within one line), so a piece of text that starts and ends at a line break encodes the same
alone as inside the body. A rendered digest comes in such pieces (`render.cards`): each
paper's card is `SharedText`, encoded once and reused in every digest that carries it.
"""

from __future__ import annotations

import binascii

from newsletter.models import SharedText


def qp_whole(text: str) -> bytes:
    """`text` as a quoted-printable body: UTF-8, lines of at most 76 octets, CRLF."""
    return qp_lines(text).replace(b"\n", b"\r\n")


def qp_lines(text: str) -> bytes:
    """`qp_whole` with LF line ends (for the email package, which writes its own)."""
    return _qp_lf(text if text.endswith("\n") else text + "\n")


def _qp_lf(text: str) -> bytes:
    """Quoted-printable with LF line ends (the caller makes them CRLF), by the C encoder."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False)


_SHARED_QP: dict[SharedText, bytes] = {}
SHARED_QP_ENTRIES = 32_768  # the cache starts over when full


def qp_body(text: str, parts: tuple[str, ...] = ()) -> bytes:
    """`qp_whole(text)`, byte for byte, where `parts` is `text` in pieces: the `SharedText`
    pieces that stand at line breaks are encoded once and reused."""
    if not parts or sum(map(len, parts)) != len(text):
        return qp_whole(text)
    out: list[bytes] = []
    run: list[str] = []
    for part in parts:
        whole_lines = part.endswith("\n") and (not run or run[-1].endswith("\n"))
        if type(part) is not SharedText or not whole_lines:
            run.append(part)
            continue
        if run:
            out.append(_qp_lf("".join(run)))
            run = []
        encoded = _SHARED_QP.get(part)
        if encoded is None:
            if len(_SHARED_QP) >= SHARED_QP_ENTRIES:
                _SHARED_QP.clear()
            encoded = _SHARED_QP[part] = _qp_lf(part)
        out.append(encoded)
    tail = "".join(run) + ("" if text.endswith(("\n", "\r")) else "\n")  # as `qp_whole`
    if tail:
        out.append(_qp_lf(tail))
    return b"".join(out).replace(b"\n", b"\r\n")
