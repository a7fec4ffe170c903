"""The knowledge cache: a validated folder set read back from the cache folder, invalidated by any change."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import regex

from app.diagnosis.engine import Diagnoser
from app.diagnosis.frameworks import load_framework_set
from app.diagnosis.redact import BUILTIN_REDACTION_DIR, load_redactor
from app.diagnosis.signatures import BUILTIN_SIGNATURE_DIR, load_signature_set
from app.errors import SignatureError

LOGS = Path(__file__).with_name("logs")


def _cache_files(cache: Path, kind: str) -> list[Path]:
    return sorted(cache.glob(f"{kind}-*.pickle"))


def _copy_signatures(tmp_path: Path) -> Path:
    folder = tmp_path / "signatures"
    shutil.copytree(BUILTIN_SIGNATURE_DIR, folder)
    return folder


def test_a_cached_signature_set_reads_back_whole(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fresh = load_signature_set(cache_dir=cache)
    assert len(_cache_files(cache, "signature")) == 1
    cached = load_signature_set(cache_dir=cache)
    assert cached.version == fresh.version
    assert [signature.spec for signature in cached.signatures] == [signature.spec for signature in fresh.signatures]
    for signature in cached.signatures:  # patterns come back as sources and compile on first use
        for sample in signature.spec.samples.match:
            assert any(pattern.compiled.search(sample.encode()) for pattern in signature.compiled), signature.id


def test_reading_the_cache_compiles_no_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files' own checks (every pattern compiles) ran when they were read; the cache does not run them again."""
    cache = tmp_path / "cache"
    load_signature_set(cache_dir=cache)
    load_framework_set(cache_dir=cache)
    compiled: list[object] = []
    original = regex.compile
    monkeypatch.setattr(regex, "compile", lambda *args, **kwargs: compiled.append(args) or original(*args, **kwargs))
    load_signature_set(cache_dir=cache)
    load_framework_set(cache_dir=cache)
    assert compiled == []


def test_the_cache_is_not_read_when_a_file_changes(tmp_path: Path) -> None:
    folder, cache = _copy_signatures(tmp_path), tmp_path / "cache"
    before = load_signature_set(builtin_dir=folder, cache_dir=cache)
    target = folder / "cuda-oom.yaml"
    target.write_text(target.read_text().replace("title: ", "title: Changed ", 1))
    after = load_signature_set(builtin_dir=folder, cache_dir=cache)
    assert after.version != before.version
    assert after.by_id("cuda-oom") is not None and after.by_id("cuda-oom").spec.title.startswith("Changed ")
    assert len(_cache_files(cache, "signature")) == 2


def test_the_version_is_the_files_content_whatever_their_times(tmp_path: Path) -> None:
    """The cache is found by the files' sizes and modification times; the version a diagnosis records is not."""
    folder, cache = _copy_signatures(tmp_path), tmp_path / "cache"
    before = load_signature_set(builtin_dir=folder, cache_dir=cache).version
    target = folder / "cuda-oom.yaml"
    text = target.read_text()
    target.write_text(text + "\n")
    changed = load_signature_set(builtin_dir=folder, cache_dir=cache).version
    target.write_text(text)
    os.utime(target, ns=(1, 1))  # back to the same content, with a time it never had
    assert changed != before
    assert load_signature_set(builtin_dir=folder, cache_dir=cache).version == before
    assert load_signature_set(builtin_dir=folder).version == before


def test_a_broken_file_is_an_error_though_an_earlier_set_was_cached(tmp_path: Path) -> None:
    folder, cache = _copy_signatures(tmp_path), tmp_path / "cache"
    load_signature_set(builtin_dir=folder, cache_dir=cache)
    (folder / "cuda-oom.yaml").write_text("id: cuda-oom\ncategory: gpu_oom\npatterns: ['(unclosed']\n")
    with pytest.raises(SignatureError, match=r"cuda-oom\.yaml"):
        load_signature_set(builtin_dir=folder, cache_dir=cache)


@pytest.mark.parametrize("damage", [b"", b"not a pickle at all", b"\x80\x05K\x01."])  # empty, garbage, not a list
def test_a_damaged_cache_file_is_ignored_and_rewritten(tmp_path: Path, damage: bytes) -> None:
    cache = tmp_path / "cache"
    expected = load_framework_set(cache_dir=cache)
    (cached,) = _cache_files(cache, "framework")
    cached.write_bytes(damage)
    again = load_framework_set(cache_dir=cache)
    assert [framework.id for framework in again.frameworks] == [framework.id for framework in expected.frameworks]
    assert cached.read_bytes() != damage


def test_an_unwritable_cache_folder_is_simply_not_used(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the folder would be")
    assert load_signature_set(cache_dir=blocker).by_id("cuda-oom") is not None


def test_a_diagnoser_from_cached_sets_diagnoses_as_a_fresh_one(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fresh = Diagnoser(load_signature_set(), frameworks=load_framework_set())
    load_signature_set(cache_dir=cache)
    load_framework_set(cache_dir=cache)
    Diagnoser(load_signature_set(cache_dir=cache), frameworks=load_framework_set(cache_dir=cache), cache_dir=cache)
    assert list(cache.glob("hyperscan-*.db")) and _cache_files(cache, "screen-plan")
    cached = Diagnoser(load_signature_set(cache_dir=cache), frameworks=load_framework_set(cache_dir=cache),
                       cache_dir=cache)  # its screening plan and databases read back
    for log in sorted(LOGS.glob("*.log"))[:40]:
        assert (json.dumps(cached.diagnose(log).to_dict(), sort_keys=True)
                == json.dumps(fresh.diagnose(log).to_dict(), sort_keys=True)), log.name


def test_a_changed_pattern_is_screened_though_an_earlier_plan_was_cached(tmp_path: Path) -> None:
    """The screening plan is kept under the signature set's content: a new pattern is in the next one."""
    folder, cache = _copy_signatures(tmp_path), tmp_path / "cache"
    log = tmp_path / "crash.log"
    log.write_text("step 10 loss 1.2\nGPU melted: the flux capacitor ran out of memory\n")
    frameworks = load_framework_set()
    before = Diagnoser(load_signature_set(builtin_dir=folder, cache_dir=cache), frameworks=frameworks, cache_dir=cache)
    assert before.diagnose(log).signature != "cuda-oom"
    target = folder / "cuda-oom.yaml"
    new_pattern = "patterns:\n  - 'flux capacitor ran out of memory'\n"
    target.write_text(target.read_text().replace("patterns:\n", new_pattern, 1))
    after = Diagnoser(load_signature_set(builtin_dir=folder, cache_dir=cache), frameworks=frameworks, cache_dir=cache)
    assert after.diagnose(log).signature == "cuda-oom"
    assert len(_cache_files(cache, "screen-plan")) == 2


def test_a_redactor_from_the_cache_redacts_every_sample(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_redactor(cache_dir=cache)
    assert list(cache.glob("hyperscan-*.db")) and _cache_files(cache, "redaction")
    redactor = load_redactor(cache_dir=cache)
    assert len(redactor.forms) == len(list(BUILTIN_REDACTION_DIR.glob("*.yaml")))
    for form in redactor.forms:
        for sample in form.spec.samples.match:
            assert b"[REDACTED:" in redactor.redact(sample.encode()), form.path.name
