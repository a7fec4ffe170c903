"""Signature files: schema, loading, validation and compilation (see signatures/README.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import regex

from app.diagnosis.knowledge import ID_PATTERN, Samples, check_regex, compiled_pattern, load_folders, read_spec
from app.diagnosis.taxonomy import categories, stages
from app.errors import SignatureError
from app.resources import bundled
from app.validation import InvalidField, Names

BUILTIN_SIGNATURE_DIR = bundled("signatures")


# What the engine knows about the moment of death, for remedy conditions (`when:`); every other name
# in a condition is a setting, and must be one that some remedy of the set names.
CIRCUMSTANCES = ("during_eval", "during_save", "during_load", "allocation_exceeds_gpu")


class Ceiling(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The most a scaled suggestion may be, under conditions: the field's safe learning rate for a dtype."""

    value: float
    when: Names = Names()


class RemedySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One remedy of a signature: which setting, what to do with it, and why."""

    parameter: Names
    action: Literal["halve", "double", "scale", "set", "enable", "disable", "advise"]
    why: Annotated[str, msgspec.Meta(min_length=1)]
    value: Any = None
    factor: float | None = None
    compensate: Names = Names()
    when: Names = Names()
    only_if_present: bool = False
    unless_current: Names = Names()
    parameter_from: str | None = None  # a regex with a `parameter` group: the setting the error line names
    when_error: str | None = None  # a regex the root cause's line must match (which package is missing, say)
    promote_if: str | None = None  # a regex on the error and its traceback that puts this remedy first
    ceiling: list[Ceiling] = []  # the first whose `when` holds caps the suggestion

    def validate(self) -> None:
        if not self.parameter:
            raise InvalidField("parameter", "Expected at least one setting")
        check_regex("when_error", self.when_error)
        check_regex("promote_if", self.promote_if)
        check_regex("parameter_from", self.parameter_from, groups=["parameter"])
        if self.action == "scale" and self.factor is None:
            raise InvalidField("factor", "action 'scale' needs a 'factor'")
        if self.action == "set" and self.value is None:
            raise InvalidField("value", "action 'set' needs a 'value'")


class PatternSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A pattern that counts only where another line shows within the lines just before it.

    `after` is what makes a line evidence: torchrun's `exitcode: -9` is the verdict under its `Root Cause`
    header and a cascade elsewhere; a `KeyError` is a data error when the traceback runs through the
    dataset code.
    """

    pattern: Annotated[str, msgspec.Meta(min_length=1)]
    after: Annotated[str, msgspec.Meta(min_length=1)]
    within_lines: Annotated[int, msgspec.Meta(ge=1, le=200)] = 8


class SignatureSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The schema of one signature file."""

    id: Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
    category: str
    title: Annotated[str, msgspec.Meta(min_length=1)]
    role: Literal["cause", "symptom"] = "cause"
    priority: Annotated[int, msgspec.Meta(ge=0, le=100)] = 50
    stage: str | None = None
    patterns: Annotated[list[str | PatternSpec], msgspec.Meta(min_length=1)]
    exit_status: list[int] = []  # a job's exit status that stands for this signature
    derived_from: Literal["loss_nan", "loss_divergence"] | None = None  # named by the loss curve itself
    explanation: Annotated[str, msgspec.Meta(min_length=1)]
    remedies: list[RemedySpec] = []
    samples: Samples

    def validate(self) -> None:
        if self.category not in categories():
            raise InvalidField("category", f"unknown category {self.category!r}; use one of the taxonomy's ids")
        if self.stage is not None and self.stage not in stages():
            raise InvalidField("stage", f"unknown stage {self.stage!r}; use one of {sorted(stages())}")


class CompiledPattern(msgspec.Struct, frozen=True):
    """One pattern of a signature (validated at load, compiled on first use), with the line that must come
    just before it (if any)."""

    source: str
    after_source: str | None = None
    within_lines: int = 0

    @property
    def compiled(self) -> regex.Pattern[bytes]:
        return compile_pattern(self.source)

    @property
    def after(self) -> regex.Pattern[bytes] | None:
        return compile_pattern(self.after_source) if self.after_source is not None else None


class Signature(msgspec.Struct, frozen=True):
    """A validated signature with its patterns compiled (bytes patterns, matched per line)."""

    spec: SignatureSpec
    compiled: tuple[CompiledPattern, ...]
    path: Path

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def category(self) -> str:
        return self.spec.category


class SignatureSet(msgspec.Struct, frozen=True):
    """Every loaded signature, in load order, with a version that changes when any file changes."""

    signatures: tuple[Signature, ...]
    version: str

    def by_id(self, signature_id: str) -> Signature | None:
        """The signature with this id, or None."""
        for signature in self.signatures:
            if signature.id == signature_id:
                return signature
        return None

    def derived_from(self, evidence: str) -> Signature | None:
        """The signature that names a failure read from the loss curve (`loss_nan`, `loss_divergence`)."""
        return next((signature for signature in self.signatures if signature.spec.derived_from == evidence), None)

    def for_exit_status(self, status: int) -> Signature | None:
        """The signature a job's exit status stands for (137: killed, 143: terminated, 247: a wrapper's -9)."""
        return next((signature for signature in self.signatures if status in signature.spec.exit_status), None)


def compile_pattern(pattern: str) -> regex.Pattern[bytes]:
    """Compile a signature pattern as the matcher uses it: bytes, one line at a time (once per process)."""
    return compiled_pattern(pattern.encode("utf-8"), regex.MULTILINE)


def load_signature_file(path: Path) -> Signature:
    """Load, validate and compile one signature file; SignatureError names the file and the field."""
    spec = read_spec(path, SignatureSpec, kind="signature")
    if spec.id != path.stem:
        raise SignatureError(f"{path}: field 'id': {spec.id!r} must equal the file name {path.stem!r}")
    compiled = []
    for index, pattern in enumerate(spec.patterns):
        source = pattern if isinstance(pattern, str) else pattern.pattern
        after = pattern.after if isinstance(pattern, PatternSpec) else None
        try:
            compile_pattern(source)
            if after is not None:
                compile_pattern(after)
        except regex.error as error:
            raise SignatureError(f"{path}: field 'patterns.{index}': invalid regex: {error}") from None
        compiled.append(CompiledPattern(source, after, pattern.within_lines if isinstance(pattern, PatternSpec) else 0))
    return Signature(spec=spec, compiled=tuple(compiled), path=path)


def load_signature_set(
    extra_dirs: Sequence[Path] = (), *, builtin_dir: Path | None = BUILTIN_SIGNATURE_DIR,
    cache_dir: Path | None = None,
) -> SignatureSet:
    """Load the built-in signatures and a team's extra folders; ids must be unique across all."""
    directories = ([builtin_dir] if builtin_dir is not None else []) + list(extra_dirs)
    loaded, version = load_folders(directories, load_signature_file, kind="signature", cache_dir=cache_dir)
    _check_conditions(loaded)
    return SignatureSet(signatures=tuple(loaded), version=version)


def _check_conditions(signatures: Sequence[Signature]) -> None:
    """Every `when:` names a circumstance or a setting some remedy names: a misspelt condition is an error,
    not advice that is silently never given."""
    settings = {name for signature in signatures for spec in signature.spec.remedies for name in spec.parameter}
    known = settings | set(CIRCUMSTANCES)
    for signature in signatures:
        for index, spec in enumerate(signature.spec.remedies):
            conditions = [*spec.when, *(name for ceiling in spec.ceiling for name in ceiling.when)]
            for name in conditions:
                if name.lstrip("!") not in known:
                    raise SignatureError(
                        f"{signature.path}: field 'remedies.{index}.when': {name!r} is neither a circumstance "
                        f"({', '.join(CIRCUMSTANCES)}) nor a setting any remedy names"
                    )
