"""The one retry policy for storage requests.

Tenacity owns retries; botocore's own retries are switched off in the store (``total_max_attempts=1``)
so attempts do not multiply unseen. A request is retried only when the store says the failure is
transient (connection errors, timeouts, 500/502/503/504, SlowDown/throttling); it is tried at most
``attempts`` times in all, with full-jitter exponential backoff (0.1 s doubling, at most 5 s a wait),
and no wait is started that would end past ``max_seconds`` from the first try; each retry writes one
log line and counts in ``ingest_storage_retries_total{operation,reason}`` (``ingest.metrics``).

Sizing (the defaults, ``retry_attempts`` 12 and ``retry_max_seconds`` 60, in ``ingest.settings``).
When a fraction ``p`` of tries fail independently, a request exhausts ``n`` tries with probability
``p**n``, and a run of ``R`` requests loses one with probability about ``R * p**n``. The fault test
(``tests/test_faults.py``: 150 articles through a proxy that faults 25 % of requests) makes about 870
requests in its three commands (per new article: GET latest, PUT version, PUT raw, PUT latest; per
batch a changes object; leases and the run report; a re-send costs one GET). Counting every fault as a
failed try (``p`` = 0.25; in fact slow replies succeed, so 0.20):

    tries   one request gives up   the fault test's run fails
      6     2.4e-4                 about 1 in 5 (at p = 0.20, 1 in 18)
     10     9.5e-7                 about 1 in 1,200
     12     6.0e-8                 about 1 in 19,000 (at p = 0.20, 1 in 280,000)

so 12 tries. A request that still gives up costs only its own article (``ingest.commit``: ``failed``,
check ``storage``, left for the next run), unless no article of its batch got through.

The waits before tries 2..12 are drawn from [0, 0.1], [0, 0.2], ... [0, 3.2], then [0, 5] five times:
31.3 s at most, 15.7 s on average. So a store that is down (refusing connections) fails each request
in about 16 s and always within ``max_seconds``; one that hangs is cut off by the client's timeouts
(connect 5 s, read 30 s) and ``max_seconds``. ``ingest run`` then exits 2; ``ingest watch`` backs off
and tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from ingest import metrics

log = logging.getLogger("ingest.retry")

#: Backoff shape: full jitter, 0.1 s doubling, capped at 5 s a wait.
WAIT_MULTIPLIER = 0.1
WAIT_MAX = 5.0


def policy(
    attempts: int,
    max_seconds: float,
    is_transient: Callable[[BaseException], bool],
    what: str,
    *,
    wait: Callable[[RetryCallState], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    reason: Callable[[BaseException], str] | None = None,
    storage: bool = True,
) -> Retrying:
    """A tenacity ``Retrying`` for one storage request described by ``what`` (e.g. ``PUT key``).

    Each retry is counted in ``ingest_storage_retries_total``: ``operation`` is the first word of ``what`` (never
    the key), ``reason`` what ``reason`` makes of the failure (the store passes one that gives S3's error code),
    by default the exception's class name. Webhook deliveries (``ingest.webhooks``) use the same policy with
    ``storage=False`` (not counted) and their own ``wait`` (a longer backoff that heeds ``Retry-After``);
    ``sleep`` is passed in by tests so retries take no time.
    """
    operation = what.split(maxsplit=1)[0] if what.strip() else "unknown"

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
        if storage and exc is not None:
            metrics.process().storage_retry(operation, reason(exc) if reason else type(exc).__name__)

    return Retrying(
        retry=retry_if_exception(is_transient),
        # Before, not after: stop_after_delay may sleep past max_seconds and then try once more.
        stop=stop_after_attempt(attempts) | stop_before_delay(max_seconds),
        wait=wait or wait_random_exponential(multiplier=WAIT_MULTIPLIER, max=WAIT_MAX),
        before_sleep=_log,
        reraise=True,
        sleep=sleep or time.sleep,
    )
