"""How a setting's value reads for people, the same in the terminal report, the pages and Slack."""

from __future__ import annotations

import json
import math
from typing import Any


def format_value(value: Any, *, missing: str = "—") -> str:
    """None → missing, True → true, 1e-05 → 1e-05, dicts and lists as JSON, anything else as text."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
