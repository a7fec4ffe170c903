"""Remedies with the run's own values, and the launch command with them applied."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Collection, Mapping
from typing import Any

import msgspec
import regex

from app.diagnosis.facts import RunFacts
from app.diagnosis.model import Remedy
from app.diagnosis.settings import parameter_key
from app.diagnosis.signatures import CIRCUMSTANCES, RemedySpec, Signature, SignatureSet
from app.validation import Names

_SWIFT_SCRIPT = re.compile(r"\S*swift/cli/(_megatron/)?(sft|pt|rlhf|infer|export)\.py\b")
_CLI_FLAG = re.compile(r"(?<!\S)--([A-Za-z][\w-]*)(?:=|\s+)(?!--)(\S+)")
_TORCHRUN_ENTRY = re.compile(r"^\S*python[\d.]*\s+-m\s+torch\.distributed\.run\b")


def _round(value: float) -> float | int:
    if value == int(value) and abs(value) >= 1:
        return int(value)
    digits = 3 - math.floor(math.log10(abs(value))) - 1 if value else 0
    return round(value, max(digits, 0))


_RELATIVE_ADVICE = {
    "halve": "half the current value",
    "double": "twice the current value",
    "scale": "{factor}× the current value",
}


def _default_spelling(spellings: list[str], framework_spellings: Collection[str]) -> str:
    """The spelling to suggest when the log shows none: the framework's own (its file's `spellings`), else the
    first listed, so the user can paste the name as is."""
    return next((name for name in spellings if name in framework_spellings), spellings[0])


def is_relative_advice(suggested: Any) -> bool:
    """Whether a suggestion is relative ("half the current value") because the log shows no current value."""
    return isinstance(suggested, str) and suggested.endswith("the current value")


def _suggest(spec: RemedySpec, current: Any) -> Any:
    """The suggested value of one remedy given the current one (None when it cannot be computed)."""
    numeric = isinstance(current, int | float) and not isinstance(current, bool)
    if spec.action == "set":
        return spec.value
    if spec.action == "enable":
        return True
    if spec.action == "disable":
        return False
    if spec.action == "advise":
        return None
    if not numeric:
        return _RELATIVE_ADVICE[spec.action].format(factor=spec.factor) if current is None else None
    if spec.action == "halve":
        return max(1, current // 2) if isinstance(current, int) else _round(current / 2)
    if spec.action == "double":
        return current * 2
    assert spec.factor is not None
    scaled = current * spec.factor
    return max(1, round(scaled)) if isinstance(current, int) and abs(scaled) >= 1 else _round(scaled)


class Circumstances(msgspec.Struct, frozen=True):
    """How the run died, as remedy conditions see it (apart from how it was configured: the RunFacts)."""

    during_eval: bool = False  # the root cause happened inside an evaluation loop
    during_save: bool = False  # the run died while saving a checkpoint
    during_load: bool = False  # the run died before the training loop started
    allocation_exceeds_gpu: bool = False  # one allocation asked for more than the whole card


def _conditions_hold(conditions: list[str], facts: RunFacts, circumstances: Circumstances) -> bool:
    """Every negated condition must be false, and at least one plain one (if any is listed) true."""

    def true(name: str) -> bool:
        return bool(getattr(circumstances, name)) if name in CIRCUMSTANCES else facts.truthy(name)

    required = [name for name in conditions if not name.startswith("!")]
    excluded = [name[1:] for name in conditions if name.startswith("!")]
    if any(true(name) for name in excluded):
        return False
    return not required or any(true(name) for name in required)


def _capped(spec: RemedySpec, suggested: Any, facts: RunFacts, circumstances: Circumstances) -> Any:
    """A scaled suggestion no higher than the first ceiling whose conditions hold (the field's safe value)."""
    if not isinstance(suggested, int | float) or isinstance(suggested, bool):
        return suggested
    for ceiling in spec.ceiling:
        if _conditions_hold(ceiling.when, facts, circumstances):
            return min(suggested, ceiling.value)
    return suggested


def build_remedies(
    signature: Signature,
    facts: RunFacts,
    *,
    circumstances: Circumstances | None = None,
    spellings: Collection[str] = (),
    error_text: str = "",
    error_context: str = "",
) -> list[Remedy]:
    """The signature's remedies, tailored: current values from the log, suggestions computed from them.

    `spellings` are how the run's framework names settings, used for settings the log does not show;
    `error_text` is the root cause's line, for remedies that take the setting from what the error names,
    and `error_context` the traceback above it, for remedies that the place of the error puts first.
    """
    circumstances = circumstances or Circumstances()
    remedies: list[Remedy] = []
    promoted: list[Remedy] = []
    for spec in signature.spec.remedies:
        if not _conditions_hold(spec.when, facts, circumstances):
            continue
        if spec.when_error is not None and regex.search(spec.when_error, error_text) is None:
            continue
        if spec.parameter_from is not None:
            named = regex.search(spec.parameter_from, error_text)
            if named is None:
                continue
            name = named.group("parameter").lstrip("-")
            name = name if name.isupper() else name.lower()  # `Precision '17' is invalid` names `precision`
            spec = msgspec.structs.replace(spec, parameter=Names([name]))
        found = facts.lookup(spec.parameter)
        if found is None and spec.only_if_present:
            continue
        name, current = found if found is not None else (_default_spelling(spec.parameter, spellings), None)
        if current is not None and str(current).lower() in {value.lower() for value in spec.unless_current}:
            continue  # already one of the values the remedy would move away from
        suggested = _capped(spec, _suggest(spec, current), facts, circumstances)
        if current is not None and suggested == current:
            continue  # already what we would suggest
        if spec.action in ("halve", "double", "scale") and current is not None and suggested is None:
            continue
        if spec.action == "halve" and current == 1:
            continue  # cannot halve further; the other remedies apply
        found_remedies = [Remedy(parameter=name, current=current, suggested=suggested, why=spec.why.strip())]
        if spec.compensate and spec.action in ("halve", "double") and _compensation_applies(spec, facts, spellings):
            found_remedies.extend(_compensations(spec, facts, current=current, suggested=suggested))
        first = spec.promote_if is not None and regex.search(spec.promote_if, f"{error_context}\n{error_text}")
        (promoted if first else remedies).extend(found_remedies)
    return promoted + remedies


def _compensation_applies(spec: RemedySpec, facts: RunFacts, spellings: Collection[str]) -> bool:
    """Only where the run has that setting (the log shows it, or its framework spells it): Megatron, say,
    derives accumulation from the global batch."""
    return facts.lookup(spec.compensate) is not None or any(name in spellings for name in spec.compensate)


def _compensations(spec: RemedySpec, facts: RunFacts, *, current: Any, suggested: Any) -> list[Remedy]:
    found = facts.lookup(spec.compensate)
    name, accumulation = found if found is not None else (spec.compensate[0], None)
    if isinstance(current, int) and isinstance(suggested, int) and suggested:
        factor = current / suggested
        base = accumulation if isinstance(accumulation, int) and accumulation > 0 else 1
        new_value = max(1, round(base * factor))
        why = (
            f"Keeps the effective batch (per-device batch × GPUs × accumulation) the same: "
            f"{current} × {base} = {suggested} × {new_value}."
        )
        return [Remedy(parameter=name, current=accumulation, suggested=new_value, why=why)]
    opposite = "double" if spec.action == "halve" else "halve"
    return [Remedy(parameter=name, current=accumulation, suggested=_RELATIVE_ADVICE[opposite],
                   why="Changes by the inverse factor of the batch, so the effective batch stays the same.")]


def _literal(replacement: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement that inserts the text as is (no backslash or group processing)."""
    return lambda _match: replacement


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return shlex.quote(str(value))


def corrected_command(
    command: str | None, remedies: list[Remedy], *, launcher_env: Mapping[str, str] | None = None
) -> str | None:
    """The launch command with the suggested values applied, or None when the log shows no command.

    `launcher_env` names the settings a launcher takes from the environment (`nproc_per_node` as
    `NPROC_PER_NODE`), from the framework files.
    """
    if not command:
        return None
    launcher_env = launcher_env or {}
    text = _friendly_entry(command.strip(), launcher_env)
    config_overrides = _takes_config_overrides(text)
    changed = False
    env_prefix: list[str] = []
    for remedy in remedies:
        if remedy.suggested is None or is_relative_advice(remedy.suggested):
            continue
        value = _format_value(remedy.suggested)
        flag = re.compile(rf"(?<!\S)--{re.escape(remedy.parameter)}(?:=|\s+)(?!--)(\"[^\"]*\"|'[^']*'|\S+)")
        env_name = launcher_env.get(remedy.parameter, remedy.parameter)
        env = re.compile(rf"(?<!\S){re.escape(env_name)}=\S+")
        if occurrences := list(flag.finditer(text)):
            text = _set_last_flag(text, occurrences, f"--{remedy.parameter} {value}")
        elif env.search(text):
            text = env.sub(_literal(f"{env_name}={value}"), text, count=1)
        elif remedy.parameter.isupper():
            env_prefix.append(f"{remedy.parameter}={value}")
        elif config_overrides and remedy.current is not None:  # `train config.yaml key=value`
            text = f"{text} {remedy.parameter}={value}"
        elif " --" in text and remedy.current is not None:  # a setting the run shows, so the tool knows the flag
            text = f"{text} --{remedy.parameter} {value}"
        else:
            continue
        changed = True
    if not changed:
        return None
    return " ".join([*env_prefix, text])


def _set_last_flag(text: str, occurrences: list[re.Match[str]], replacement: str) -> str:
    """The flag set once: argparse keeps the last of repeated flags, so that one takes the new value and the
    earlier ones (which never applied) go."""
    last = occurrences[-1]
    text = text[: last.start()] + replacement + text[last.end() :]
    for earlier in reversed(occurrences[:-1]):
        text = (text[: earlier.start()].rstrip() + " " + text[earlier.end() :].lstrip()).strip()
    return text


def _takes_config_overrides(command: str) -> bool:
    """Whether the command passes a YAML config as a positional argument: such tools (LLaMA-Factory,
    OmegaConf-based scripts) take further settings as `key=value`, not as `--key value`."""
    tokens = command.split()
    for previous, token in zip(["", *tokens], tokens, strict=False):
        if token.endswith((".yaml", ".yml")) and "=" not in token and not previous.startswith("-"):
            return True
    return False


def _friendly_entry(command: str, launcher_env: Mapping[str, str]) -> str:
    """Show ms-swift's own entry point (`NPROC_PER_NODE=4 swift sft ...`) instead of the file the launcher runs."""
    swift = _SWIFT_SCRIPT.search(command)
    if swift is None:
        if match := _TORCHRUN_ENTRY.match(command):
            return "torchrun" + command[match.end() :]
        return command
    launcher = command[: swift.start()]
    env = [
        f"{launcher_env[flag.group(1).replace('-', '_')]}={flag.group(2)}"
        for flag in _CLI_FLAG.finditer(launcher)
        if flag.group(1).replace("-", "_") in launcher_env
    ]
    entry = "megatron" if swift.group(1) else "swift"
    return " ".join([*env, f"{entry} {swift.group(2)}"]) + command[swift.end() :]


def relevant_parameters(signature_set: SignatureSet) -> frozenset[str]:
    """Every parameter any remedy mentions, by its parameter_key: those are the ones worth showing as run facts."""
    names: set[str] = set()
    for signature in signature_set.signatures:
        for spec in signature.spec.remedies:
            names.update(spec.parameter)
            names.update(spec.compensate)
    return frozenset(parameter_key(name) for name in names)
