"""Secrets that training logs leak, replaced before anything is stored or shown.

The forms of secret are data (`redactions/`, see its README). Every form is screened first by one
Hyperscan pass over the block; only the forms that fired run their substitution, so a multi-GB log
without secrets costs one fast scan. The set is built on first use, not at import.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import hyperscan
import msgspec
import regex

from app.diagnosis.knowledge import (
    Samples,
    cached_database,
    check_regex,
    compiled_pattern,
    load_folders,
    read_spec,
)
from app.resources import bundled

BUILTIN_REDACTION_DIR = bundled("redactions")
PATTERN_TIMEOUT_SECONDS = 1.0
_SCREEN_FLAGS = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_PREFILTER


class RedactionSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The schema of one redaction file."""

    kind: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]*$")]
    order: Annotated[int, msgspec.Meta(ge=0, le=100)] = 10
    pattern: str
    samples: Samples

    def validate(self) -> None:
        check_regex("pattern", self.pattern)


class RedactionForm(msgspec.Struct, frozen=True):
    spec: RedactionSpec
    path: Path

    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def pattern(self) -> regex.Pattern[bytes]:
        """Compiled on first use; group "keep", when present, is kept in front of the placeholder."""
        return compiled_pattern(self.spec.pattern.encode("utf-8"))

    def replace(self, match: regex.Match[bytes]) -> bytes:
        kept: bytes = (match.group("keep") if "keep" in self.pattern.groupindex else b"") or b""
        whole: bytes = match.group()
        newlines = whole[len(kept) :].count(b"\n")
        return kept + b"[REDACTED:" + self.spec.kind.encode() + b"]" + b"\n" * newlines


class Redactor:
    """Every redaction form, in order, with the one Hyperscan database that screens for all of them."""

    def __init__(self, forms: list[RedactionForm], *, cache_dir: Path | None = None) -> None:
        self.forms = forms
        expressions = [regex.sub(r"\(\?P<\w+>", "(?:", form.spec.pattern).encode("utf-8") for form in forms]
        self._screen = cached_database(expressions, [_SCREEN_FLAGS] * len(forms), cache_dir)
        self._scratch = threading.local()  # Hyperscan scratch space is per scan in flight: one per thread

    def redact(self, data: bytes) -> bytes:
        """Replace tokens, keys and passwords with `[REDACTED:kind]`, keeping every newline in place."""
        fired: set[int] = set()

        def on_match(form_id: int, start: int, end: int, flags: int, context: object) -> None:
            fired.add(form_id)

        scratch = getattr(self._scratch, "space", None)
        if scratch is None:
            scratch = self._scratch.space = hyperscan.Scratch(self._screen)
        self._screen.scan(data, match_event_handler=on_match, scratch=scratch)
        for form_id in sorted(fired):  # forms are in their order, so ids are too
            form = self.forms[form_id]
            try:
                data = form.pattern.sub(form.replace, data, timeout=PATTERN_TIMEOUT_SECONDS)
            except TimeoutError:
                data = b"\n".join(self._redact_line(form, line) for line in data.split(b"\n"))
        return data

    @staticmethod
    def _redact_line(form: RedactionForm, line: bytes) -> bytes:
        """One line of a block the form could not read whole; a line it cannot read either is dropped, so no
        hostile line lets a secret through."""
        try:
            redacted: bytes = form.pattern.sub(form.replace, line, timeout=PATTERN_TIMEOUT_SECONDS)
            return redacted
        except TimeoutError:
            return b"[REDACTED:unreadable]"


def _load_form(path: Path) -> RedactionForm:
    return RedactionForm(spec=read_spec(path, RedactionSpec, kind="redaction"), path=path)


def load_redactor(directory: Path = BUILTIN_REDACTION_DIR, *, cache_dir: Path | None = None) -> Redactor:
    """Load and validate every redaction form of a folder."""
    forms, _ = load_folders([directory], _load_form, kind="redaction", cache_dir=cache_dir)
    return Redactor(sorted(forms, key=lambda form: form.spec.order), cache_dir=cache_dir)


_default: list[Redactor] = []  # the process's built-in redactor, once loaded
_default_lock = threading.Lock()


def default_redactor(cache_dir: Path | None = None) -> Redactor:
    """The built-in forms, loaded on first use (from the cache folder of the first caller that names one:
    the diagnoser names it as it is built)."""
    with _default_lock:
        if not _default:
            _default.append(load_redactor(cache_dir=cache_dir))
        return _default[0]


def redact_secrets(data: bytes) -> bytes:
    """Replace tokens, keys and passwords with `[REDACTED:kind]`, keeping every newline in place."""
    return default_redactor().redact(data)


def redact_text(text: str) -> str:
    """redact_secrets for a decoded line."""
    return redact_secrets(text.encode("utf-8", errors="surrogateescape")).decode("utf-8", errors="replace")
