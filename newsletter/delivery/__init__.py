"""Delivery: mailers (SMTP, Maildir), MIME and headers, the send ledger's rules, the run lock.

The only package that talks SMTP. What other stages use is re-exported here; the modules:
`mime` builds the bytes, `mailer` says what a mailer is, `smtp` and `maildir` are the two,
`ledger` holds the claim → sent / retry / failed / bounced rules, `dispatch` is the send loop
(parallel connections, rate limit, retries), `lock` keeps runs from overlapping.
"""

from newsletter.delivery.dispatch import SendRate, backoff_delay, deliver, iter_chunks
from newsletter.delivery.dkim import DKIMSigner
from newsletter.delivery.ledger import DeliveryReport, Ledger, Outgoing
from newsletter.delivery.maildir import MaildirMailer
from newsletter.delivery.mailer import Mailer, MailSession, mailer_from_config
from newsletter.delivery.mime import (
    RefusedMessage,
    build_message,
    message_id_for,
    new_message_id,
    render_bytes,
)
from newsletter.delivery.smtp import ConnectionFailed, SMTPMailer

__all__ = [
    "ConnectionFailed",
    "DKIMSigner",
    "DeliveryReport",
    "Ledger",
    "MailSession",
    "MaildirMailer",
    "Mailer",
    "Outgoing",
    "RefusedMessage",
    "SMTPMailer",
    "SendRate",
    "backoff_delay",
    "build_message",
    "deliver",
    "iter_chunks",
    "mailer_from_config",
    "message_id_for",
    "new_message_id",
    "render_bytes",
]
