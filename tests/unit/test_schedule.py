"""EventBridge schedule expressions evaluated the way AWS does, for the local runtime."""

from datetime import datetime, timezone

import pytest

from pipectl.errors import UsageError
from pipectl.local.schedule import next_fire


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_daily_at_two_fires_today_before_two_and_tomorrow_after():
    assert next_fire("cron(0 2 * * ? *)", at("2026-11-23T01:59")) == at("2026-11-23T02:00")
    assert next_fire("cron(0 2 * * ? *)", at("2026-11-23T02:00")) == at("2026-11-24T02:00")


def test_day_of_week_counts_sunday_as_one_like_eventbridge():
    # 2026-11-23 is a Monday; MON=2 and the name must agree.
    assert next_fire("cron(30 9 ? * 2 *)", at("2026-11-23T10:00")) == at("2026-11-30T09:30")
    assert next_fire("cron(30 9 ? * MON *)", at("2026-11-23T10:00")) == at("2026-11-30T09:30")
    assert next_fire("cron(0 0 ? * SUN *)", at("2026-11-23T10:00")) == at("2026-11-29T00:00")


def test_lists_ranges_steps_and_months():
    assert next_fire("cron(0/15 8-9 * * ? *)", at("2026-11-23T08:20")) == at("2026-11-23T08:30")
    assert next_fire("cron(0 0 1 JAN,JUL ? *)", at("2026-11-23T00:00")) == at("2027-01-01T00:00")


def test_rate_expressions():
    assert next_fire("rate(5 minutes)", at("2026-11-23T08:20")) == at("2026-11-23T08:25")
    assert next_fire("rate(1 day)", at("2026-11-23T08:20")) == at("2026-11-24T08:20")


def test_unsupported_forms_and_past_years_say_so():
    with pytest.raises(UsageError, match="uses L, W or #"):
        next_fire("cron(0 0 L * ? *)", at("2026-11-23T00:00"))
    assert next_fire("cron(0 0 1 1 ? 2020)", at("2026-11-23T00:00")) is None
