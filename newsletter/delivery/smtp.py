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
from newsletter.delivery.mime import RefusedMessage, header_address
from newsletter.errors import DeliveryError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, SizedBuffer

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

    def getreply(self) -> tuple[int, bytes]:
        """smtplib's reply, where one that cannot be read is a lost connection: smtplib
        raises "500 Line too long" after closing the socket, and gives code -1 for a line
        that does not start with one; either way the replies are no longer in step."""
        try:
            code, msg = super().getreply()
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise smtplib.SMTPServerDisconnected(f"unreadable reply ({exc})") from None
        if not 200 <= code < 600:
            self.close()
            raise smtplib.SMTPServerDisconnected(f"unreadable reply {code} {msg!r}")
        return code, msg

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        if not isinstance(msg, bytes) or self.debuglevel > 0:
            return super().data(msg)
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            self._refused(0, code)  # smtplib's `sendmail` would leave the transaction open
            raise smtplib.SMTPDataError(code, reply)
        return self._body(msg)

    def _body(self, msg: bytes) -> tuple[int, bytes]:
        """The message after the server's 354, and the server's reply to it."""
        body = dot_stuffed(msg)
        self.send(body + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"))
        return self.getreply()

    def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Sequence[str],
        msg: SizedBuffer | str,
        mail_options: Sequence[str] = (),
        rcpt_options: Sequence[str] = (),
    ) -> dict[str, tuple[int, bytes]]:
        """smtplib's `sendmail`, with MAIL, RCPT and DATA sent in one go to a server that
        offers PIPELINING (RFC 2920): two round trips a message instead of four. The same
        replies raise the same exceptions, and the message itself goes only after the
        server's 354. Either way a refusal leaves no transaction open on the connection."""
        self.ehlo_or_helo_if_needed()
        plain = isinstance(msg, bytes) and not mail_options and not rcpt_options
        if not plain or isinstance(to_addrs, str) or self.debuglevel > 0:
            return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)
        assert isinstance(msg, bytes)
        from_addr = _envelope(from_addr, sender=True)
        to_addrs = [_envelope(a) for a in to_addrs]
        if not (self.does_esmtp and self.has_extn("pipelining")):
            return super().sendmail(from_addr, to_addrs, msg)
        return self._pipelined(from_addr, to_addrs, msg)

    def _pipelined(
        self, from_addr: str, to_addrs: Sequence[str], msg: bytes
    ) -> dict[str, tuple[int, bytes]]:
        size = f" size={len(msg)}" if self.has_extn("size") else ""
        commands = [f"mail FROM:{quote_address(from_addr)}{size}"]
        commands += [f"rcpt TO:{quote_address(a)}" for a in to_addrs]
        self.send("\r\n".join([*commands, "data\r\n"]))
        code, resp = self.getreply()
        if code != 250:
            self._refused(len(to_addrs) + 1, code)
            raise smtplib.SMTPSenderRefused(code, resp, from_addr)
        refused: dict[str, tuple[int, bytes]] = {}
        for each in to_addrs:
            code, resp = self.getreply()
            if code not in (250, 251):
                refused[each] = (code, resp)
            if code == 421:
                self._refused(0, code)
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(to_addrs):
            self._end_without_recipients()
            raise smtplib.SMTPRecipientsRefused(refused)
        code, resp = self.getreply()  # to DATA
        if code != 354:
            self._refused(0, code)
            raise smtplib.SMTPDataError(code, resp)
        code, resp = self._body(msg)
        if code != 250:
            self._refused(0, code)
            raise smtplib.SMTPDataError(code, resp)
        return refused

    def _end_without_recipients(self) -> None:
        """Every RCPT refused: read the reply to DATA (a server that takes it anyway gets the
        message's end at once, RFC 2920 3.1), then reset."""
        try:
            code = self.getreply()[0]
            if code == 354:
                self.send(b".\r\n")
                code = self.getreply()[0]
        except smtplib.SMTPServerDisconnected:  # the refusals stand; the connection is gone
            code = 421
        self._refused(0, code)

    def _rset(self) -> None:
        """smtplib's own reset after a refusal (MAIL, every RCPT, the message), which ignores
        the reply: here a reset that is not answered 250 closes the connection."""
        self._refused(0, 0)

    def _refused(self, pending: int, code: int) -> None:
        """After a refusal: read the replies still owed to pipelined commands, then reset the
        transaction (as smtplib does), or close when the server is closing (421) or gone."""
        try:
            for _ in range(0 if code == 421 else pending):
                if self.getreply()[0] == 421:
                    code = 421
                    break
        except smtplib.SMTPServerDisconnected:
            code = 421
        if code != 421:
            try:
                code = self.rset()[0]
            except smtplib.SMTPServerDisconnected:
                code = 421
        if code != 250:  # closing, gone, or a reset refused: start afresh next time
            self.close()


