"""Build the e-mails: MIME structure, headers, Message-IDs and byte serialization (DKIM: dkim.py).

Every message is multipart/alternative (text, then HTML), UTF-8, quoted-printable, so no line
is ever longer than 76 octets whatever the HTML looks like, and serialized with CRLF line
endings (`email.policy.SMTP`, with one exception: `List-Unsubscribe` and `DKIM-Signature` are
folded at 998 octets instead of 78, because Python's folder would otherwise turn a long URL
into RFC 2047 encoded-words that no mail client can click).

Untrusted text never reaches a header raw: names, titles and config text go through
`clean_header_text` (every CR, LF, tab and other control character becomes a space); an address
that cannot be written into a header is refused with `RefusedMessage`, which the send loop
records as a failed send with its reason instead of crashing the run.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid
from typing import Protocol

import idna

from newsletter import links
from newsletter.config import Config
from newsletter.delivery.dkim import DKIMSigner
from newsletter.delivery.qp import qp_body, qp_lines
from newsletter.errors import DeliveryError
from newsletter.models import Subscriber

MAX_SUBJECT_CHARS = 200
_WIDE_HEADERS = frozenset({"list-unsubscribe", "dkim-signature"})


def _fold_plain(name: str, value: str, limit: int = 78) -> str | None:
    """Fold a printable-ASCII Subject at spaces (RFC 5322 folding), or None to let the
    email package do it. Much faster than the package's parser, and as correct."""
    if name.lower() != "subject" or "=?" in value or not (value.isascii() and value.isprintable()):
        return None
    words = value.split(" ")
    if "" in words or any(len(w) > limit - len(name) - 3 for w in words):
        return None
    lines, line = [], f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) <= limit or line == f"{name}:":
            line += " " + word
        else:
            lines.append(line)
            line = " " + word
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


class _DigestPolicy(EmailPolicy):
    """`email.policy.SMTP`, except that URL-carrying headers fold at 998 instead of 78 octets
    and a plain ASCII Subject is folded by `_fold_plain`."""

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _WIDE_HEADERS:
            return bytes(_WIDE.fold_binary(name, value))
        plain = _fold_plain(name, str(value))
        if plain is not None:
            return plain.encode("ascii")
        return bytes(super().fold_binary(name, value))

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _WIDE_HEADERS:
            return str(_WIDE.fold(name, value))
        plain = _fold_plain(name, str(value))
        if plain is not None:
            return plain
        return str(super().fold(name, value))


_WIDE = EmailPolicy(linesep="\r\n", max_line_length=998)
POLICY = _DigestPolicy(linesep="\r\n")


