"""Retry policy for everything the crawl fetches: backoff with jitter, Retry-After, rate limit.

Flickr and its static servers fail transiently (429, 5xx, stalls, dropped
connections); a crawl of days must ride them out instead of dying, yet must not
hammer a struggling server, so waits grow exponentially and are jittered.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import requests

log = logging.getLogger(__name__)
T = TypeVar("T")

# Exceptions of `requests` that a later attempt may not meet again.
TRANSIENT_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class Retryable(Exception):
    """One attempt failed in a way worth retrying; `retry_after` is the server's wish, if any."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class GaveUp(Exception):
    """Every attempt failed; the message holds the last reason."""


@dataclasses.dataclass
class Backoff:
    """Exponential backoff with jitter: attempt k waits about base * 2**k seconds."""

    retries: int
    base_s: float
    rng: random.Random = dataclasses.field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`; never less than the server asked."""
        jittered = self.base_s * 2**attempt * (0.5 + self.rng.random())
        return max(jittered, retry_after or 0.0)

    def run(self, action: Callable[[], T], what: str) -> T:
        """Call `action` until it succeeds or `retries` extra attempts have failed."""
        for attempt in range(self.retries + 1):
            try:
                return action()
            except Retryable as err:
                if attempt == self.retries:
                    raise GaveUp(f"{what}: {err.reason} (gave up after {attempt + 1} attempts)") from None
                wait = self.delay(attempt, err.retry_after)
                log.warning("%s: %s; retrying in %.2f s", what, err.reason, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")


def retry_after(response: requests.Response) -> float | None:
    """The Retry-After header in seconds (it may be a number or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def check_status(response: requests.Response) -> None:
    """Raise Retryable for 429/5xx; other errors are the caller's to judge."""
    if response.status_code == 429 or response.status_code >= 500:
        raise Retryable(f"HTTP {response.status_code}", retry_after(response))


class RateLimiter:
    """Spaces calls at least 3600/calls_per_hour seconds apart, across threads."""

    def __init__(self, calls_per_hour: float):
        self.interval = 3600.0 / calls_per_hour
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until this caller's slot comes."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)
