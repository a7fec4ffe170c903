"""Every framework file: its step formats read their samples, its patterns stay fast, its schema holds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import regex

from app.diagnosis.engine import Diagnoser
from app.diagnosis.frameworks import BUILTIN_FRAMEWORK_DIR, load_framework_set
from app.diagnosis.progress import ProgressTracker, step_of_line
from app.diagnosis.signatures import load_signature_set
from app.errors import SignatureError

_SET = load_framework_set()
_HOSTILE_LINES = [b"a" * 100_000, b"1/" * 50_000, b" 9%|" * 20_000, b"Epoch [" * 10_000, b"step " * 20_000]
_CASES = [(framework.id, step, sample) for framework in _SET.frameworks for step in framework.spec.steps
          for sample in step.samples]


@pytest.mark.parametrize(("framework_id", "step_format", "sample"), _CASES,
                         ids=[f"{case[0]}:{case[1].name}:{index}" for index, case in enumerate(_CASES)])
def test_every_step_sample_reads_as_stated_with_all_formats_loaded(framework_id, step_format, sample) -> None:
    read = step_of_line(_SET.step_formats, sample.line.encode("utf-8"))
    if sample.step is None:
        assert read is None, f"{framework_id}/{step_format.name} should read no step from {sample.line!r}"
        return
    assert read is not None and read[0] == sample.step, f"{framework_id}/{step_format.name}: {sample.line!r} -> {read}"
    if sample.total is not None:
        assert read[1] == sample.total


def test_every_pattern_is_fast_on_hostile_lines() -> None:
    patterns = [step.pattern for step in _SET.step_formats]
    patterns += [marker for framework in _SET.frameworks for marker in framework.recognise]
    patterns += [_SET.line_marker("setup_lines"), _SET.line_marker("save_lines")]
    for pattern in patterns:
        for line in _HOSTILE_LINES:
            started = time.perf_counter()
            list(pattern.finditer(line, timeout=2.0))
            assert time.perf_counter() - started < 1.0, f"{pattern.pattern!r} is slow"


@pytest.mark.parametrize(("framework_id", "step_format", "sample"), _CASES,
                         ids=[f"{case[0]}:{case[1].name}:{index}" for index, case in enumerate(_CASES)])
def test_the_progress_screen_fires_on_every_sample_that_shows_a_step(
    diagnoser: Diagnoser, framework_id, step_format, sample
) -> None:
    """The screen may pass blocks without a mark (it is a superset), never miss one: a block it passes over is
    read as having no step mark, so the run would show none (or a step counted from its loss values)."""
    if sample.step is None:
        return
    log = f"{'x' * 300}\n{sample.line}\n{'y' * 300}\nRuntimeError: boom\n".encode()
    assert diagnoser.diagnose(log).step == sample.step, f"{framework_id}/{step_format.name}: {sample.line!r}"


def test_every_framework_file_is_loaded_and_the_progress_screen_compiles() -> None:
    assert sorted(framework.id for framework in _SET.frameworks) == sorted(
        path.stem for path in BUILTIN_FRAMEWORK_DIR.glob("*.yaml"))
    regex.compile(ProgressTracker.screens(_SET.step_formats)["progress"])


def test_a_new_step_format_is_one_file(tmp_path: Path) -> None:
    (tmp_path / "mytrainer.yaml").write_text(
        "id: mytrainer\ntitle: Our trainer\nprecedence: 50\nrecognise: ['mytrainer']\n"
        "steps:\n  - name: upd\n    pattern: '\\bupd#(?P<step>\\d+)'\n    samples: [{line: 'upd#42 l=0.1', step: 42}]\n"
    )
    frameworks = load_framework_set([tmp_path])
    assert step_of_line(frameworks.step_formats, b"mytrainer upd#812 l=2.3") == (812, 0)


@pytest.mark.parametrize(("text", "field"), [
    ("id: broken\ntitle: t\nprecedence: 5\nunknown_key: 1\n", "unknown_key"),
    ("id: broken\ntitle: t\nprecedence: 5\nsteps:\n  - name: s\n    pattern: '(\\d+)'\n"
     "    samples: [{line: '1', step: 1}]\n", "steps.0"),
])
def test_a_broken_framework_file_names_the_file_and_the_field(tmp_path: Path, text: str, field: str) -> None:
    (tmp_path / "broken.yaml").write_text(text)
    with pytest.raises(SignatureError, match=rf"broken\.yaml: field '{regex.escape(field)}"):
        load_framework_set([tmp_path])


@pytest.mark.parametrize("mark", ["(?|ourtrainer|our-trainer)", "our-trainer"],
                         ids=["beyond-hyperscan", "screened"])
def test_a_team_framework_is_recognised_whatever_its_marks_syntax(tmp_path: Path, mark: str) -> None:
    (tmp_path / "ourtrainer.yaml").write_text(
        f"id: ourtrainer\ntitle: Our trainer\nprecedence: 90\nrecognise: ['{mark}']\n")
    diagnoser = Diagnoser(load_signature_set(), frameworks=load_framework_set([tmp_path]))
    log = b"[our-trainer] starting\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n"
    assert diagnoser.diagnose(log).run["framework"] == "ourtrainer"
