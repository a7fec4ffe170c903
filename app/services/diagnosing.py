"""Calling one Diagnoser from several threads (API workers, Slack background tasks, re-diagnosis).

The matcher's Hyperscan scratch space belongs to its compiled database, and Hyperscan refuses a
second scan while one is running (ScratchInUseError). Until the matcher keeps one scratch per
thread, calls on the same Diagnoser take turns here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from weakref import WeakKeyDictionary

from app.diagnosis.engine import Diagnoser
from app.diagnosis.model import Diagnosis
from app.diagnosis.reader import LogSource

_turns: WeakKeyDictionary[Diagnoser, threading.Lock] = WeakKeyDictionary()
_turns_guard = threading.Lock()


def diagnose_in_turn(
    diagnoser: Diagnoser, source: LogSource, *, exit_code: int | None, progress: Callable[[int], None]
) -> Diagnosis:
    """diagnoser.diagnose, never running twice at once on the same Diagnoser."""
    with _turns_guard:
        turn = _turns.setdefault(diagnoser, threading.Lock())
    with turn:
        return diagnoser.diagnose(source, exit_code=exit_code, progress=progress)
