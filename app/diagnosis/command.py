"""A launch command read as the shell would split it: environment words, launcher, entry point, settings.

One reader for the command a log shows (run facts) and the command `trainwreck check` is given, so both
see the same settings under the same names.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import msgspec

from app.diagnosis.settings import parameter_key, parse_value

_ENV_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.-]*=")
_CONFIG_FILE = re.compile(r"\.(?:ya?ml|json)$")
_SCRIPT = re.compile(r"\.(?:py|sh)$")
_LAUNCHERS = {"torchrun", "deepspeed", "accelerate", "python", "python3"}
_PYTHON = re.compile(r"^python[\d.]*$")
_ENTRY_WORDS = {
    "swift": {"sft", "pt", "rlhf", "infer", "export", "deploy", "eval"},
    "megatron": {"sft", "pt", "rlhf", "export"},
    "llamafactory-cli": {"train", "export", "chat", "webui", "eval"},
    "accelerate": {"launch"},
}
# Launcher flags that read a config file: the file's settings are the run's too.
_CONFIG_FLAGS = {"deepspeed", "config_file", "config", "deepspeed_config_file"}


class LaunchCommand(msgspec.Struct):
    """What a launch command sets. `parameters` keeps each name as typed (no dashes), the last value given."""

    text: str
    env: dict[str, str] = msgspec.field(default_factory=dict)
    program: str | None = None  # `torchrun`, `swift`, `python`, ...: the first word after the environment
    entry: str | None = None  # `swift sft`, `llamafactory-cli train`, `train.py`, `-m module`
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    config_files: list[str] = msgspec.field(default_factory=list)  # YAML or JSON files the command names

    def find(self, spellings: Sequence[str], parameters: Mapping[str, Any] | None = None) -> tuple[str, Any] | None:
        """The first spelling the command sets, as (the name as typed, its value). Upper-case spellings are
        environment words; a namespaced flag (`--trainer.devices`, a nested config key) counts by its last part."""
        parameters = self.parameters if parameters is None else parameters
        keys = {parameter_key(key): key for key in parameters}
        leaves: dict[str, str] = {}
        for key in parameters:
            leaves.setdefault(parameter_key(key).rsplit(".", 1)[-1], key)
        for spelling in spellings:
            if spelling.isupper():
                if spelling in self.env:
                    return spelling, self.env[spelling]
                continue
            found = keys.get(parameter_key(spelling)) or leaves.get(parameter_key(spelling))
            if found is not None:
                return found, parameters[found]
        return None


def split_words(text: str) -> list[str]:
    """The command split as a POSIX shell would, or at whitespace when its quotes do not close (a cut log line)."""
    try:
        return shlex.split(text, comments=False)
    except ValueError:
        return text.split()


def read_command(text: str) -> LaunchCommand:
    """Read one command line: `VAR=v ... program [entry] --flag value ... key=value ... config.yaml`."""
    words = split_words(text)
    command = LaunchCommand(text=text.strip())
    index = 0
    while index < len(words) and words[index] in ("env", "export", "exec", "time", "nohup", "srun"):
        index += 1
    while index < len(words) and _ENV_WORD.match(words[index]):
        name, _, value = words[index].partition("=")
        command.env[name] = value
        index += 1
    if index < len(words) and not words[index].startswith("-"):
        command.program = words[index].rsplit("/", 1)[-1]
        index += 1
        subcommands = _ENTRY_WORDS.get(command.program or "", set())
        if index < len(words) and words[index] in subcommands:
            command.entry = f"{command.program} {words[index]}"
            index += 1
    for name, value in _settings(words[index:], command):
        command.parameters[name] = value
        if name in _CONFIG_FLAGS and isinstance(value, str) and _CONFIG_FILE.search(value):
            command.config_files.append(value)
    return command


def _settings(words: list[str], command: LaunchCommand) -> Iterator[tuple[str, Any]]:
    """Flags with their values (several words after one flag make a list), `key=value` overrides, and the
    positional files: a script or module is the entry point, a YAML or JSON one a config file."""
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("--") and len(word) > 2:
            name, equals, inline = word[2:].partition("=")
            if equals:
                yield name, parse_value(inline)
                continue
            values: list[str] = []
            while index < len(words) and _is_value(words[index]):
                values.append(words[index])
                index += 1
            if not values:
                yield name, True
            else:
                yield name, parse_value(values[0]) if len(values) == 1 else [parse_value(value) for value in values]
        elif word == "-m" and index < len(words) and command.entry is None:
            command.entry = f"-m {words[index]}"
            index += 1
        elif _OVERRIDE.match(word):
            name, _, value = word.partition("=")
            yield name, parse_value(value)
        elif _CONFIG_FILE.search(word):
            command.config_files.append(word)
        elif _SCRIPT.search(word) and command.entry is None:
            command.entry = word


def _is_value(word: str) -> bool:
    """Whether a word after a flag is its value: not another flag (a negative number is a value), not a
    `key=value` override, not the script a launcher is given (a config file after a flag is its value)."""
    if word.startswith("--") or (word.startswith("-") and not re.match(r"^-\d", word)):
        return False
    return not (_OVERRIDE.match(word) or _SCRIPT.search(word))


def command_from_script(text: str) -> str | None:
    """The launch line of a shell script or pasted block: continuation lines joined, `export VAR=v` lines kept
    as environment words in front, comments dropped; the last line that runs a program with flags."""
    joined = re.sub(r"\\\r?\n", " ", text)
    exports: list[str] = []
    launch: str | None = None
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") and "=" in line:
            exports.append(line[len("export "):].strip())
            continue
        if " --" in line or re.search(r"\s[A-Za-z_][\w.]*=\S", line) or _CONFIG_FILE.search(line):
            launch = line
    if launch is None:
        return None
    return " ".join([*exports, launch])


class _Removal:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Removal()  # as a new value: take the setting off the command


def _words_of(value: Any) -> list[str]:
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, float):
        return [f"{value:g}"]
    if isinstance(value, list):
        return [word for item in value for word in _words_of(item)]
    return [str(value)]


def _quote(word: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word):  # an environment word: quote its value only
        name, _, value = word.partition("=")
        return f"{name}={shlex.quote(value) if value else ''}"
    return shlex.quote(word)


def edit_command(text: str, changes: Mapping[str, Any], *, launcher_flags: Collection[str] = ()) -> str:
    """The command with each setting given its new value (or removed, for REMOVE), spelled as given: an
    upper-case name is an environment word; a flag the command has keeps its place (repeats collapse to one);
    a `key=value` override stays one; otherwise the flag is added (`key=value` where the command takes a
    config file and overrides, as LLaMA-Factory does). A new `launcher_flags` one goes right after the launcher
    (`torchrun --nproc_per_node 4 train.py ...`), where the launcher, not the script, reads it."""
    words = split_words(text)
    start = 0
    while start < len(words) and (_ENV_WORD.match(words[start]) or words[start] in ("env", "export")):
        start += 1
    for name, value in changes.items():
        if name.isupper():
            words = [word for word in words if not word.startswith(f"{name}=")]
            if value is not REMOVE:
                words.insert(0, f"{name}={_words_of(value)[0]}")
            continue
        spans = _setting_spans(words, name)
        replacement = [] if value is REMOVE else _replacement(words, spans, name, value)
        if spans:
            first = spans[0][0]
            for begin, end in reversed(spans):
                del words[begin:end]
            words[first:first] = replacement
        elif value is not REMOVE and name in launcher_flags and start < len(words):
            position = start + 1
            if position < len(words) and words[position] in _ENTRY_WORDS.get(words[start].rsplit("/", 1)[-1], set()):
                position += 1
            words[position:position] = replacement
        elif value is not REMOVE:
            overrides = any(_OVERRIDE.match(word) or _CONFIG_FILE.search(word) for word in words[start:]) and not any(
                word.startswith("--") for word in words[start:])
            words += [f"{name}={' '.join(_words_of(value))}"] if overrides else replacement
    return " ".join(_quote(word) for word in words)


def _setting_spans(words: list[str], name: str) -> list[tuple[int, int]]:
    """Where the command sets it: each `--name value...`, `--name=value` or `name=value`, as [begin, end)."""
    key = parameter_key(name)
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(words):
        word = words[index]
        flag, equals, _ = word[2:].partition("=") if word.startswith("--") else ("", "", "")
        if flag and parameter_key(flag) == key:
            end = index + 1
            if not equals:
                while end < len(words) and _is_value(words[end]):
                    end += 1
            spans.append((index, end))
            index = end
            continue
        if not word.startswith("-") and _OVERRIDE.match(word) and parameter_key(word.partition("=")[0]) == key:
            spans.append((index, index + 1))
        index += 1
    return spans


def _replacement(words: list[str], spans: list[tuple[int, int]], name: str, value: Any) -> list[str]:
    if spans:
        first = words[spans[-1][0]]
        if not first.startswith("--"):
            return [f"{first.partition('=')[0]}={' '.join(_words_of(value))}"]
        flag = first.partition("=")[0]
        return [f"{flag}={_words_of(value)[0]}"] if "=" in first else [flag, *_words_of(value)]
    return [f"--{name}", *_words_of(value)]
