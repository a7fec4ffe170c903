"""The terminal report: what killed the run, where, why, what to change, and the evidence."""

from __future__ import annotations

import shutil
import textwrap
from typing import TYPE_CHECKING, Any, TextIO

from app.diagnosis.model import Diagnosis
from app.diagnosis.taxonomy import stage_wording
from app.formatting import format_value

if TYPE_CHECKING:  # a diagnosis report needs no checker
    from app.check.checker import CheckReport

_WIDTH = 100  # at most; a narrower terminal wraps narrower


class _Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text


def _value(value: Any) -> str:
    return format_value(value, missing="?")


def render_report(diagnosis: Diagnosis, *, color: bool = False, width: int = _WIDTH) -> str:
    """A report a person reads in ten seconds, wrapped to `width` columns (at most _WIDTH)."""
    width = max(40, min(width, _WIDTH))
    style = _Style(color)
    lines: list[str] = []
    headline = f"{diagnosis.title}  [{diagnosis.category}]"
    lines.append(style(headline, "1;31" if diagnosis.category != "unknown" else "1;33"))
    where = stage_wording(diagnosis.stage).where
    if diagnosis.stage_reason:
        where += f" ({diagnosis.stage_reason})"
    if diagnosis.step is not None:
        where += f", step {diagnosis.step}" + (f" of {diagnosis.total_steps}" if diagnosis.total_steps else "")
    lines.append(f"Where: {where}    confidence {diagnosis.confidence:.2f}")
    run = diagnosis.run
    facts = [f"{key} {run[key]}" for key in ("framework", "world_size", "gpu") if run.get(key) is not None]
    if facts:
        lines.append("Run:   " + ", ".join(facts).replace("world_size", "GPUs/ranks"))
    lines.append("")
    lines.extend(textwrap.wrap(diagnosis.summary, width))
    if diagnosis.remedies:
        lines.append("")
        lines.append(style("What to change:", "1"))
        for remedy in diagnosis.remedies:
            if remedy.suggested is None:
                change = ""
            elif remedy.current is None:
                change = f" → {_value(remedy.suggested)}"
            else:
                change = f" {_value(remedy.current)} → {_value(remedy.suggested)}"
            lines.append("  " + style(remedy.parameter, "1;32") + change)
            lines.extend(textwrap.wrap(remedy.why, width - 6, initial_indent="      ", subsequent_indent="      "))
    if diagnosis.corrected_command:
        lines.append("")
        lines.append(style("Corrected command:", "1"))
        lines.append("  " + diagnosis.corrected_command)
    if diagnosis.verification_command:
        lines.append("")
        lines.append(style("Verify in minutes:", "1") + " the same run cut down, keeping what the diagnosis blames")
        lines.append("  " + diagnosis.verification_command)
        lines.extend(textwrap.wrap(_VERIFY_MEANING, width - 2, initial_indent="  ", subsequent_indent="  "))
    if diagnosis.evidence:
        lines.append("")
        lines.append(style("Evidence:", "1"))
        for item in diagnosis.evidence:
            lines.append(f"  {item.line:>8} │ {_clip(item.text)}")
    if diagnosis.symptoms:
        lines.append("")
        shown = ", ".join(f"{symptom.signature} (line {symptom.line})" for symptom in diagnosis.symptoms[:6])
        more = len(diagnosis.symptoms) - 6
        lines.extend(textwrap.wrap("Then: " + shown + (f" and {more} more" if more > 0 else ""), width))
    return "\n".join(lines) + "\n"


_VERIFY_MEANING = ("If it passes, the failure needs the run's full scale (data, length, steps): the settings "
                   "kept are fine at this size; if it fails, look at them, the model or the environment.")
_SEVERITY_MARK = {"error": ("✗ error  ", "1;31"), "warning": ("! warning", "1;33"), "info": ("i info   ", "1;36")}


def render_check_report(report: CheckReport, *, color: bool = False, width: int = _WIDTH) -> str:
    """What will crash before the GPUs are booked: each finding with the fix, then the commands to run."""
    width = max(40, min(width, _WIDTH))
    style = _Style(color)
    machine = report.machine
    lines: list[str] = []
    where = []
    if machine.get("gpu"):
        memory = f" ({_value(machine['gpu_memory_gib'])} GiB)" if machine.get("gpu_memory_gib") else ""
        where.append(f"{machine.get('gpus') or '?'} × {machine['gpu']}{memory}")
    elif machine.get("gpus"):
        where.append(f"{machine['gpus']} GPUs")
    for key, label in (("host_memory_gib", "host"), ("shm_gib", "/dev/shm"), ("disk_free_gib", "disk free")):
        if machine.get(key) is not None:
            where.append(f"{label} {_value(machine[key])} GiB")
    heading = style(f"Check: {report.framework or 'unknown framework'}", "1")
    lines.append(heading + (", " + ", ".join(where) if where else ""))
    batch = report.effective_batch
    lines.append(f"Effective batch: {_value(batch['per_device'])} per device × {_value(batch['gpus'])} GPUs × "
                 f"{_value(batch['accumulation'])} accumulation = {_value(batch['total'])}")
    lines.append("")
    if not report.findings:
        lines.append(style("No findings:", "1;32") + " nothing in this command is known to crash on this machine.")
    for finding in report.findings:
        mark, code = _SEVERITY_MARK[finding.severity]
        lines.append(f"{style(mark, code)}  {style(finding.title, '1')}  [{finding.rule}]")
        lines.append("      settings: " + ", ".join(finding.parameters))
        lines.extend(textwrap.wrap(finding.message, width - 6, initial_indent="      ", subsequent_indent="      "))
        if finding.suggested:
            fixes = ", ".join(f"{name} → {'(remove)' if value is None else _value(value)}"
                              for name, value in finding.suggested.items())
            lines.append("      " + style("fix: ", "1;32") + fixes)
        lines.append("")
    if report.corrected_command:
        lines.append(style("Corrected command:", "1"))
        lines.append("  " + report.corrected_command)
        lines.append("")
    if report.verification_command:
        lines.append(style("Verify in minutes:", "1") + " the run cut down, keeping the settings the findings name")
        lines.append("  " + report.verification_command)
    return "\n".join(lines).rstrip("\n") + "\n"


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wants_color(stream: TextIO, *, no_color: bool) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return stream.isatty() and not no_color


def terminal_width(stream: TextIO) -> int:
    """The columns of the terminal the stream writes to (_WIDTH when it is no terminal)."""
    if not stream.isatty():
        return _WIDTH
    return shutil.get_terminal_size((_WIDTH, 24)).columns
