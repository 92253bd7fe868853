"""Helpers for the interest-model tests: a config with a real SMTP port, papers written into a
real SQLite file, `newsletter send` run through click, and the received mails parsed back."""

from __future__ import annotations

import email.message
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from click.testing import CliRunner, Result

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.models import Interest, InterestKind, Paper, SubscriberStatus
from newsletter.store import Database
from tests.conftest import SECRET, SMTPSink
from tests.test_send import write_config

__all__ = ["write_config"]

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def env(config: Path) -> dict[str, str]:
    return {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_CONFIG": str(config)}


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env(config))


def paper(
    pid: str, title: str, day: date, authors: Sequence[str] = (), upvotes: int | None = None
) -> Paper:
    return Paper(
        id=pid,
        title=title,
        abstract=f"{title}. We study this and report results.",
        authors=tuple(authors),
        upvotes=upvotes,
        categories=("cs.LG",),
        announced=day,
        announce_type="new",
        abs_url=f"https://arxiv.org/abs/{pid}",
        sources=("arxiv_rss",),
    )


# Stored papers the library fixtures name (real arXiv IDs and titles).
DAY_PAPERS = [
    paper("1706.03762", "Attention Is All You Need", date(2017, 6, 12), ["Ashish Vaswani"]),
    paper("2005.14165", "Language Models are Few-Shot Learners", date(2020, 5, 28), ["T. Brown"]),
    paper(
        "1810.04805", "BERT: Pre-training of Deep Bidirectional Transformers", date(2018, 10, 11)
    ),
]


def store_of(config: Path) -> Database:
    return Database(load_config(str(config)).database_path)


def add_reader(
    store: Database, address: str, interests: Sequence[tuple[InterestKind, str]], size: int = 10
) -> int:
    sub, _ = store.subscribers.add(address, NOW, status=SubscriberStatus.ACTIVE, digest_size=size)
    store.subscribers.set_interests(sub.id, [Interest(k, v) for k, v in interests], NOW)
    return sub.id


def texts_by_recipient(sink: SMTPSink) -> dict[str, str]:
    out: dict[str, str] = {}
    for rec, msg in zip(sink.received, sink.messages(), strict=True):
        part = msg.get_body(preferencelist=("plain",))
        assert isinstance(part, email.message.EmailMessage)
        for rcpt in rec["to"]:
            out[rcpt] = str(part.get_content())
    return out


def unwrap(text: str) -> str:
    """The text part's wrapped lines joined, so a reason can be searched as one string."""
    return " ".join(text.split())
