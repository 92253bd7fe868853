"""A Maildir outbox (`delivery.method = "maildir:PATH"`): each message a file, for demos and
for operators whose MTA picks mail up from disk."""

from __future__ import annotations

import mailbox
import threading
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from newsletter.delivery.dkim import DKIMSigner
from newsletter.delivery.mailer import send_one
from newsletter.errors import DeliveryError


class MaildirSession:
    def __init__(self, mailer: MaildirMailer) -> None:
        self.mailer = mailer

    def send_raw(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        del sender, recipients  # a Maildir keeps the message; the envelope is in its headers
        self.mailer.store(raw)

    def close(self) -> None:
        pass


class MaildirMailer:
    """Outbox mode (`delivery.method = "maildir:PATH"`): each message becomes a Maildir file."""

    def __init__(self, path: Path, signer: DKIMSigner | None = None, connections: int = 1) -> None:
        self.path = Path(path)
        self.signer = signer
        self.connections = connections
        self._lock = threading.Lock()
        try:
            self.maildir = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create the outbox Maildir {self.path}: {exc.strerror}"
            ) from None

    def store(self, raw: bytes) -> str:
        with self._lock:  # Maildir's unique-name counter is not thread-safe
            try:
                return self.maildir.add(raw)
            except OSError as exc:
                raise DeliveryError(
                    f"cannot write to the outbox {self.path}: {exc.strerror}", temporary=True
                ) from None

    def open_session(self) -> MaildirSession:
        return MaildirSession(self)

    def send(self, message: EmailMessage) -> None:
        send_one(self, message)
