"""Fixtures for the diagnosis core: the built-in signature set and a Diagnoser, built once per session."""

from __future__ import annotations

import pytest

from app.diagnosis.engine import Diagnoser
from app.diagnosis.signatures import SignatureSet, load_signature_set


@pytest.fixture(scope="session")
def signature_set() -> SignatureSet:
    return load_signature_set()


@pytest.fixture(scope="session")
def diagnoser(signature_set: SignatureSet) -> Diagnoser:
    return Diagnoser(signature_set)
