"""Every signature's own samples: the lines it must match, and the near misses it must not."""

from __future__ import annotations

import time

import pytest

from app.diagnosis.matcher import Matcher, ScanState
from app.diagnosis.reader import LineBlock
from app.diagnosis.rootcause import choose_root_cause
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
    b"\n" * 100_000,  # a pattern whose \s crosses lines re-reads every line below each one
    (b"x" * 2_000 + b"\n") * 50,
    b"Error." * 20_000 + b"\n",
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
    patterns = [pattern for compiled in signature.compiled for pattern in (compiled.compiled, compiled.after)
                if pattern is not None]
    for pattern in patterns:
        for line in _HOSTILE_LINES:
            started = time.perf_counter()
            list(pattern.finditer(line, timeout=2.0))
            assert time.perf_counter() - started < 1.0, f"{signature.id}: {pattern.pattern!r} is slow"


def test_every_signature_file_is_loaded_and_ids_are_unique() -> None:
    files = sorted(path.stem for path in BUILTIN_SIGNATURE_DIR.glob("*.yaml"))
    ids = [signature.id for signature in _SET.signatures]
    assert ids == files
    assert len(set(ids)) == len(ids)


def test_signatures_cover_the_whole_taxonomy() -> None:
    covered = {signature.category for signature in _SET.signatures}
    assert set(categories()) - {"unknown"} <= covered


def test_loss_curve_and_exit_statuses_name_one_signature_each() -> None:
    for evidence in ("loss_nan", "loss_divergence"):
        assert [s.id for s in _SET.signatures if s.spec.derived_from == evidence] != [], evidence
        assert len([s for s in _SET.signatures if s.spec.derived_from == evidence]) == 1, evidence
    statuses = [status for signature in _SET.signatures for status in signature.spec.exit_status]
    assert len(statuses) == len(set(statuses))
    for status in (137, 247, -9, 143, 241, -15, 135, 139):
        assert _SET.for_exit_status(status) is not None, status


_FULL = Matcher(_SET)


@pytest.mark.parametrize("signature", _SET.signatures, ids=lambda signature: signature.id)
def test_no_other_signature_steals_a_samples_line(signature: Signature) -> None:
    """With the whole set loaded, a sample is won by its own signature, or by a more specific one of the same
    category (a KeyError for a missing dataset field over the generic dataset exception)."""
    for line in signature.spec.samples.match:
        data = line.encode("utf-8") + b"\n"
        state = ScanState()
        _FULL.scan(LineBlock(data, 1, data.count(b"\n")), data, state)
        root = choose_root_cause(state.hits).root
        assert root is not None, f"{signature.id}: {line!r} is not matched with the whole set loaded"
        assert root.signature.category == signature.category, (
            f"{signature.id}: {line!r} is taken by {root.signature.id} ({root.signature.category})"
        )
