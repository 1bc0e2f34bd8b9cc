"""The one retry policy for storage requests.

Tenacity owns retries; botocore's own retries are switched off in the store (``total_max_attempts=1``)
so attempts do not multiply unseen. A request is retried only when the store says the failure is
transient (connection errors, timeouts, 500/502/503/504, SlowDown/throttling); it is tried at most
``attempts`` times in all and never past ``max_seconds``, with full-jitter exponential backoff
(0.1 s doubling, at most 5 s a wait), and each retry writes one log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

log = logging.getLogger("ingest.retry")

#: Backoff shape: full jitter, 0.1 s doubling, capped at 5 s a wait.
WAIT_MULTIPLIER = 0.1
WAIT_MAX = 5.0


def policy(attempts: int, max_seconds: float, is_transient: Callable[[BaseException], bool], what: str) -> Retrying:
    """A tenacity ``Retrying`` for one storage request described by ``what`` (e.g. ``PUT key``)."""

    def _log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "retrying %s (attempt %d of %d failed: %s); next try in %.2fs",
            what,
            state.attempt_number,
            attempts,
            exc,
            wait,
        )

    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
        wait=wait_random_exponential(multiplier=WAIT_MULTIPLIER, max=WAIT_MAX),
        before_sleep=_log,
        reraise=True,
    )
