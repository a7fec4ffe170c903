"""Fixtures for the check tests: the built-in rules and frameworks, loaded once."""

from __future__ import annotations

import pytest

from app.check.checker import Checker, load_checker


@pytest.fixture(scope="session")
def checker() -> Checker:
    return load_checker()
