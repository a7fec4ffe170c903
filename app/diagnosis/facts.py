"""Run facts read from the log: framework, launch parameters, world size, GPU, the launch command."""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hyperscan

from app.diagnosis.command import read_command
from app.diagnosis.frameworks import Framework
from app.diagnosis.matcher import cached_database
from app.diagnosis.redact import redact_text
from app.diagnosis.settings import parameter_key, parse_value

HEAD_LIMIT = 2 << 20
MAX_PARAMETERS = 2000

_MULTILINE_ARG = re.compile(rb"^(?:\[INFO:\w+\]\s*)?([a-z_][a-z0-9_]*)=([^\n]*?),?\r?$", re.M)
_INLINE_ARG = re.compile(rb"(?<![\w.-])([a-z_][a-z0-9_]*)=('[^'\n]{0,300}'|\"[^\"\n]{0,300}\"|[\w.+/:-]{1,300})")
_DICT_ARG = re.compile(rb"'([a-z_][a-z0-9_]*)':\s*('[^'\n]{0,300}'|[\w.+-]{1,100})")
_DOTTED_ARG = re.compile(rb"^\s*([a-z_][a-z0-9_]*) \.{3,} ([^\s]+)\r?$", re.M)  # Megatron's argument dump
_JSON_ARG = re.compile(rb"\"([a-z_][a-z0-9_]*)\":\s*(\"[^\"\n]{0,300}\"|[\w.+-]{1,100})")  # DeepSpeed's JSON config
_YAML_ARG = re.compile(rb"^[ \t]*([a-z_][a-z0-9_]*):[ \t]+([^\s,#]+)[ \t]*\r?$", re.M)  # a pasted YAML config
_SWIFT_INFO = re.compile(rb"^\[INFO:swift\] ([a-z_][a-z0-9_]*): ([^\s,]+)\r?$", re.M)
_ENV_ASSIGN = re.compile(
    rb"(?<![\w.-])((?:NCCL|TORCH|CUDA|PYTORCH|MASTER|NPROC|NNODES|WORLD|OMP|HF|ACCELERATE|DS|MEGATRON)[A-Z0-9_]*)"
    rb"=('[^'\n]*'|\"[^\"\n]*\"|[^\s,;]+)"
)
_COMMAND = re.compile(
    rb"(?:^|[ \t`'\"$>])((?:[\w=:/.,-]+=[^\s]+[ \t]+)*(?:(?:swift|megatron)[ \t]+(?:sft|pt|rlhf|train)\b|"
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
# A traceback's frame line, the source line it quotes, and the carets under it.
_QUOTED_FRAME = re.compile(rb'^[ \t]*File "[^\n]*(?:\n|\Z)(?:    [^\n]*(?:\n|\Z))?(?:[ \t]*\^[^\n]*(?:\n|\Z))?', re.M)
_RANK_PREFIX = re.compile(rb"\[(?:rank|default)(\d+)\]")
_LINE_RANK_PREFIX = re.compile(rb"^\[(?:rank|default)\d+\]:", re.M)  # torchrun's per-rank line prefix

@dataclass(slots=True)
class RunFacts:
    """What the log says about the run; `parameters` keeps each name as the log spells it."""

    parameters: dict[str, Any] = field(default_factory=dict)
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

    def to_dict(self, relevant: set[str]) -> dict[str, Any]:
        """The `run` object of the diagnosis: the facts plus the parameters remedies care about."""
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
        wanted = {parameter_key(name) for name in relevant}
        parameters = {
            key: value
            for key, value in self.parameters.items()
            if parameter_key(key) in wanted or parameter_key(key).rsplit(".", 1)[-1] in wanted
        }
        if parameters:
            run["parameters"] = parameters
        return run


class FactCollector:
    """Collects run facts from the head of the log (where launchers print arguments) and from hit lines.

    One entry per setting: the first value printed, except that the launch command's flags win, value and
    spelling (Megatron's `--micro-batch-size` over the `micro_batch_size` of its argument dump).
    """

    def __init__(self, known_parameters: Collection[str] = (), *, frameworks: Sequence[Framework] = ()) -> None:
        self.facts = RunFacts()
        self._frameworks = [framework for framework in frameworks if framework.recognise]  # by precedence
        self._known = {parameter_key(name) for name in known_parameters}  # bare `key: value` lines count for these
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
        self._read_framework(data)
        if ranks := set(_RANK_PREFIX.findall(data)):  # every line of a torchrun log carries one: few distinct
            self._max_rank = max(self._max_rank, *map(int, ranks))
        parameters = self.facts.parameters
        settings_text = _settings_text(data)
        patterns = (_MULTILINE_ARG, _DOTTED_ARG, _SWIFT_INFO, _DICT_ARG, _JSON_ARG, _INLINE_ARG, _ENV_ASSIGN, _YAML_ARG)
        for pattern in patterns:
            for match in pattern.finditer(settings_text):
                if len(parameters) >= MAX_PARAMETERS:
                    break
                key = match.group(1).decode()
                if pattern is _YAML_ARG and parameter_key(key) not in self._known:
                    continue
                if parameter_key(key) not in self._spellings:
                    self._spellings[parameter_key(key)] = key
                    parameters[key] = parse_value(redact_text(match.group(2).decode("utf-8", "replace")))
        if self.facts.command is None and (command := _COMMAND_SCREEN.search(settings_text)):
            text = redact_text(command.group(1).decode("utf-8", "replace")).strip().strip("`'\"")
            self.facts.command = text
            for name, value in read_command(text).parameters.items():
                self._set_typed(name, value)
        if self.facts.world_size is None and (world := _WORLD_SIZE_SCREEN.search(data)):
            self.facts.world_size = int(next(group for group in world.groups() if group))
        if self.facts.gpu is None and (gpu := _GPU_NAME_SCREEN.search(settings_text)):
            self.facts.gpu = gpu.group(1).decode().strip()

    def _set_typed(self, name: str, value: Any) -> None:
        """A setting as the user typed it on the command line: replaces any other spelling of it."""
        key = parameter_key(name)
        previous = self._spellings.get(key)
        if previous is not None and previous != name:
            del self.facts.parameters[previous]
        self._spellings[key] = name
        self.facts.parameters[name] = value

    def _read_framework(self, data: bytes) -> None:
        """The framework of highest precedence whose marks the log shows."""
        for rank, framework in enumerate(self._frameworks[: self._framework_rank]):
            if any(marker.search(data) for marker in framework.recognise):
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


def _settings_text(data: bytes) -> bytes:
    """The lines that may state settings: not progress lines (their learning_rate is the schedule's), not
    warnings, and not the source lines a traceback quotes (`dtype=torch.float32` in code is no setting).
    Each step is one pass over the whole text in C; Hyperscan finds the lines to leave out."""
    text = _QUOTED_FRAME.sub(b"", _LINE_RANK_PREFIX.sub(b"", data))
    left_out = _NOT_SETTINGS_SCREEN.matching_lines(text)
    if not left_out:
        return text
    kept, position = [], 0
    for start, end in left_out:
        kept.append(text[position:start])
        position = end
    kept.append(text[position:])
    return b"".join(kept)


class _LineScreen:
    """A `re` pattern screened by Hyperscan in prefilter mode (it never misses a line the pattern matches), so
    that `re` runs only from the lines that may hold a match. Compiled on first use unless loaded before (see
    load_fact_screens); scratch per thread."""

    def __init__(self, pattern: re.Pattern[bytes], *, every_match: bool = False) -> None:
        self.pattern = pattern
        self._flags = hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_PREFILTER
        self._flags |= 0 if every_match else hyperscan.HS_FLAG_SINGLEMATCH
        self._lock = threading.Lock()
        self._database: hyperscan.Database | None = None
        self._scratch = threading.local()

    def load(self, cache_dir: Path | None) -> hyperscan.Database:
        with self._lock:
            if self._database is None:
                self._database = cached_database([self.pattern.pattern], [self._flags], cache_dir)
            return self._database

    def _match_ends(self, text: bytes) -> list[int]:
        database = self._database or self.load(None)
        scratch = getattr(self._scratch, "space", None)
        if scratch is None:
            scratch = self._scratch.space = hyperscan.Scratch(database)
        ends: list[int] = []
        database.scan(text, match_event_handler=lambda _id, _start, end, _flags, _context: ends.append(end),
                      scratch=scratch)
        return ends

    def search(self, text: bytes) -> re.Match[bytes] | None:
        """The pattern's first match, searched from the line where the screen saw it first, if it did."""
        ends = self._match_ends(text)
        return self.pattern.search(text, text.rfind(b"\n", 0, ends[0]) + 1) if ends else None

    def matching_lines(self, text: bytes) -> list[tuple[int, int]]:
        """(start, end after its newline) of every line where the pattern may match, in order."""
        lines: list[tuple[int, int]] = []
        for end in self._match_ends(text):
            if lines and lines[-1][1] > end:
                continue  # this line is taken already
            line_end = text.find(b"\n", end)
            lines.append((text.rfind(b"\n", 0, end) + 1, len(text) if line_end < 0 else line_end + 1))
        return lines


_NOT_SETTINGS_SCREEN = _LineScreen(_NOT_SETTINGS, every_match=True)
_COMMAND_SCREEN = _LineScreen(_COMMAND)
_WORLD_SIZE_SCREEN = _LineScreen(_WORLD_SIZE)
_GPU_NAME_SCREEN = _LineScreen(_GPU_NAME)


def load_fact_screens(cache_dir: Path | None) -> None:
    """Compile the fact screens now, or read them from the cache folder, rather than on first use."""
    for screen in (_NOT_SETTINGS_SCREEN, _COMMAND_SCREEN, _WORLD_SIZE_SCREEN, _GPU_NAME_SCREEN):
        screen.load(cache_dir)


def _gib(amount: str, unit: str) -> float:
    scale = {"GiB": 1.0, "MiB": 1 / 1024, "KiB": 1 / 1024**2}[unit]
    return round(float(amount) * scale, 2)
