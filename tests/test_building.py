"""Building messages in worker processes gives the very bytes building them here gives,
whatever the workers were handed up front; small runs build in the sending process."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from newsletter.building import (
    Builders,
    BuildRequest,
    Built,
    MessageBuilder,
    Outcome,
    ProcessBuilders,
    builders_for,
)
from newsletter.delivery import message_id_for
from newsletter.render.renderer import Renderer
from tests.conftest import make_config
from tests.render_factory import corpus, make_digest, paper, subscriber

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def _requests(cfg_path: Path) -> tuple[list[BuildRequest], list]:  # type: ignore[type-arg]
    rows = corpus()
    papers = [paper(i, rows[i % len(rows)]) for i in range(12)]
    held = papers[:10]  # the workers are handed these up front
    changed = replace(papers[3], title="A title changed since the workers were started")
    reqs = []
    for k in range(40):
        mine = [changed if (k % 5 == 0 and p is papers[3]) else p for p in papers[k % 3 :][:8]]
        mine.append(papers[10 + k % 2])  # a paper the workers were not handed
        sub = subscriber(100 + k, f"reader{k}@example.org", f"Réader “{k}”")
        if k == 17:
            sub = replace(sub, email="bad@exa\nmple.org")  # the email package refuses it
        digest = make_digest(len(mine) - 3, 3, sub=sub, papers=mine)
        mid = message_id_for(make_config(cfg_path), sub.id, digest.date)
        reqs.append(BuildRequest(digest, k % 4 == 0, mid, NOW))
    return reqs, held


# a signed token's time stamp and signature: they tick with the clock's second
_STAMPED = re.compile(r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27}")


def _stable(built: Built) -> tuple[object, ...]:
    """What was built, with the tokens' time stamps blanked (decoded: the quoted-printable
    soft line breaks can fall inside a token)."""
    if not built.raw:
        return (built.outcome, built.reason, built.paper_ids)
    msg = email.message_from_bytes(built.raw, policy=email.policy.default)
    headers = [(k, _STAMPED.sub(".T.S", str(v))) for k, v in msg.items()]
    bodies = [_STAMPED.sub(".T.S", part.get_content()) for part in msg.iter_parts()]
    return (built.outcome, built.paper_ids, built.subject, headers, bodies)


def test_worker_processes_build_exactly_the_bytes_this_process_builds(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    requests, held = _requests(tmp_path)
    here = list(Builders(MessageBuilder(cfg, Renderer(cfg))).map(requests))
    with ProcessBuilders(cfg, Renderer(cfg), 2, papers=held) as pool:
        there = list(pool.map(requests))
    assert [r for r, _ in there] == requests  # in order
    assert [_stable(b) for _, b in there] == [_stable(b) for _, b in here]
    outcomes = [b.outcome for _, b in there]
    assert outcomes.count(Outcome.BUILT) == 39 and outcomes[17] == Outcome.REFUSED
    changed = _stable(there[0][1])[-1]  # request 0 has the changed paper: shown as it is now
    assert "A title changed since the workers were started" in str(changed)


def test_small_runs_build_in_the_sending_process(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "[delivery]\nbuild_processes = 2\nbuild_from = 50\n")
    renderer = Renderer(cfg)
    never = lambda: []  # noqa: E731 - the papers are read only when workers start
    assert builders_for(cfg, renderer, 49, False, never).processes == 0
    with builders_for(cfg, renderer, 50, False, never) as pool:
        assert pool.processes == 2
    off = make_config(tmp_path, "[delivery]\nbuild_processes = 0\n")
    assert builders_for(off, Renderer(off), 10_000, False, never).processes == 0
