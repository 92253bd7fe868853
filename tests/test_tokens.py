"""Signed link tokens: the fast signer writes exactly what itsdangerous writes, and every
token (fast, itsdangerous-made, compressed legacy) reads back as before."""

from __future__ import annotations

import time
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer

from newsletter.tokens import TokenError, _serializer, feedback_pair, make_token, read_token

SECRET = "test-secret-key-0123456789abcdef"
CASES: list[tuple[str, int, str, dict[str, Any]]] = [
    ("unsubscribe", 1, "", {}),
    ("manage", 42, "n0nce-Ab_9", {}),
    ("feedback", 7, "abc", {"p": "2611.01234", "v": -1}),
    ("preview", 123456789, "x", {"d": "2026-11-26"}),
    ("confirm", 3, "", {"r": 17}),
    ("feedback", 8, "ü-nonce", {"p": "paper “quoted” é", "v": 1}),
    ("feedback", 9, "n", {"p": 'a "quoted" back\\slash', "v": -1}),
    ("manage", 10, "", {"flag": True, "none": None, "f": 1.5, "list": [1, "x"]}),
    ("preview", 11, "", {'we"ird': "tab\there", "d": "\x7f"}),
]


def _itsdangerous(purpose: str, sid: int, nonce: str, extra: dict[str, Any]) -> str:
    payload: dict[str, Any] = {"s": sid, **extra}
    if nonce:
        payload["n"] = nonce
    return str(_serializer(SECRET, purpose).dumps(payload))


@pytest.mark.parametrize(("purpose", "sid", "nonce", "extra"), CASES)
def test_fast_tokens_are_byte_for_byte_what_itsdangerous_signs(
    purpose: str, sid: int, nonce: str, extra: dict[str, Any]
) -> None:
    for _ in range(5):  # both inside one clock second
        second = int(time.time())
        fast = make_token(SECRET, purpose, sid, nonce, **extra)
        slow = _itsdangerous(purpose, sid, nonce, extra)
        if int(time.time()) == second:
            break
    assert fast == slow
    data = read_token(SECRET, purpose, fast)
    assert (data.subscriber_id, data.nonce, data.extra) == (sid, nonce, extra)


@pytest.mark.parametrize(
    ("sid", "nonce", "paper"),
    [
        (7, "abc", "2611.01234"),
        (123456789, "", "hep-th/9901001v2"),
        (8, "ü-nonce", "2611.01234"),  # not plain JSON: the general signer
        (9, "n", 'a "quoted" back\\slash'),
        (True, "n", "2611.01234"),  # a bool is not an id the short path writes
    ],
)
def test_a_papers_vote_pair_is_what_itsdangerous_signs_for_each_vote(
    sid: int, nonce: str, paper: str
) -> None:
    for _ in range(5):  # both inside one clock second
        second = int(time.time())
        pair = feedback_pair(SECRET, sid, nonce, paper)
        slow = tuple(_itsdangerous("feedback", sid, nonce, {"p": paper, "v": v}) for v in (1, -1))
        if int(time.time()) == second:
            break
    assert pair == slow
    for token, vote in zip(pair, (1, -1), strict=True):
        data = read_token(SECRET, "feedback", token)
        assert (data.subscriber_id, data.nonce, data.extra) == (sid, nonce, {"p": paper, "v": vote})


def test_a_fast_token_is_refused_for_another_purpose_key_or_when_changed() -> None:
    token = make_token(SECRET, "unsubscribe", 5, "nonce")
    with pytest.raises(TokenError):
        read_token(SECRET, "manage", token)
    with pytest.raises(TokenError):
        read_token("another-secret-key-0123456789", "unsubscribe", token)
    _body, stamp, sig = token.split(".")
    forged = make_token(SECRET, "unsubscribe", 6, "nonce").split(".")[0]
    with pytest.raises(TokenError):
        read_token(SECRET, "unsubscribe", f"{forged}.{stamp}.{sig}")
    with pytest.raises(ValueError, match="unknown token purpose"):
        make_token(SECRET, "nonsense", 1, "")


def test_links_minted_before_keep_working_compressed_ones_too() -> None:
    legacy = URLSafeTimedSerializer(SECRET, salt="newsletter.feedback")
    big = {"s": 9, "p": "x" * 400, "v": 1}  # long enough for itsdangerous to zlib-compress it
    token = str(legacy.dumps(big))
    assert token.startswith(".")
    assert read_token(SECRET, "feedback", token).extra == {"p": "x" * 400, "v": 1}


def test_expired_fast_tokens_say_so() -> None:
    token = make_token(SECRET, "confirm", 1, "")
    with pytest.raises(TokenError) as info:
        read_token(SECRET, "confirm", token, max_age=-1)
    assert info.value.expired