class RenderedLike(Protocol):
    """The shape of `render.RenderedEmail` that message building needs (read-only)."""

    @property
    def subject(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def html_parts(self) -> tuple[str, ...]: ...
    @property
    def text_parts(self) -> tuple[str, ...]: ...


class RefusedMessage(DeliveryError):
    """A message that cannot be built for this subscriber (e.g. an unusable address)."""


# ---------------------------------------------------------------- header hygiene


def clean_header_text(value: str, limit: int | None = None) -> str:
    """One line of printable text: control characters and line breaks become single spaces.

    "=?" becomes "= ?", so text can never pose as an RFC 2047 encoded-word (which a parser
    would decode, CR/LF and all).
    """
    value = value.replace("=?", "= ?")
    if value.isascii() and value.isprintable():
        text = " ".join(value.split())
        return text if limit is None or len(text) <= limit else text[: limit - 1].rstrip() + "…"
    out = []
    for ch in value:
        cat = unicodedata.category(ch)
        out.append(" " if cat in ("Cc", "Cf", "Zl", "Zp") or ch.isspace() else ch)
    text = " ".join("".join(out).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def header_address(email: str, name: str = "") -> Address:
    """An `Address` for From/To/Reply-To; raises RefusedMessage when it cannot be one safely."""
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in email) or " " in email:
        raise RefusedMessage(f"the address {email!r} contains spaces or control characters")
    local, sep, domain = email.rpartition("@")
    if not sep or not local or not domain:
        raise RefusedMessage(f"{email!r} is not an e-mail address (no local part or domain)")
    if not local.isascii():
        raise RefusedMessage(
            f"{email!r} has a non-ASCII local part, which needs SMTPUTF8: not supported"
        )
    try:
        # IDNA 2008, as email-validator checked it: Python's "idna" codec is IDNA 2003, which
        # turns straße.de into strasse.de, another domain.
        ascii_domain = domain if domain.isascii() else idna.encode(domain, uts46=True).decode()
        display = clean_header_text(name, 120)
        return Address(display_name=display, username=local, domain=ascii_domain)
    except (ValueError, UnicodeError) as exc:
        raise RefusedMessage(f"{email!r} cannot be written into a header: {exc}") from None


# ---------------------------------------------------------------- Message-IDs


def message_id_for(cfg: Config, subscriber_id: int, digest_date: date, *, variant: int = 0) -> str:
    """A stable Message-ID for one subscriber's digest of one date (a resend adds `variant`).

    The same inputs give the same ID in every run, so a retry after a lost acknowledgement
    carries the ID of the first attempt and a receiving system can drop the duplicate.
    """
    domain = clean_header_text(cfg.email.message_id_domain).replace(" ", "") or "localhost"
    seed = f"{subscriber_id}:{digest_date.isoformat()}:{variant}:{domain}".encode()
    tag = hashlib.sha256(seed).hexdigest()[:16]
    suffix = f".r{variant}" if variant else ""
    return f"<digest.{digest_date:%Y%m%d}.{tag}{suffix}@{domain}>"


def new_message_id(cfg: Config, kind: str = "mail") -> str:
    """A fresh, unique Message-ID for one-off mails (confirmation, notices)."""
    domain = clean_header_text(cfg.email.message_id_domain).replace(" ", "") or "localhost"
    return make_msgid(idstring=clean_header_text(kind).replace(" ", "-") or None, domain=domain)


# ---------------------------------------------------------------- building


def _qp_part(text: str, subtype: str) -> MIMEPart:
    """A text part encoded as quoted-printable by the C encoder (lines <= 76 octets)."""
    encoded = qp_lines(text)
    part = MIMEPart(policy=POLICY)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(encoded.decode("ascii"))
    return part


def list_unsubscribe_value(cfg: Config, subscriber: Subscriber) -> str:
    """`<https one-click URL>, <mailto:...>` (the mailto only when configured)."""
    parts = [f"<{links.unsubscribe_url(cfg, subscriber)}>"]
    mailto = links.unsubscribe_mailto(cfg, subscriber)
    if mailto:
        parts.append(f"<{mailto}>")
    return ", ".join(parts)


def message_headers(
    cfg: Config,
    subscriber: Subscriber,
    rendered: RenderedLike,
    *,
    message_id: str,
    kind: str = "digest",
    digest_date: date | None = None,
    now: datetime | None = None,
) -> list[tuple[str, str]]:
    """The top-level headers, in order, as clean one-line strings (shared by both builders)."""
    sender = header_address(cfg.email.from_address, cfg.email.from_name)
    headers = [
        ("From", str(sender)),
        ("To", str(header_address(subscriber.email, subscriber.name))),
        ("Subject", clean_header_text(rendered.subject, MAX_SUBJECT_CHARS) or cfg.site.name),
        ("Date", format_datetime(now or datetime.now(UTC))),
        ("Message-ID", message_id),
    ]
    if cfg.email.reply_to:
        headers.append(("Reply-To", str(header_address(cfg.email.reply_to))))
    if cfg.email.list_id:
        headers.append(("List-Id", clean_header_text(cfg.email.list_id)))
    if kind in ("digest", "welcome"):
        headers.append(("List-Unsubscribe", list_unsubscribe_value(cfg, subscriber)))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    if digest_date is not None:
        headers.append(("X-Newsletter-Digest", digest_date.isoformat()))
    headers.append(("MIME-Version", "1.0"))
    return headers


def boundary_for(message_id: str) -> str:
    return "=_part_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def build_message(
    cfg: Config,
    subscriber: Subscriber,
    rendered: RenderedLike,
    *,
    message_id: str,
    kind: str = "digest",
    digest_date: date | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The complete e-mail for one subscriber: multipart/alternative, text then HTML.

    `kind` is "digest", "welcome", "confirm" or "notice"; confirmation mails and notices carry
    no List-Unsubscribe (there is no subscription to leave yet, or any more).
    """
    msg = EmailMessage(policy=POLICY)
    for name, value in message_headers(
        cfg,
        subscriber,
        rendered,
        message_id=message_id,
        kind=kind,
        digest_date=digest_date,
        now=now,
    ):
        try:
            msg[name] = value
        except ValueError as exc:  # the email package refused it: never crash the run
            raise RefusedMessage(f"cannot write the {name} header: {exc}") from None
    msg["Content-Type"] = "multipart/alternative"
    msg.set_payload([_qp_part(rendered.text, "plain"), _qp_part(rendered.html, "html")])
    msg.set_boundary(boundary_for(message_id))
    return msg


# ---------------------------------------------------------------- the fast serializer

# Values the email package would write unchanged: printable ASCII, no encoded-word look-alike.
_PLAIN_VALUE = re.compile(r"[\x20-\x7e]*")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")


def _fold_header(name: str, value: str) -> bytes:
    """Exactly what `POLICY` writes for one header, without its parser when it is not needed."""
    limit = 998 if name.lower() in _WIDE_HEADERS else 78
    simple = (
        len(name) + 2 + len(value) <= limit
        and "=?" not in value
        and _PLAIN_VALUE.fullmatch(value) is not None
        and (name not in ("To", "From", "Reply-To") or _plain_address(value))
    )
    if simple:
        return f"{name}: {value}\r\n".encode("ascii")
    plain = _fold_plain(name, value)
    if plain is not None:
        return plain.encode("ascii")
    return POLICY.fold_binary(*POLICY.header_store_parse(name, value))


def _plain_address(value: str) -> bool:
    display, sep, _rest = value.partition(" <")
    if not sep:
        return "<" not in value and '"' not in value
    return _PLAIN_NAME.fullmatch(display) is not None and '"' not in display


def render_bytes(
    cfg: Config,
    subscriber: Subscriber,
    rendered: RenderedLike,
    *,
    message_id: str,
    kind: str = "digest",
    digest_date: date | None = None,
    now: datetime | None = None,
    signer: DKIMSigner | None = None,
) -> bytes:
    """`to_bytes(build_message(...))`, byte for byte, about twenty times faster.

    The send loop uses this; tests check the two agree on plain and on hostile input.
    """
    headers = message_headers(
        cfg,
        subscriber,
        rendered,
        message_id=message_id,
        kind=kind,
        digest_date=digest_date,
        now=now,
    )
    boundary = boundary_for(message_id).encode("ascii")
    try:
        out = [_fold_header(n, v) for n, v in headers]
    except ValueError as exc:  # the email package refused a header: never crash the run
        raise RefusedMessage(f"cannot write the message headers: {exc}") from None
    out.append(b'Content-Type: multipart/alternative;\r\n boundary="' + boundary + b'"\r\n\r\n')
    bodies = (
        (b"plain", rendered.text, rendered.text_parts),
        (b"html", rendered.html, rendered.html_parts),
    )
    for subtype, body, parts in bodies:
        out.append(b"--" + boundary + b"\r\n")
        out.append(b"Content-Type: text/" + subtype + b'; charset="utf-8"\r\n')
        out.append(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        out.append(qp_body(body, parts))
        out.append(b"\r\n")
    out.append(b"--" + boundary + b"--\r\n")
    raw = b"".join(out)
    return signer.sign(raw) if signer is not None else raw


# ---------------------------------------------------------------- serializing and DKIM


def to_bytes(msg: EmailMessage, signer: DKIMSigner | None = None) -> bytes:
    """Serialize with CRLF line endings (never the default policy's bare LF), DKIM-signed."""
    raw = msg.as_bytes(policy=POLICY)
    return signer.sign(raw) if signer is not None else raw


def envelope_of(msg: EmailMessage) -> tuple[str, list[str]]:
    """(MAIL FROM, [RCPT TO]) taken from the From and To headers."""
    sender = msg["From"].addresses[0].addr_spec
    recipients = [a.addr_spec for a in msg["To"].addresses]
    return sender, recipients
