"""Unsubscribe requests that arrive by e-mail: the `mailto:` half of List-Unsubscribe.

Every digest's List-Unsubscribe header offers `mailto:<email.unsubscribe_mailto>?subject=
unsubscribe%20<token>`, with the same signed, purpose-bound token as the web link. A mail
client (or the mailbox provider's unsubscribe button) sends a message with that subject to
the mailbox; the MTA pipes it to `newsletter inbound`, which calls `receive` here: bytes in,
an `Outcome` out, whose `status` is the exit status the MTA acts on.

The token is the only proof. The sender's address is not: anyone can put any address in
From:, so a message without a valid token unsubscribes nobody, whoever it claims to be from.
Automatic mail (bounces, out-of-office replies) without a valid token is consumed quietly, so
that refusing it cannot start a loop of automatic replies.
"""

from __future__ import annotations

import email.policy
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import BinaryIO
from urllib.parse import unquote_plus

from newsletter.errors import NewsletterError
from newsletter.models import SubscriberStatus
from newsletter.store.errors import DATABASE_ERRORS
from newsletter.subscriptions import Subscriptions
from newsletter.tokens import TokenError, read_token

log = logging.getLogger(__name__)

# sysexits.h, as MTAs read a delivery command's exit status.
EX_OK = 0  # delivered (consumed)
EX_DATAERR = 65  # a bad message: the MTA returns it to the sender with our reason
EX_TEMPFAIL = 75  # try again later: the MTA keeps the message queued

MAX_HEADER_BYTES = 256 * 1024  # the request is in the headers; the rest is read and dropped
MAX_TOKEN_CHARS = 2048  # as for the web links
# "unsubscribe <token>" anywhere in the subject, so "Re: " or a "[SPAM]" tag does not matter.
# Tokens are URL-safe base64 parts joined by dots (itsdangerous).
_SUBJECT_TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_=.-]+)", re.IGNORECASE)
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_AUTOMATIC_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder")
_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})

HOW_TO = (
    'send "unsubscribe <token>" as the subject, as the List-Unsubscribe mailto: of a digest '
    "does, or use the unsubscribe link at the bottom of any digest"
)

# What a bad message or an unavailable store does: answered, logged, nothing lost.
_HANDLED: tuple[type[Exception], ...] = (NewsletterError, OSError, *DATABASE_ERRORS)


@dataclass(frozen=True)
class Outcome:
    """What `receive` did with one message, as the one line to print and the exit status."""

    status: int
    message: str
    subscriber_id: int | None = None
    unsubscribed: bool = False


def read_message(stream: BinaryIO) -> bytes:
    """The start of a message from a pipe; the rest is read too (an MTA expects the whole
    message taken) and dropped."""
    head = stream.read(MAX_HEADER_BYTES)
    while stream.read(64 * 1024):
        pass
    return head


def subject_token(message: EmailMessage) -> str:
    """The token in an "unsubscribe <token>" subject, or "" when there is none."""
    subject = unquote_plus(str(message.get("Subject", "")))  # some clients keep the %20
    found = _SUBJECT_TOKEN.search(subject)
    token = found.group(1).rstrip(".") if found else ""
    return token if len(token) <= MAX_TOKEN_CHARS else ""


def automatic(message: EmailMessage) -> str:
    """Why a message looks sent by a machine (a bounce, an auto-reply), or "" (RFC 3834)."""
    submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    if submitted and not submitted.startswith("no"):
        return f"Auto-Submitted: {submitted}"
    if message.get_content_type() == "multipart/report":
        return "a delivery report"
    if str(message.get("Return-Path", "")).strip() == "<>":
        return "a null return path (a bounce)"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in _AUTOMATIC_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in _AUTOMATIC_HEADERS:
        if name in message:
            return f"an {name} header"
    sender = str(message.get("From", "")).rpartition("<")[2].split("@")[0].strip().lower()
    if sender in _BOUNCE_SENDERS:
        return f"from {sender}"
    return ""


def _parse(raw: bytes) -> EmailMessage:
    parser = BytesHeaderParser(policy=email.policy.default)
    return parser.parsebytes(raw[:MAX_HEADER_BYTES])


def receive(raw: bytes, open_subscriptions: Callable[[], Subscriptions]) -> Outcome:
    """Unsubscribe the subscriber whose signed token is in this message's subject.

    `open_subscriptions` loads the configuration and opens the store; it is called only for a
    message that carries a token, so a malformed message is refused even while the database
    is unavailable. Never raises for what the message contains.
    """
    try:
        message = _parse(raw)
        token, machine = subject_token(message), automatic(message)
    except Exception as exc:  # untrusted bytes: any parser failure is a bad message
        return Outcome(EX_DATAERR, f"refused: the message could not be read ({exc})")
    if not token:
        if machine:
            return Outcome(EX_OK, f"ignored: an automatic message ({machine}) with no token")
        return Outcome(
            EX_DATAERR,
            "refused: no unsubscribe token in the subject (the sender's address is not "
            f"enough: anyone can write any From:); {HOW_TO}",
        )
    try:
        return _unsubscribe(open_subscriptions(), token, machine)
    except _HANDLED as exc:
        log.info("inbound unsubscribe deferred: %s", exc)
        return Outcome(EX_TEMPFAIL, f"deferred: cannot unsubscribe now ({exc}); try again later")


def _unsubscribe(people: Subscriptions, token: str, machine: str) -> Outcome:
    try:
        data = read_token(people.cfg.require_secret_key(), "unsubscribe", token)
    except TokenError as exc:
        what = "has expired" if exc.expired else "is not valid (cut or changed)"
        if machine:
            return Outcome(EX_OK, f"ignored: an automatic message ({machine}) whose token {what}")
        return Outcome(EX_DATAERR, f"refused: the unsubscribe token {what}; {HOW_TO}")
    sub = people.holder(data)
    if sub is None:
        return Outcome(EX_OK, "nothing to do: that subscription no longer exists")
    was_receiving = sub.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED)
    if not people.unsubscribe(sub):
        return Outcome(EX_OK, f"{sub.email} was already unsubscribed", sub.id)
    log.info("unsubscribed subscriber %s by e-mail", sub.id)
    if was_receiving:
        people.notify_unsubscribed(sub)  # the notice's way back; a failure is only logged
    return Outcome(EX_OK, f"unsubscribed {sub.email}", sub.id, unsubscribed=True)
