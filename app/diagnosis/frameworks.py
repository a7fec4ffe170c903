"""Framework files: how each trainer is recognised, prints its steps, spells its settings, names its frames.

One YAML file per framework in `frameworks/` (see frameworks/README.md), validated strictly at load,
each step format with the lines it must read. The engine's readers take all of it from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import regex

from app.diagnosis.knowledge import ID_PATTERN, check_regex, compiled_pattern, load_folders, read_spec
from app.diagnosis.settings import SETTING_NAMES
from app.errors import SignatureError
from app.resources import bundled
from app.validation import InvalidField

BUILTIN_FRAMEWORK_DIR = bundled("frameworks")
FrameKind = Literal["setup", "training", "evaluation", "saving"]
FRAME_KINDS: tuple[FrameKind, ...] = ("saving", "evaluation", "setup", "training")
_STEP_GROUPS = ({"step"}, {"epoch", "iteration", "epoch_total"})


class StepSample(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A line a step format must read, and what it must read from it (`step: null`: nothing)."""

    line: str
    step: int | None
    total: int | None = None


class StepFormat(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How a trainer prints its optimizer step: a pattern with named groups, and samples."""

    name: Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
    pattern: str
    description: str | None = None  # a bar's description must match this (a training bar, not `Map:`)
    epoch_base: Literal[0, 1] = 1  # with `epoch`/`iteration`/`epoch_total` groups: the first epoch's number
    loss_on_line: bool = False  # the format prints the loss on the same line as the step
    samples: Annotated[list[StepSample], msgspec.Meta(min_length=1)]

    def validate(self) -> None:
        check_regex("pattern", self.pattern)
        groups = set(regex.compile(self.pattern).groupindex)
        if not any(required <= groups for required in _STEP_GROUPS):
            raise InvalidField("pattern", "a step pattern names a `step` group, or `epoch`, `iteration` and "
                                          "`epoch_total`")
        if (self.description is None) != ("description" not in groups):
            raise InvalidField("description", "a `description` group and a `description` pattern come together")


class Frames(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Function names whose traceback frames place a failure: setting up, training, evaluating, saving."""

    setup: list[str] = []
    training: list[str] = []
    evaluation: list[str] = []
    saving: list[str] = []


class Verification(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to cut a launch command down to a run of minutes that still shows whether a fix holds."""

    change: dict[str, Any] = {}  # settings given new values where the command sets them
    add: dict[str, Any] = {}  # settings set always (ones the framework surely takes)
    dataset_sample: str | None = None  # how to name a few samples of a dataset, `{dataset}` the dataset

    def validate(self) -> None:
        _check_setting_names("change", self.change)
        _check_setting_names("add", self.add)


def _check_setting_names(field: str, value: dict[str, Any]) -> None:
    unknown = sorted(set(value) - set(SETTING_NAMES))
    if unknown:
        raise InvalidField(field, f"unknown setting {unknown[0]!r}; settings are named as in "
                                  "app/diagnosis/settings.py")


class FrameworkSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The schema of one framework file."""

    id: Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
    title: Annotated[str, msgspec.Meta(min_length=1)]
    precedence: Annotated[int, msgspec.Meta(ge=0, le=100)]  # when several are recognised in one log, the highest
    recognise: list[str] = []
    spellings: list[str] = []  # how it names settings, for advice on ones the log lacks
    launcher_env: dict[str, str] = {}  # a setting its launcher takes from the environment
    steps: list[StepFormat] = []
    frames: Frames = Frames()
    collective_sequence: str | None = None  # a collective's running number in its errors, group `sequence`
    setup_lines: list[str] = []  # lines that show the run setting itself up
    save_lines: list[str] = []  # lines that show a checkpoint being written
    checkpoint_steps: list[str] = []  # a checkpoint's name with its step, group `step`
    total_steps_settings: list[str] = []  # settings that state the run's total steps
    commands: list[str] = []  # patterns on a launch command that name this framework
    settings: dict[str, list[str]] = {}  # a setting's spellings, by its common name
    defaults: dict[str, Any] = {}  # what the framework uses when a setting is not given
    verification: Verification | None = None

    def validate(self) -> None:
        _check_setting_names("settings", self.settings)
        _check_setting_names("defaults", self.defaults)
        for field in ("recognise", "setup_lines", "save_lines", "commands"):
            for pattern in getattr(self, field):
                check_regex(field, pattern)
        for pattern in self.checkpoint_steps:
            check_regex("checkpoint_steps", pattern, groups=["step"])
        check_regex("collective_sequence", self.collective_sequence, groups=["sequence"])


class CompiledStepFormat(msgspec.Struct, frozen=True, dict=True):
    """A step format, its patterns compiled on first use (a log without progress never needs them)."""

    spec: StepFormat

    @cached_property
    def pattern(self) -> regex.Pattern[bytes]:
        return compiled_pattern(self.spec.pattern.encode("utf-8"), regex.MULTILINE)

    @cached_property
    def description(self) -> regex.Pattern[bytes] | None:
        return compiled_pattern(self.spec.description.encode("utf-8")) if self.spec.description else None


class Framework(msgspec.Struct, frozen=True):
    spec: FrameworkSpec
    path: Path

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def recognise(self) -> tuple[regex.Pattern[bytes], ...]:
        """The lines that show this framework ran, compiled on first use."""
        return tuple(compiled_pattern(pattern.encode("utf-8")) for pattern in self.spec.recognise)


class FrameworkSet(msgspec.Struct, frozen=True):
    """Every framework file, by precedence (highest first), with their step formats and frame names pooled."""

    frameworks: tuple[Framework, ...]
    step_formats: tuple[CompiledStepFormat, ...]
    frames: dict[FrameKind, frozenset[str]]
    version: str

    def by_id(self, framework_id: str | None) -> Framework | None:
        """The framework with this id, or None."""
        return next((framework for framework in self.frameworks if framework.id == framework_id), None)

    def total_steps_settings(self) -> list[str]:
        """The settings that state how many steps the run will take (`max_steps`, `train_iters`, ...)."""
        return [name for framework in self.frameworks for name in framework.spec.total_steps_settings]

    def line_marker(self, kind: Literal["setup_lines", "save_lines"]) -> regex.Pattern[bytes]:
        """One pattern for every framework's setup (or save) lines, compiled once per process."""
        return compiled_pattern(self.line_marker_source(kind))

    def line_marker_source(self, kind: Literal["setup_lines", "save_lines"]) -> bytes:
        """line_marker's source, for a screen (which needs no compiled `regex`)."""
        patterns = [pattern for framework in self.frameworks for pattern in getattr(framework.spec, kind)]
        return b"|".join(b"(?:" + pattern.encode("utf-8") + b")" for pattern in patterns)

    def checkpoint_step(self, text: str) -> int | None:
        """The step in the name of the last checkpoint the text mentions (`checkpoint-600`, `global_step600`)."""
        found: list[tuple[int, int]] = []
        for framework in self.frameworks:
            for pattern in framework.spec.checkpoint_steps:
                found += [(match.end(), int(match.group("step"))) for match in regex.finditer(pattern, text)]
        return max(found)[1] if found else None

    def collective_sequence(self, text: str) -> int | None:
        """The collective's running number an error line shows (NCCL's `SeqNum=123456`), or None."""
        for framework in self.frameworks:
            if framework.spec.collective_sequence and (
                found := regex.search(framework.spec.collective_sequence, text)
            ):
                return int(found.group("sequence"))
        return None

    def for_command(self, text: str) -> Framework | None:
        """The framework of highest precedence whose command patterns the launch command matches."""
        for framework in self.frameworks:
            if any(regex.search(pattern, text) for pattern in framework.spec.commands):
                return framework
        return None

    def setting_spellings(self, framework: Framework | None, name: str) -> list[str]:
        """How a setting may be spelled in this framework's commands: its own names first, then the common ones."""
        spellings: list[str] = []
        for source in (framework, self.by_id("generic")):
            if source is not None:
                spellings += [spelling for spelling in source.spec.settings.get(name, []) if spelling not in spellings]
        return spellings

    def setting_default(self, framework: Framework | None, name: str) -> Any:
        """What the framework uses when the command does not set it (None: unknown)."""
        for source in (framework, self.by_id("generic")):
            if source is not None and name in source.spec.defaults:
                return source.spec.defaults[name]
        return None

    def verification(self, framework: Framework | None) -> Verification:
        """How to cut this framework's command down to a verification run."""
        for source in (framework, self.by_id("generic")):
            if source is not None and source.spec.verification is not None:
                return source.spec.verification
        return Verification()

    def launcher_env(self) -> dict[str, str]:
        """Settings launchers take from the environment (`nproc_per_node` as `NPROC_PER_NODE`)."""
        merged: dict[str, str] = {}
        for framework in self.frameworks:
            merged.update(framework.spec.launcher_env)
        return merged


def screen_expression(pattern: str) -> bytes:
    """The pattern as Hyperscan takes it: named groups become plain groups (Hyperscan keeps no captures)."""
    plain: str = regex.sub(r"\(\?P<\w+>", "(?:", pattern)
    return plain.encode("utf-8")


def _load_file(path: Path) -> Framework:
    spec = read_spec(path, FrameworkSpec, kind="framework")
    if spec.id != path.stem:
        raise SignatureError(f"{path}: field 'id': {spec.id!r} must equal the file name {path.stem!r}")
    return Framework(spec=spec, path=path)


def load_framework_set(
    extra_dirs: Sequence[Path] = (), *, builtin_dir: Path | None = BUILTIN_FRAMEWORK_DIR,
    cache_dir: Path | None = None,
) -> FrameworkSet:
    """Load the built-in framework files and any extra folders; ids must be unique across all."""
    directories = ([builtin_dir] if builtin_dir is not None else []) + list(extra_dirs)
    loaded, version = load_folders(directories, _load_file, kind="framework", cache_dir=cache_dir)
    frameworks = tuple(sorted(loaded, key=lambda framework: -framework.spec.precedence))
    step_formats = tuple(
        CompiledStepFormat(spec=step)
        for framework in frameworks
        for step in framework.spec.steps
    )
    frames: dict[FrameKind, frozenset[str]] = {
        kind: frozenset(name for framework in frameworks for name in getattr(framework.spec.frames, kind))
        for kind in FRAME_KINDS
    }
    return FrameworkSet(frameworks=frameworks, step_formats=step_formats, frames=frames,
                        version=version)
