"""Fixtures for the API tests: tokens of two teams."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.services.tokens import create_token


@pytest.fixture
def make_token(session_factory: sessionmaker[Session]) -> Callable[[str], str]:
    """Create an API token for a team; returns its secret."""

    def make(team: str) -> str:
        with session_factory.begin() as session:
            return create_token(session, team_name=team).secret

    return make
