"""Timer triggers for the local host: NCRONTAB schedules and the timer input the host sends.

The schedule is the binding's ``schedule``, resolved like the host's name resolver: a whole
``%Setting%`` expression is replaced by that app setting. The Functions timer uses NCRONTAB
with six fields, seconds first (WebJobs extensions ``CronSchedule.TryCreate``:
``ParseOptions { IncludingSeconds = true }``); croniter parses it with
``second_at_beginning=True``. TimeSpan schedules ("00:05:00") are not supported here and say so.

The input is the TimerInfo object as Newtonsoft writes it, PascalCase (WebJobs extensions
``TimerInfo``: Schedule, ScheduleStatus {Last, Next, LastUpdated}, IsPastDue; a cron schedule
serialises as ``{"AdjustForDST": true}``; MicrosoftDocs functions-bindings-timer.md shows
``{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2016-10-04T10:15:00+00:00",
"LastUpdated":"2016-10-04T10:16:00+00:00","Next":"2016-10-04T10:20:00+00:00"},"IsPastDue":false}``),
sent as JSON TypedData; azure.functions ``TimerRequestConverter.decode`` reads exactly
IsPastDue, ScheduleStatus and Schedule from it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from croniter import croniter


class ScheduleError(ValueError):
    """A timer schedule the local host cannot run, with the reason."""


_SETTING = re.compile(r"^%([^%]+)%$")


def resolve_schedule(expression: str, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    match = _SETTING.match(expression.strip())
    if not match:
        return expression.strip()
    value = env.get(match.group(1), "").strip()
    if not value:
        raise ScheduleError(f"timer schedule {expression!r} names app setting {match.group(1)!r}, which is "
                            "not set (local.settings.json Values or the environment)")
    return value


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` (UTC) that the six-field NCRONTAB expression names."""
    fields = schedule.split()
    if len(fields) != 6:
        raise ScheduleError(f"timer schedule {schedule!r} has {len(fields)} fields; the Functions timer uses "
                            "NCRONTAB with six: second minute hour day month day-of-week, e.g. '0 */5 * * * *' "
                            "(TimeSpan schedules are not supported by the local host)")
    try:
        return croniter(schedule, after.astimezone(UTC), second_at_beginning=True).get_next(datetime)
    except (ValueError, KeyError) as exc:
        raise ScheduleError(f"timer schedule {schedule!r} is not a valid NCRONTAB expression: {exc}") from None


def _net(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def timer_input(last: datetime | None, next_due: datetime, now: datetime, past_due: bool = False) -> str:
    """The JSON the host sends the worker for one timer invocation."""
    return json.dumps({
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {"Last": _net(last or datetime(1, 1, 1, tzinfo=UTC)), "Next": _net(next_due),
                           "LastUpdated": _net(now)},
        "IsPastDue": past_due,
    })
