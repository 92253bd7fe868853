"""Who is due now: a pure function of the clock, the subscribers and the ledger.

Each active subscriber gets their digest once per local date, at their delivery hour in their
own timezone; the daemon asks this every quarter hour.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from newsletter.errors import ConfigError
from newsletter.models import SendStatus, Subscriber, SubscriberStatus

log = logging.getLogger("newsletter.schedule")

# Ledger states that settle a (subscriber, digest date): never sent again that day. `retry` and
# a `claimed` row left by a crashed run stay due, so the next pass finishes them.
SETTLED_STATUSES = (SendStatus.SENT, SendStatus.FAILED, SendStatus.SKIPPED)

# Every UTC offset in use is a multiple of 15 minutes (India +5:30, Nepal +5:45, Chatham +12:45),
# so a pass every quarter hour reaches every local hour on time.
SEND_MINUTES = "0,15,30,45"


def subscriber_zone(sub: Subscriber) -> zoneinfo.ZoneInfo:
    """The subscriber's timezone; an unknown name falls back to UTC (and says so)."""
    try:
        return zoneinfo.ZoneInfo(sub.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning("subscriber %s has unknown timezone %r: using UTC", sub.id, sub.timezone)
        return zoneinfo.ZoneInfo("UTC")


def due_subscribers(
    subscribers: Iterable[Subscriber],
    now_utc: datetime,
    already_sent: set[tuple[int, date]],
) -> list[tuple[Subscriber, date]]:
    """Active subscribers whose delivery hour has come today in their own timezone.

    The digest date is the subscriber's local date. A subscriber is due from the first instant
    whose local wall-clock hour is at least `delivery_hour` until local midnight, unless
    (id, local date) is in `already_sent`. So an hour skipped by a DST change (02:00 on a
    spring-forward day) is served at 03:00, a repeated hour (01:00 on a fall-back day) only
    once, and an hour missed while the daemon was down later the same day.
    Sorted by (local date, subscriber id).
    """
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be timezone-aware")
    due: list[tuple[Subscriber, date]] = []
    for sub in subscribers:
        if sub.status != SubscriberStatus.ACTIVE:
            continue
        local = now_utc.astimezone(subscriber_zone(sub))
        if local.hour >= sub.delivery_hour and (sub.id, local.date()) not in already_sent:
            due.append((sub, local.date()))
    due.sort(key=lambda pair: (pair[1], pair[0].id))
    return due


def group_by_date(due: Iterable[tuple[Subscriber, date]]) -> dict[date, list[Subscriber]]:
    """{local digest date: subscribers}, dates in ascending order."""
    groups: dict[date, list[Subscriber]] = {}
    for sub, day in sorted(due, key=lambda pair: (pair[1], pair[0].id)):
        groups.setdefault(day, []).append(sub)
    return groups


def candidate_dates(now_utc: datetime) -> list[date]:
    """Every local date somewhere on Earth at `now_utc` (offsets span UTC-12 to UTC+14)."""
    utc_day = now_utc.astimezone(UTC).date()
    return [utc_day - timedelta(days=1), utc_day, utc_day + timedelta(days=1)]


def parse_fetch_times(values: Iterable[str]) -> list[time]:
    """'HH:MM' strings from schedule.fetch_times; a bad one is a ConfigError naming the key."""
    out: list[time] = []
    for value in values:
        try:
            hour, minute = (int(part) for part in value.split(":"))
            out.append(time(hour, minute))
        except ValueError:
            raise ConfigError(
                f'schedule.fetch_times contains {value!r}: use 24-hour "HH:MM" strings, '
                'e.g. fetch_times = ["00:30", "06:00"]'
            ) from None
    if not out:
        raise ConfigError(
            'schedule.fetch_times is empty: give at least one time such as "00:30", '
            "or run the daemon with --no-fetch"
        )
    return sorted(set(out))


def last_scheduled_fetch(now_utc: datetime, times: Iterable[time], tz: str) -> datetime:
    """The most recent fetch_times slot at or before `now_utc` (in UTC)."""
    zone = zoneinfo.ZoneInfo(tz)
    local_today = now_utc.astimezone(zone).date()
    slots = [
        datetime.combine(day, t, tzinfo=zone).astimezone(UTC)
        for day in (local_today - timedelta(days=1), local_today)
        for t in times
    ]
    return max(s for s in slots if s <= now_utc)
