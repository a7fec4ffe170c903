"""Run facts read from the log: framework, launch parameters, world size, GPU, the launch command."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hyperscan
import msgspec

from app.diagnosis.command import read_command
from app.diagnosis.frameworks import Framework
from app.diagnosis.knowledge import cached_database, compile_database
from app.diagnosis.redact import redact_text
from app.diagnosis.settings import parameter_key, parse_value

HEAD_LIMIT = 2 << 20
MAX_PARAMETERS = 2000

_RANK = rb"(?:\[(?:rank|default)\d+\]:)?"  # torchrun's per-rank line prefix, allowed where a pattern is anchored
_MULTILINE_ARG = re.compile(rb"^" + _RANK + rb"(?:\[INFO:\w+\]\s*)?([a-z_][a-z0-9_]*)=([^\n]*?),?\r?$", re.M)
_INLINE_ARG = re.compile(rb"(?<![\w.-])([a-z_][a-z0-9_]*)=('[^'\n]{0,300}'|\"[^\"\n]{0,300}\"|[\w.+/:-]{1,300})")
_DICT_VALUE = rb"':\s*('[^'\n]{0,300}'|[\w.+-]{1,100})"
_DICT_ARG = re.compile(rb"'([a-z_][a-z0-9_]*)" + _DICT_VALUE)
# Megatron's argument dump
_DOTTED_ARG = re.compile(rb"^" + _RANK + rb"\s*([a-z_][a-z0-9_]*) \.{3,} ([^\s]+)\r?$", re.M)
_JSON_ARG = re.compile(rb"\"([a-z_][a-z0-9_]*)\":\s*(\"[^\"\n]{0,300}\"|[\w.+-]{1,100})")  # DeepSpeed's JSON config
# a pasted YAML config
_YAML_ARG = re.compile(rb"^" + _RANK + rb"[ \t]*([a-z_][a-z0-9_]*):[ \t]+([^\s,#]+)[ \t]*\r?$", re.M)
_SWIFT_INFO = re.compile(rb"^" + _RANK + rb"\[INFO:swift\] ([a-z_][a-z0-9_]*): ([^\s,]+)\r?$", re.M)
_ENV_ASSIGN = re.compile(
    rb"(?<![\w.-])((?:NCCL|TORCH|CUDA|PYTORCH|MASTER|NPROC|NNODES|WORLD|OMP|HF|ACCELERATE|DS|MEGATRON)[A-Z0-9_]*)"
    rb"=('[^'\n]*'|\"[^\"\n]*\"|[^\s,;]+)"
)
_ARGUMENTS = (_MULTILINE_ARG, _DOTTED_ARG, _SWIFT_INFO, _DICT_ARG, _JSON_ARG, _INLINE_ARG, _ENV_ASSIGN, _YAML_ARG)
_COMMAND = re.compile(
    rb"(?:^" + _RANK + rb"|[ \t`'\"$>])((?:[\w=:/.,-]+=[^\s]+[ \t]+)*"
    rb"(?:(?:swift|megatron)[ \t]+(?:sft|pt|rlhf|train)\b|"
    rb"torchrun\b|accelerate[ \t]+launch\b|deepspeed(?:[ \t]+[^\s`]+){0,8}?[ \t]+[^\s]+\.py\b|"
    rb"llamafactory-cli[ \t]+train\b|[^\s]*python[\d.]*[ \t]+(?:-m[ \t]+[\w.]+|[^\s]+\.py\b))[^\n`]{0,4000})",
    re.M,
)
_WORLD_SIZE = re.compile(
    rb"(?:\b|(?<=_))world[_ ]size\W{1,4}(\d+)|--nproc[_-]per[_-]node[= ](\d+)|\bNPROC_PER_NODE=(\d+)"
    rb"|Num processes: (\d+)"
)
_GPU_NAME = re.compile(
    rb"\b((?:NVIDIA |Tesla |Quadro )?(?:GeForce )?(?:RTX |GTX )?(?:[AHBLTV]\d{1,3}|RTX ?\d{4}\w*|A\d{2,4}|GB\d{3}|"
    rb"MI\d{3}X?|Ascend ?\d+\w*)(?:[- ](?:SXM\d?|PCIE|NVL|PCIe|\d+GB))*)\b"
)
_OOM_MEMORY = re.compile(
    r"total capacity of ([\d.]+) ([GM]iB).*?of which ([\d.]+) ([GMK]iB) is free"
    r"(?:.*?([\d.]+) ([GM]iB) is allocated by PyTorch)?"
)
_TRIED_ALLOCATE = re.compile(r"Tried to allocate ([\d.]+) ([GMK]iB)")
# Progress lines (their learning_rate is the schedule's), warnings, and error messages (which quote values).
_NOT_SETTINGS = re.compile(rb"['\"]loss['\"]|\bloss[=: ]|%\||it/s|Warning|warn\(|Error\b|Exception\b")
# A traceback's frame line, and the source line it quotes and the carets under it after it.
_FRAME_LINE = re.compile(rb"^" + _RANK + rb"[ \t]*File \"", re.M)
_QUOTED_SOURCE = re.compile(rb"^" + _RANK + rb"    ", re.M)
_CARETS = re.compile(rb"^" + _RANK + rb"[ \t]*\^", re.M)
_RANK_PREFIX = re.compile(rb"\[(?:rank|default)(\d+)\]")
_LONG_REPEAT = re.compile(rb"(?<!\\)\{(\d+),\d{3,}\}")
# What the head's screen looks for, in this order (the frameworks' marks follow them).
_SCREENED = (*_ARGUMENTS, _COMMAND, _GPU_NAME, _WORLD_SIZE)
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")


def _byte_class(members: set[int] | frozenset[int], *, negated: bool = False) -> bytes:
    return b"[" + b"^" * negated + b"".join(b"\\x%02x" % byte for byte in sorted(members)) + b"]"


def _any_byte_but(excluded: bytes) -> bytes:
    """Any byte of a line but these."""
    return _byte_class(set(excluded) | {ord("\n")}, negated=True)


def _word_byte(*, first: bool, but: bytes = b"") -> bytes:
    """A byte of an identifier (its first: no digit), but these."""
    return _byte_class((_WORD - set(b"0123456789") if first else _WORD) - set(but))


def _text_without(literal: bytes) -> bytes:
    """An expression for any text within a line that does not hold `literal`; Hyperscan has no lookahead.

    The literal's first byte may recur only as its last, so that a partial match that fails restarts either at
    that byte or at none (what a general automaton would work out).
    """
    first, size = literal[:1], len(literal)
    if first in literal[1:-1]:
        raise ValueError(f"{literal!r}: its first byte recurs inside it")
    quoted = [re.escape(literal[1:read]) for read in range(size)]  # what follows `first` in each partial match
    # from a partial match of `read` bytes: back to a partial match of one (`first` again), or to none
    again = [quoted[read] + re.escape(first) for read in range(1, size) if literal[read] != first[0]]
    broken = [quoted[read] + _any_byte_but(bytes([literal[read], first[0]])) for read in range(1, size)]
    restarts = re.escape(first) + b"(?:" + b"|".join(again) + b")*"
    ends_partway = restarts + b"(?:" + b"|".join(quoted[2:]) + b")?" if size > 2 else restarts
    return (b"(?:" + _any_byte_but(first) + b"|" + restarts + b"(?:" + b"|".join(broken) + b"))*(?:"
            + ends_partway + b")?")


def _identifier_other_than(word: bytes) -> bytes:
    """An expression for any identifier (`[a-z_][a-z0-9_]*`) but `word`."""
    tail = _word_byte(first=False) + b"*"
    branches = [word[:at] + _word_byte(first=at == 0, but=word[at : at + 1]) + tail for at in range(len(word))]
    branches += [word[:at] for at in range(1, len(word))]
    branches.append(word + _word_byte(first=False) + b"+")
    return b"(?:" + b"|".join(branches) + b")"


# The screen's own form of a pattern, where it can leave out lines whose settings would be dropped
# (_NOT_SETTINGS) and which come by the thousand: a loss dict every logging step (`{'loss': 2.1, 'grad_norm':
# 0.3, ...}`) is full of dict arguments, so only those with no `'loss'` before them, and whose key is not `loss`,
# are screened. A line that states settings holds no `'loss'`, so none is missed.
_SCREEN_FORMS = {
    _DICT_ARG: b"^" + _text_without(b"'loss'") + b"'(" + _identifier_other_than(b"loss") + b")" + _DICT_VALUE,
}


class RunFacts(msgspec.Struct):
    """What the log says about the run; `parameters` keeps each name as the log spells it."""

    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    command: str | None = None
    framework: str | None = None
    world_size: int | None = None
    gpu: str | None = None
    gpu_memory_gib: float | None = None
    gpu_free_gib: float | None = None
    tried_to_allocate_gib: float | None = None

    def lookup(self, names: list[str]) -> tuple[str, Any] | None:
        """The first of these settings the log shows a value for, as (spelling in the log, value)."""
        spellings = {parameter_key(key): key for key in self.parameters}
        for key in self.parameters:  # a namespaced flag (Lightning CLI `--trainer.accumulate_grad_batches`)
            spellings.setdefault(parameter_key(key).rsplit(".", 1)[-1], key)
        for name in names:
            found = name if name in self.parameters else spellings.get(parameter_key(name))
            if found is not None:
                return found, self.parameters[found]
        return None

    def truthy(self, name: str) -> bool:
        """Whether a parameter the log shows is set to something true (used by remedy conditions)."""
        found = self.lookup([name])
        if found is None:
            return False
        value = found[1]
        return bool(value) and value not in ("no", "false", "False", "0", "none")

    def to_dict(self, relevant: frozenset[str]) -> dict[str, Any]:
        """The `run` object of the diagnosis: the facts plus the parameters remedies care about (`relevant`: their
        parameter_key)."""
        run: dict[str, Any] = {
            key: value
            for key, value in (
                ("framework", self.framework),
                ("world_size", self.world_size),
                ("gpu", self.gpu),
                ("gpu_memory_gib", self.gpu_memory_gib),
                ("gpu_free_gib", self.gpu_free_gib),
                ("tried_to_allocate_gib", self.tried_to_allocate_gib),
                ("command", self.command),
            )
            if value is not None
        }
        parameters = {
            key: value
            for key, value in self.parameters.items()
            if parameter_key(key) in relevant or parameter_key(key).rsplit(".", 1)[-1] in relevant
        }
        if parameters:
            run["parameters"] = parameters
        return run


class FactCollector:
    """Collects run facts from the head of the log (where launchers print arguments) and from hit lines.

    One entry per setting: the first value printed, except that the launch command's flags win, value and
    spelling (Megatron's `--micro-batch-size` over the `micro_batch_size` of its argument dump).
    """

    def __init__(self, known_parameters: frozenset[str] = frozenset(), *, screen: FactScreen | None = None) -> None:
        """`known_parameters`: by parameter_key; `screen`: the diagnoser's, which knows the frameworks; by default one
        that knows none."""
        self.facts = RunFacts()
        self._screen = screen if screen is not None else FactScreen(())
        self._frameworks = self._screen.frameworks
        self._known = known_parameters  # bare `key: value` lines count for these
        self._spellings: dict[str, str] = {}  # parameter_key -> the key in facts.parameters
        self._head_seen = 0
        self._framework_rank = len(self._frameworks)
        self._max_rank = -1

    def feed(self, data: bytes, first_line: int = 1, fired: Mapping[str, int] | None = None) -> None:
        """Take one block of whole lines; only the first HEAD_LIMIT bytes are read for arguments."""
        if self._head_seen >= HEAD_LIMIT:
            return
        data = data[: HEAD_LIMIT - self._head_seen]
        self._head_seen += len(data)
        lines = self._screen.lines(data)
        self._read_framework(lines.marks)
        if ranks := set(_RANK_PREFIX.findall(data)):  # every line of a torchrun log carries one: few distinct
            self._max_rank = max(self._max_rank, *map(int, ranks))
        parameters = self.facts.parameters
        for pattern in _ARGUMENTS:
            for match in pattern.finditer(lines.settings(pattern)):
                if len(parameters) >= MAX_PARAMETERS:
                    break
                key = match.group(1).decode()
                if pattern is _YAML_ARG and parameter_key(key) not in self._known:
                    continue
                if parameter_key(key) not in self._spellings:
                    self._spellings[parameter_key(key)] = key
                    parameters[key] = parse_value(redact_text(match.group(2).decode("utf-8", "replace")))
        if self.facts.command is None and (command := _COMMAND.search(lines.settings(_COMMAND))):
            text = redact_text(command.group(1).decode("utf-8", "replace")).strip().strip("`'\"")
            self.facts.command = text
            for name, value in read_command(text).parameters.items():
                self._set_typed(name, value)
        if self.facts.world_size is None and (world := _WORLD_SIZE.search(lines.of(_WORLD_SIZE))):
            self.facts.world_size = int(next(group for group in world.groups() if group))
        if self.facts.gpu is None and (gpu := _GPU_NAME.search(lines.settings(_GPU_NAME))):
            self.facts.gpu = gpu.group(1).decode().strip()

    def _set_typed(self, name: str, value: Any) -> None:
        """A setting as the user typed it on the command line: replaces any other spelling of it."""
        key = parameter_key(name)
        previous = self._spellings.get(key)
        if previous is not None and previous != name:
            del self.facts.parameters[previous]
        self._spellings[key] = name
        self.facts.parameters[name] = value

    def _read_framework(self, marks: Sequence[bytes]) -> None:
        """The framework of highest precedence whose marks the log shows (`marks`: each one's lines)."""
        for rank, framework in enumerate(self._frameworks[: self._framework_rank]):
            lines = marks[rank]
            if lines and any(marker.search(lines) for marker in framework.recognise):
                self.facts.framework = framework.id
                self._framework_rank = rank
                return

    def finish(self) -> RunFacts:
        """The facts; world size falls back to the highest rank prefix seen."""
        if self.facts.world_size is None and self._max_rank > 0:
            self.facts.world_size = self._max_rank + 1
        return self.facts


def read_error_facts(facts: RunFacts, text: str) -> None:
    """Facts that only error messages give: GPU memory from an OOM message."""
    if facts.gpu_memory_gib is None and (memory := _OOM_MEMORY.search(text)):
        facts.gpu_memory_gib = _gib(memory.group(1), memory.group(2))
        facts.gpu_free_gib = _gib(memory.group(3), memory.group(4))
    if facts.tried_to_allocate_gib is None and (tried := _TRIED_ALLOCATE.search(text)):
        facts.tried_to_allocate_gib = _gib(tried.group(1), tried.group(2))


class FactScreen:
    """The fact patterns and the frameworks' marks in one Hyperscan database, so that `re` reads only the lines
    each may match. Each fact pattern is screened a line at a time (one report per line) in prefilter mode,
    which never misses a line the pattern matches. A framework's mark needs one line that shows it: marks are
    screened exactly, each reporting its first line only (a mark on every line, like the loss dict, would
    otherwise report thousands), unless one is beyond Hyperscan; then every mark is screened as the facts are."""

    def __init__(self, frameworks: Sequence[Framework], cache_dir: Path | None = None) -> None:
        """`frameworks` by precedence; those with no marks are never recognised."""
        self.frameworks = [framework for framework in frameworks if framework.spec.recognise]
        marks = [(rank, mark.encode()) for rank, framework in enumerate(self.frameworks)
                 for mark in framework.spec.recognise]
        flags = hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_ALLOWEMPTY
        first_line_only = hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_ALLOWEMPTY | hyperscan.HS_FLAG_SINGLEMATCH
        try:
            self._database = self._compile(marks, flags, first_line_only, cache_dir)
            screenable = marks
        except hyperscan.error:  # a mark beyond Hyperscan (syntax only `regex` knows): found mark by mark
            screenable = [(rank, mark) for rank, mark in marks if _screenable(_line_expression(mark), flags)]
            self._database = self._compile(screenable, flags, flags, cache_dir)
        # the frameworks with such a mark have their marks searched over the whole head
        self._unscreened = {rank for rank, mark in marks if (rank, mark) not in screenable}
        self._mark_owners = [rank for rank, _ in screenable]
        self._scratch = threading.local()

    @staticmethod
    def _compile(
        marks: list[tuple[int, bytes]], flags: int, mark_flags: int, cache_dir: Path | None
    ) -> hyperscan.Database:
        patterns = [*(_SCREEN_FORMS.get(pattern, pattern.pattern) for pattern in _SCREENED),
                    *(mark for _, mark in marks)]
        expressions = [_line_expression(pattern) for pattern in patterns]
        return cached_database(expressions, [flags] * len(_SCREENED) + [mark_flags] * len(marks), cache_dir)

    def lines(self, text: bytes) -> HeadLines:
        """Where, in this text, each pattern may match."""
        scratch = getattr(self._scratch, "space", None)
        if scratch is None:
            scratch = self._scratch.space = hyperscan.Scratch(self._database)
        ends: list[list[int]] = [[] for _ in range(len(_SCREENED) + len(self._mark_owners))]

        def on_match(index: int, _start: int, end: int, _flags: int, _context: object) -> None:
            ends[index].append(end)

        self._database.scan(text, match_event_handler=on_match, scratch=scratch)
        marks: list[set[int]] = [set() for _ in self.frameworks]
        for owner, mark_ends in zip(self._mark_owners, ends[len(_SCREENED):], strict=True):
            marks[owner].update(mark_ends)
        head = HeadLines(text, ends[: len(_SCREENED)], [sorted(framework_ends) for framework_ends in marks])
        for rank in self._unscreened:
            head.marks[rank] = text
        return head


class HeadLines:
    """One head block and, for each screened pattern, the ends of the lines it may match."""

    def __init__(self, text: bytes, ends: list[list[int]], marks: list[list[int]]) -> None:
        self._text = text
        self._ends = ends
        self._settings_lines: dict[int, bool] = {}  # line end -> whether it may state settings
        self.marks = [self._join(line_ends) for line_ends in marks]  # by framework: the lines its marks may match

    def of(self, pattern: re.Pattern[bytes]) -> bytes:
        """The lines this pattern may match, joined."""
        return self._join(self._ends[_SCREENED.index(pattern)])

    def settings(self, pattern: re.Pattern[bytes]) -> bytes:
        """The lines this pattern may match that may state settings (see _states_settings)."""
        verdicts = self._settings_lines
        kept = []
        for end in self._ends[_SCREENED.index(pattern)]:
            verdict = verdicts.get(end)
            if verdict is None:
                verdict = verdicts[end] = self._states_settings(end)
            if verdict:
                kept.append(end)
        return self._join(kept)

    def _join(self, ends: list[int]) -> bytes:
        text = self._text
        return b"".join(text[text.rfind(b"\n", 0, end) + 1 : end + 1] for end in ends)

    def _states_settings(self, end: int) -> bool:
        """Not a progress line (its learning_rate is the schedule's), a warning, or an error message (which
        quotes values); not a traceback's frame line, nor the source line (`dtype=torch.float32` is no
        setting) or carets it quotes. Asked of the few lines a settings pattern may match, so read with `re`."""
        text = self._text
        start = text.rfind(b"\n", 0, end) + 1
        if _NOT_SETTINGS.search(text, start, end) or _FRAME_LINE.match(text, start):
            return False
        if start == 0:
            return True
        previous = text.rfind(b"\n", 0, start - 1) + 1
        if _FRAME_LINE.match(text, previous):  # the line after a frame line: the source it quotes, or carets
            return not (_QUOTED_SOURCE.match(text, start) or _CARETS.match(text, start))
        if not _CARETS.match(text, start) or previous == 0:
            return True
        frame = text.rfind(b"\n", 0, previous - 1) + 1  # carets under the source line a frame quotes
        return not (_FRAME_LINE.match(text, frame) and _QUOTED_SOURCE.match(text, previous))


def _screenable(expression: bytes, flags: int) -> bool:
    try:
        compile_database([expression], [flags])
    except hyperscan.error:
        return False
    return True


def _line_expression(pattern: bytes) -> bytes:
    """The pattern as screened: matched up to its line's end, so that Hyperscan reports it once per line, and
    with its long bounded repeats unbounded (a superset, which compiles in milliseconds, not seconds)."""
    pattern = _LONG_REPEAT.sub(lambda repeat: b"{%s,}" % repeat[1], pattern)
    return pattern if pattern.endswith(b"$") and not pattern.endswith(b"\\$") else b"(?:" + pattern + b")[^\n]*$"


def _gib(amount: str, unit: str) -> float:
    scale = {"GiB": 1.0, "MiB": 1 / 1024, "KiB": 1 / 1024**2}[unit]
    return round(float(amount) * scale, 2)
