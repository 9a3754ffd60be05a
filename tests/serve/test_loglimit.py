"""A recurring problem is one line per interval, saying how often it recurred."""

import logging

from updmirror.serve.loglimit import LogLimit


def test_a_kind_is_logged_once_per_interval_with_the_count_of_the_rest(caplog):
    now = [0.0]
    limit = LogLimit(logging.getLogger("t"), interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "t"):
        assert limit.log(logging.ERROR, "disk", "disk %s", "failed")
        for _ in range(500):
            assert not limit.log(logging.ERROR, "disk", "disk %s", "failed")
        assert limit.log(logging.ERROR, "other", "other")          # kinds are apart
        now[0] = 61
        assert limit.log(logging.ERROR, "disk", "disk %s", "failed")
        limit.forget("disk")
        assert limit.log(logging.ERROR, "disk", "disk back")
    assert [r.getMessage() for r in caplog.records] == [
        "disk failed", "other", "disk failed (and 500 more times since the last such line)", "disk back"]
