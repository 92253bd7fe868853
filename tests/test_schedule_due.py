"""The pure "who is due now" rule across timezones and DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from newsletter.errors import ConfigError
from newsletter.models import Subscriber, SubscriberStatus
from newsletter.schedule import (
    candidate_dates,
    due_subscribers,
    group_by_date,
    last_scheduled_fetch,
    parse_fetch_times,
)


def sub(
    sid: int,
    tz: str,
    hour: int,
    status: SubscriberStatus = SubscriberStatus.ACTIVE,
) -> Subscriber:
    return Subscriber(
        id=sid, email=f"s{sid}@example.org", status=status, timezone=tz, delivery_hour=hour
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def due_ids(subs: list[Subscriber], now: datetime, sent: set | None = None) -> list[tuple]:
    return [(s.id, d) for s, d in due_subscribers(subs, now, sent or set())]


def first_due_time(s: Subscriber, start: datetime, end: datetime, step_minutes: int = 15) -> list:
    """Walk the clock like the daemon does; return every (UTC instant, date) a send happens."""
    sent: set[tuple[int, date]] = set()
    sends = []
    now = start
    while now <= end:
        for found, day in due_subscribers([s], now, sent):
            sends.append((now, day))
            sent.add((found.id, day))
        now += timedelta(minutes=step_minutes)
    return sends


def test_due_once_the_local_hour_has_come() -> None:
    berlin = sub(1, "Europe/Berlin", 7)  # UTC+1 in November
    assert due_ids([berlin], utc(2026, 11, 26, 5, 59)) == []
    assert due_ids([berlin], utc(2026, 11, 26, 6, 0)) == [(1, date(2026, 11, 26))]


def test_hour_missed_while_down_is_still_due_later_that_day_but_not_next_day() -> None:
    ny = sub(1, "America/New_York", 7)  # UTC-5 in November
    assert due_ids([ny], utc(2026, 11, 26, 20, 0)) == [(1, date(2026, 11, 26))]  # 15:00 local
    assert due_ids([ny], utc(2026, 11, 27, 4, 59)) == [(1, date(2026, 11, 26))]  # 23:59 local
    # After local midnight the missed day is over: the next day is due only from 07:00.
    assert due_ids([ny], utc(2026, 11, 27, 5, 0)) == []
    assert due_ids([ny], utc(2026, 11, 27, 12, 0)) == [(1, date(2026, 11, 27))]


def test_already_sent_date_is_not_due_again() -> None:
    s = sub(4, "UTC", 7)
    now = utc(2026, 11, 26, 9, 0)
    assert due_ids([s], now, {(4, date(2026, 11, 26))}) == []
    # A ledger entry for another day does not count.
    assert due_ids([s], now, {(4, date(2026, 11, 25))}) == [(4, date(2026, 11, 26))]


def test_spring_forward_missing_hour_is_served_at_three() -> None:
    # 2026-03-08: New York clocks jump from 02:00 EST to 03:00 EDT (07:00 UTC).
    s = sub(1, "America/New_York", 2)
    sends = first_due_time(s, utc(2026, 3, 8, 5, 0), utc(2026, 3, 9, 4, 45))
    assert sends == [(utc(2026, 3, 8, 7, 0), date(2026, 3, 8))]
    assert sends[0][0].astimezone(s_zone(s)).hour == 3


def test_fall_back_repeated_hour_sends_once() -> None:
    # 2026-11-01: 01:00-02:00 happens twice in New York (05:00-06:00 UTC EDT, 06:00-07:00 EST).
    s = sub(1, "America/New_York", 1)
    sends = first_due_time(s, utc(2026, 11, 1, 4, 0), utc(2026, 11, 2, 4, 45))
    assert sends == [(utc(2026, 11, 1, 5, 0), date(2026, 11, 1))]


def test_every_day_across_dst_changes_is_sent_exactly_once_at_local_hour() -> None:
    s = sub(1, "Europe/London", 7)
    sends = first_due_time(s, utc(2026, 3, 25, 0, 0), utc(2026, 4, 2, 0, 0))
    assert [d for _, d in sends] == [date(2026, 3, 25) + timedelta(days=i) for i in range(8)]
    # 07:00 GMT before 29 March, 07:00 BST (06:00 UTC) after.
    assert {t.astimezone(s_zone(s)).time() for t, _ in sends} == {time(7, 0)}


def test_kolkata_half_hour_offset() -> None:
    s = sub(1, "Asia/Kolkata", 7)  # UTC+5:30: 07:00 local is 01:30 UTC
    assert due_ids([s], utc(2026, 11, 26, 1, 15)) == []
    assert due_ids([s], utc(2026, 11, 26, 1, 30)) == [(1, date(2026, 11, 26))]


def test_kiritimati_plus_fourteen_is_a_day_ahead() -> None:
    s = sub(1, "Pacific/Kiritimati", 0)
    # 10:00 UTC on the 26th is 00:00 on the 27th in Kiritimati: that local date is due.
    assert due_ids([s], utc(2026, 11, 26, 9, 59)) == [(1, date(2026, 11, 26))]
    assert due_ids([s], utc(2026, 11, 26, 10, 0)) == [(1, date(2026, 11, 27))]
    assert date(2026, 11, 27) in candidate_dates(utc(2026, 11, 26, 10, 0))


def test_pago_pago_minus_eleven_is_a_day_behind() -> None:
    s = sub(1, "Pacific/Pago_Pago", 22)
    assert due_ids([s], utc(2026, 11, 27, 9, 0)) == [(1, date(2026, 11, 26))]
    assert date(2026, 11, 26) in candidate_dates(utc(2026, 11, 27, 9, 0))


def test_only_active_subscribers_are_due() -> None:
    subs = [sub(i, "UTC", 0, status) for i, status in enumerate(SubscriberStatus, start=1)]
    assert [s.status for s, _ in due_subscribers(subs, utc(2026, 11, 26, 12), set())] == [
        SubscriberStatus.ACTIVE
    ]


def test_unknown_timezone_falls_back_to_utc() -> None:
    s = sub(1, "Mars/Olympus_Mons", 7)
    assert due_ids([s], utc(2026, 11, 26, 6, 59)) == []
    assert due_ids([s], utc(2026, 11, 26, 7, 0)) == [(1, date(2026, 11, 26))]


def test_mixed_zones_group_by_local_date() -> None:
    subs = [
        sub(1, "Pacific/Kiritimati", 6),  # 2026-11-27 00:30 local: not yet
        sub(2, "Asia/Tokyo", 7),  # 19:30 on the 26th: due for the 26th
        sub(3, "America/Los_Angeles", 2),  # 02:30 on the 26th: due
        sub(4, "Pacific/Kiritimati", 0),  # due for the 27th
        sub(5, "Asia/Kolkata", 23),  # 16:00: not yet
    ]
    now = utc(2026, 11, 26, 10, 30)
    groups = group_by_date(due_subscribers(subs, now, set()))
    assert {d: [s.id for s in g] for d, g in groups.items()} == {
        date(2026, 11, 26): [2, 3],
        date(2026, 11, 27): [4],
    }
    assert list(groups) == sorted(groups)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_subscribers([sub(1, "UTC", 0)], datetime(2026, 11, 26, 12), set())


def test_fetch_times_parse_and_errors() -> None:
    assert parse_fetch_times(["06:00", "00:30", "06:00"]) == [time(0, 30), time(6, 0)]
    with pytest.raises(ConfigError, match=r"schedule\.fetch_times"):
        parse_fetch_times(["6am"])
    with pytest.raises(ConfigError, match=r"schedule\.fetch_times"):
        parse_fetch_times(["25:00"])
    with pytest.raises(ConfigError, match="--no-fetch"):
        parse_fetch_times([])


def test_last_scheduled_fetch_in_eastern_time() -> None:
    times = [time(0, 30), time(6, 0)]
    # 10:00 UTC = 05:00 EST: the last slot was 00:30 EST = 05:30 UTC.
    assert last_scheduled_fetch(utc(2026, 11, 26, 10), times, "America/New_York") == utc(
        2026, 11, 26, 5, 30
    )
    # 03:00 UTC = 22:00 EST the day before: the 06:00 slot of that day.
    assert last_scheduled_fetch(utc(2026, 11, 26, 3), times, "America/New_York") == utc(
        2026, 11, 25, 11, 0
    )


def s_zone(s: Subscriber) -> ZoneInfo:
    return ZoneInfo(s.timezone)
