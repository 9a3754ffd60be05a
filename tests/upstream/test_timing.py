"""The pure parts of the upstream's timing: the slow-drip watchdog, backoff, Retry-After."""

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from updmirror.upstream.backoff import backoff_delay, retry_after
from updmirror.upstream.pace import Pace

WINDOW = 10.0
MIN_SPEED = 100


def test_steady_body_at_the_minimum_speed_is_kept():
    pace = Pace(WINDOW, MIN_SPEED, now=0.0)
    for second in range(1, 60):
        assert pace.feed(MIN_SPEED, now=float(second)) is None


def test_silence_for_a_whole_window_is_a_stall():
    pace = Pace(WINDOW, MIN_SPEED, now=0.0)
    assert pace.feed(5000, now=1.0) is None
    assert pace.check(now=1.0 + WINDOW - 0.1) is None
    assert "no data" in pace.check(now=1.0 + WINDOW)


def test_drip_under_the_minimum_speed_is_given_up_at_the_end_of_a_window():
    pace = Pace(WINDOW, MIN_SPEED, now=0.0)
    problems = [pace.feed(MIN_SPEED // 2, now=float(s)) for s in range(1, 11)]
    assert problems[:-1] == [None] * 9
    assert "bytes/s" in problems[-1]


def test_wait_limit_never_passes_the_stall_or_the_window_end():
    pace = Pace(WINDOW, MIN_SPEED, now=0.0)
    pace.feed(10 * MIN_SPEED * WINDOW, now=3.0)
    assert pace.wait_limit(now=4.0) == WINDOW - 4.0  # the window (from 0) ends first
    assert pace.check(now=WINDOW) is None            # fast enough: a new window from 10
    assert pace.wait_limit(now=WINDOW) == 3.0        # now the stall (last byte at 3) comes first


def test_zero_minimum_speed_only_checks_for_silence():
    pace = Pace(WINDOW, 0, now=0.0)
    for second in range(1, 40):
        assert pace.feed(1, now=float(second)) is None


def test_backoff_doubles_and_is_jittered_within_bounds():
    rng = random.Random(7)
    delays = [backoff_delay(n, base=1.0, cap=8.0, rng=rng) for n in range(6)]
    for n, delay in enumerate(delays):
        full = min(8.0, 2.0 ** n)
        assert full / 2 <= delay <= full
    assert len({round(backoff_delay(2, rng=rng), 6) for _ in range(20)}) > 1


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after("120", now) == 120.0
    assert retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert retry_after(None, now) is None
    assert retry_after("soon", now) is None


def test_a_retry_after_date_beyond_any_calendar_is_unreadable_not_a_crash():
    assert retry_after("Mon, 01 Jan 99999999999 00:00:00 GMT") is None
