"""Every signature's own samples: the lines it must match, and the near misses it must not."""

from __future__ import annotations

import time

import pytest

from app.diagnosis.matcher import Matcher, ScanState
from app.diagnosis.reader import LineBlock
from app.diagnosis.signatures import BUILTIN_SIGNATURE_DIR, Signature, SignatureSet, load_signature_set
from app.diagnosis.taxonomy import categories

_SET = load_signature_set()
_HOSTILE_LINES = [
    b"a" * 100_000,
    b" " * 100_000 + b"!",
    b"Error: " + b"x" * 50_000 + b": " * 20_000,
    b"[rank0]: " * 10_000 + b"RuntimeError",
    (b"0" * 10 + b".") * 10_000,
    b"'loss': '" + b"9" * 100_000,
]


def _matching_ids(matcher: Matcher, line: str) -> set[str]:
    data = line.encode("utf-8") + b"\n"
    state = ScanState()
    matcher.scan(LineBlock(data, 1, data.count(b"\n")), data, state)
    return {hit.signature.id for hit in state.hits}


def _single(signature: Signature) -> Matcher:
    return Matcher(SignatureSet(signatures=(signature,), version="test"))


@pytest.mark.parametrize("signature", _SET.signatures, ids=lambda signature: signature.id)
def test_signature_matches_its_samples(signature: Signature) -> None:
    matcher = _single(signature)
    for line in signature.spec.samples.match:
        assert _matching_ids(matcher, line) == {signature.id}, f"{signature.id} should match: {line!r}"


@pytest.mark.parametrize("signature", _SET.signatures, ids=lambda signature: signature.id)
def test_signature_ignores_its_near_misses(signature: Signature) -> None:
    matcher = _single(signature)
    for line in signature.spec.samples.no_match:
        assert _matching_ids(matcher, line) == set(), f"{signature.id} should not match: {line!r}"


@pytest.mark.parametrize("signature", _SET.signatures, ids=lambda signature: signature.id)
def test_signature_patterns_are_fast_on_hostile_lines(signature: Signature) -> None:
    for compiled in signature.compiled:
        for line in _HOSTILE_LINES:
            started = time.perf_counter()
            compiled.search(line, timeout=2.0)
            assert time.perf_counter() - started < 1.0, f"{signature.id}: {compiled.pattern!r} is slow"


def test_every_signature_file_is_loaded_and_ids_are_unique() -> None:
    files = sorted(path.stem for path in BUILTIN_SIGNATURE_DIR.glob("*.yaml"))
    ids = [signature.id for signature in _SET.signatures]
    assert ids == files
    assert len(set(ids)) == len(ids)


def test_signatures_cover_the_whole_taxonomy() -> None:
    covered = {signature.category for signature in _SET.signatures}
    assert set(categories()) - {"unknown"} <= covered


def test_signatures_the_engine_names_exist() -> None:
    for signature_id in ("loss-nan", "loss-divergence", "exit-sigkill", "exit-sigterm", "exit-sigbus", "exit-sigsegv"):
        assert _SET.by_id(signature_id) is not None, signature_id
