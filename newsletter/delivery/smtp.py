"""SMTP: one reusable connection per sending thread (STARTTLS, implicit TLS or plain; login).

The only module that talks to an SMTP server.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING

from newsletter.config import Config
from newsletter.delivery.dkim import DKIMSigner
from newsletter.delivery.mailer import send_one
from newsletter.errors import DeliveryError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

# An addr-spec made of dot-atoms, which smtplib's `quoteaddr` (an RFC 5322 parser, ~10 us)
# would return as "<addr>": e.g. reader@example.org. Anything else still goes through it.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def quote_address(address: str) -> str:
    """`smtplib.quoteaddr(address)`, without its parser for a plain address."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def dot_stuffed(raw: bytes) -> bytes:
    """`raw` with every line that starts with "." given a second one (RFC 5321 4.5.2), as
    smtplib's `_quote_periods` does with a regular expression that costs ~0.4 ms for a
    50 KB digest (every digest has such lines: soft line breaks fall anywhere)."""
    stuffed = raw.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


class _Commands(smtplib.SMTP):
    """smtplib's MAIL, RCPT and DATA with the same bytes on the wire, computed faster: the
    sending process does this for every message, on the thread that also waits for replies."""

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        if options:
            return super().mail(sender, options)
        self.putcmd("mail", f"FROM:{quote_address(sender)}")
        return self.getreply()

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        if options:
            return super().rcpt(recip, options)
        self.putcmd("rcpt", f"TO:{quote_address(recip)}")
        return self.getreply()

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        if not isinstance(msg, bytes) or self.debuglevel > 0:
            return super().data(msg)
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        body = dot_stuffed(msg)
        self.send(body + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"))
        return self.getreply()


class _CommandsSSL(_Commands, smtplib.SMTP_SSL):
    """`_Commands` over implicit TLS."""


class ConnectionFailed(DeliveryError):
    """The server could not be reached or refused us as a client (not one message's fault)."""


def _reply_text(code: int, msg: bytes | str) -> str:
    text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return f"{code} {' '.join(text.split())}".strip()


class SMTPSession:
    """One SMTP connection, opened lazily, reused, and reopened after it drops."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.cfg.smtp
        where = f"{s.host}:{s.port}"
        try:
            if s.security == "ssl":
                conn: smtplib.SMTP = _CommandsSSL(
                    s.host, s.port, timeout=s.timeout_seconds, context=ssl.create_default_context()
                )
            else:
                conn = _Commands(s.host, s.port, timeout=s.timeout_seconds)
                if s.security == "starttls":
                    conn.ehlo()
                    conn.starttls(context=ssl.create_default_context())
            conn.ehlo_or_helo_if_needed()
            if s.username:
                conn.login(s.username, self.cfg.smtp_password)
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectionFailed(
                f"the SMTP server {where} refused the login for {s.username!r}: check "
                "smtp.username and NEWSLETTER_SMTP_PASSWORD",
                reply=_reply_text(exc.smtp_code, exc.smtp_error),
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectionFailed(
                f"the SMTP server {where} does not support {exc}: check smtp.security "
                '("starttls", "ssl" or "none") and smtp.username'
            ) from None
        except ssl.SSLError as exc:
            raise ConnectionFailed(
                f"TLS with {where} failed ({exc.reason or exc}): check smtp.security and smtp.port"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise ConnectionFailed(
                f"the SMTP server {where} refused the connection",
                temporary=400 <= exc.smtp_code < 500,
                reply=_reply_text(exc.smtp_code, exc.smtp_error),
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailed(
                f"cannot connect to the SMTP server {where}: {exc or type(exc).__name__}",
                temporary=True,
            ) from None
        return conn

    def send_raw(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        if self.smtp is None:
            self.smtp = self._connect()
        try:
            self.smtp.sendmail(sender, list(recipients), raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, msg = next(iter(exc.recipients.values()))
            self._raise_reply(code, msg, "refused the recipient")
        except smtplib.SMTPSenderRefused as exc:
            raise ConnectionFailed(
                f"the SMTP server refused the sender {sender!r}: check email.from_address",
                temporary=400 <= exc.smtp_code < 500,
                reply=_reply_text(exc.smtp_code, exc.smtp_error),
            ) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            raise DeliveryError(
                f"connection lost: {exc or type(exc).__name__}", temporary=True
            ) from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is closing the connection
                self.close()
            self._raise_reply(exc.smtp_code, exc.smtp_error, "refused the message")

    def _raise_reply(self, code: int, msg: bytes | str, what: str) -> None:
        reply = _reply_text(code, msg)
        temporary = not 500 <= code < 600
        raise DeliveryError(f"the SMTP server {what}: {reply}", temporary=temporary, reply=reply)

    def close(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.quit()
            with contextlib.suppress(OSError):
                self.smtp.close()
            self.smtp = None


class SMTPMailer:
    """SMTP delivery: host, port, security (starttls | ssl | none), optional login."""

    def __init__(self, cfg: Config, signer: DKIMSigner | None = None) -> None:
        self.cfg = cfg
        self.connections = cfg.smtp.connections
        self.signer = signer

    def open_session(self) -> SMTPSession:
        return SMTPSession(self.cfg)

    def send(self, message: EmailMessage) -> None:
        """Send one message on its own connection (confirmation mails, notices)."""
        send_one(self, message)
