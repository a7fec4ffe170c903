"""A wall-clock deadline that long work checks as it goes (a thread cannot be stopped from outside)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from app.errors import DiagnosisTimeoutError

ItemT = TypeVar("ItemT")


class Deadline:
    """Raises DiagnosisTimeoutError from check() once `seconds` have passed since it was made."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._expires = time.monotonic() + seconds

    def check(self, *_progress: object) -> None:
        """Stop the work if the time is up (also usable as the diagnoser's progress callback)."""
        if time.monotonic() > self._expires:
            raise DiagnosisTimeoutError(f"diagnosing and storing the log took longer than {self.seconds:g} seconds")

    def watch(self, items: Iterable[ItemT]) -> Iterator[ItemT]:
        """The same items, checking the deadline before each."""
        for item in items:
            self.check()
            yield item
