"""Scheduling: who is due now (`due`, pure) and the APScheduler daemon (`daemon`)."""

from newsletter.schedule.daemon import Daemon, ScheduleOptions, configure_logging
from newsletter.schedule.due import (
    SETTLED_STATUSES,
    candidate_dates,
    due_subscribers,
    group_by_date,
    last_scheduled_fetch,
    parse_fetch_times,
    subscriber_zone,
)

__all__ = [
    "SETTLED_STATUSES",
    "Daemon",
    "ScheduleOptions",
    "candidate_dates",
    "configure_logging",
    "due_subscribers",
    "group_by_date",
    "last_scheduled_fetch",
    "parse_fetch_times",
    "subscriber_zone",
]