def _envelope(address: str, *, sender: bool = False) -> str:
    """`address` as SMTP commands carry it: the address the message's headers name
    (`mime.header_address`: an internationalised domain in its ASCII form, no control
    character, so no line break); UnwritableAddress when no header can name it (control
    characters or spaces, a non-ASCII local part)."""
    try:
        return header_address(address).addr_spec
    except RefusedMessage:
        raise UnwritableAddress(address, sender=sender) from None


class UnwritableAddress(ValueError):
    """An envelope address that cannot go into an SMTP command: a line break (it would add a
    command of its own) or a character beyond ASCII in its local part (that needs SMTPUTF8,
    which we do not speak). `sender`: it is the sender's, so no message can go."""

    def __init__(self, address: str, *, sender: bool) -> None:
        super().__init__(f"the address {address!r} cannot be written in an SMTP command")
        self.sender = sender


class _CommandsSSL(_Commands, smtplib.SMTP_SSL):
    """`_Commands` over implicit TLS."""


class ConnectionFailed(DeliveryError):
    """The server could not be reached or refused us as a client (not one message's fault)."""


# RFC 3463: the enhanced status codes that say the recipient's mailbox is the trouble (bad
# mailbox, system or address, moved; no mail accepted, RFC 7505; disabled or full). Others are
# about the message or about us: 5.1.7 / 5.1.8 our sender, 5.2.3 too big, 5.3.x the system,
# 5.6.x content, 5.7.x policy (relaying denied, refused as spam).
_STATUS = re.compile(r"\d{3}\s+([245])\.(\d{1,3})\.(\d{1,3})\b")
_MAILBOX = {(1, n) for n in (0, 1, 2, 3, 4, 5, 6, 10)} | {(2, 1), (2, 2)}


def _about_the_mailbox(reply: str, *, at_rcpt: bool) -> bool:
    """Whether a permanent refusal is the recipient's, so it counts toward bounces: by its
    enhanced status code when it has one; without one, a refusal at RCPT is taken to be the
    mailbox's and one after the message the message's."""
    status = _STATUS.match(reply)
    if status is None:
        return at_rcpt
    return (int(status[2]), int(status[3])) in _MAILBOX


def _too_big(reply: str) -> bool:
    """A permanent refusal of the message's size (552, or status 5.2.3 / 5.3.4), which a
    server that offers SIZE gives to MAIL already."""
    status = _STATUS.match(reply)
    if status is not None and status[1] == "5":
        return (int(status[2]), int(status[3])) in {(2, 3), (3, 4)}
    return reply.startswith("552")


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
            try:
                if s.security == "starttls":
                    conn.ehlo()
                    conn.starttls(context=ssl.create_default_context())
                conn.ehlo_or_helo_if_needed()
                if s.username:
                    conn.login(s.username, self.cfg.smtp_password)
            except BaseException:
                conn.close()  # the socket, not left to the garbage collector
                raise
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
            self._send(self.smtp, raw, sender, recipients)
        finally:
            if self.smtp is not None and self.smtp.sock is None:  # smtplib closed it (a 421)
                self.smtp = None  # the next message opens a new connection

    def _send(self, smtp: smtplib.SMTP, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        try:
            smtp.sendmail(sender, list(recipients), raw)
        except UnwritableAddress as exc:
            if exc.sender:  # no message can go: stop the run, lose nobody
                raise ConnectionFailed(f"{exc}: check email.from_address") from None
            raise DeliveryError(str(exc)) from None  # never deliverable by us: a bounce
        except smtplib.SMTPRecipientsRefused as exc:
            code, msg = next(iter(exc.recipients.values()))
            self._raise_reply(code, msg, "refused the recipient", at_rcpt=True)
        except smtplib.SMTPSenderRefused as exc:
            reply = _reply_text(exc.smtp_code, exc.smtp_error)
            if _too_big(reply):  # MAIL's SIZE: this message's refusal, not the sender's
                raise DeliveryError(
                    f"the SMTP server refused the message's size: {reply}",
                    reply=reply,
                    bounce=False,
                ) from None
            raise ConnectionFailed(
                f"the SMTP server refused the sender {sender!r}: check email.from_address",
                temporary=400 <= exc.smtp_code < 500,
                reply=reply,
            ) from None
        except smtplib.SMTPResponseException as exc:  # before OSError: it is one too
            if exc.smtp_code == 421:  # the server is closing the connection
                self.close()
            self._raise_reply(exc.smtp_code, exc.smtp_error, "refused the message", at_rcpt=False)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            raise DeliveryError(
                f"connection lost: {exc or type(exc).__name__}", temporary=True
            ) from None

    def _raise_reply(self, code: int, msg: bytes | str, what: str, *, at_rcpt: bool) -> None:
        reply = _reply_text(code, msg)
        temporary = not 500 <= code < 600
        raise DeliveryError(
            f"the SMTP server {what}: {reply}",
            temporary=temporary,
            reply=reply,
            bounce=not temporary and _about_the_mailbox(reply, at_rcpt=at_rcpt),
        )

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
