"""Team names: what is accepted as one."""

from __future__ import annotations

import regex

from app.errors import InvalidRequestError
from app.store.models import TEAM_NAME_LENGTH

TEAM_NAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{TEAM_NAME_LENGTH - 1}}}$"
_TEAM_NAME = regex.compile(TEAM_NAME_PATTERN)


def checked_team_name(name: str) -> str:
    """The name if it is a valid team name (letters, digits, `_.-`, up to 64), else InvalidRequestError."""
    if not _TEAM_NAME.match(name):
        raise InvalidRequestError(
            f"invalid team name {name!r}: use letters, digits, '_', '.' or '-' (at most {TEAM_NAME_LENGTH})"
        )
    return name
