"""One retry loop for every fetcher: what another attempt may cure is tried again, with backoff.

A fetcher's attempt raises :class:`Transient` for a failure worth another
try (a dropped connection, a timeout, a busy server, a body cut short) and
any other UpstreamError for one that is not (refused credentials, no such
file, too large). After the last attempt the carried error is raised,
saying how many attempts were made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

from updmirror.upstream.backoff import backoff_delay
from updmirror.upstream.base import UpstreamStats
from updmirror.upstream.errors import UpstreamError

T = TypeVar("T")


class Transient(Exception):
    """An attempt failed in a way another attempt may cure; carries the error to raise if none does."""

    def __init__(self, error: UpstreamError, wait: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.wait = wait


async def retrying(attempt: Callable[[], Awaitable[T]], *, retries: int, backoff_base: float,
                   stats: UpstreamStats, log: logging.Logger) -> T:
    """`attempt()` until it succeeds, at most `retries` + 1 times."""
    attempts = retries + 1
    for number in range(attempts):
        try:
            return await attempt()
        except Transient as failure:
            if number + 1 >= attempts:
                _give_up(failure.error, attempts)
            wait = failure.wait if failure.wait is not None else backoff_delay(number, backoff_base)
            stats.retries += 1
            log.info("%s; retry %d of %d in %.1f s", failure.error, number + 1, attempts - 1, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def _give_up(error: UpstreamError, attempts: int) -> NoReturn:
    if attempts > 1:
        error = type(error)(f"{error} (gave up after {attempts} attempts)")
    raise error from None
