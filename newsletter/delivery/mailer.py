"""What a mailer is (the protocols the send loop uses) and which one the config asks for."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

from newsletter.config import Config
from newsletter.delivery.dkim import DKIMSigner
from newsletter.delivery.mime import envelope_of, to_bytes

if TYPE_CHECKING:
    from newsletter.delivery.maildir import MaildirMailer
    from newsletter.delivery.smtp import SMTPMailer


class MailSession(Protocol):
    """One open connection (or outbox handle) that sends many messages in turn."""

    def send_raw(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class Mailer(Protocol):
    """Sends messages: `send` for one message, `open_session` for many over one connection."""

    connections: int
    signer: DKIMSigner | None

    def send(self, message: EmailMessage) -> None: ...

    def open_session(self) -> MailSession: ...


def send_one(mailer: Mailer, message: EmailMessage) -> None:
    sender, recipients = envelope_of(message)
    session = mailer.open_session()
    try:
        session.send_raw(to_bytes(message, mailer.signer), sender, recipients)
    finally:
        session.close()


def mailer_from_config(cfg: Config) -> SMTPMailer | MaildirMailer:
    """The mailer `delivery.method` asks for: "smtp" or "maildir:PATH"."""
    # Imported here: both mailers build on `send_one` above.
    from newsletter.delivery.maildir import MaildirMailer
    from newsletter.delivery.smtp import SMTPMailer

    signer = DKIMSigner.from_config(cfg)
    method = cfg.delivery.method
    if method.startswith("maildir:"):
        return MaildirMailer(cfg.path(method.removeprefix("maildir:")), signer)
    return SMTPMailer(cfg, signer)
