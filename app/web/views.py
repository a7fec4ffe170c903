"""What the diagnosis page shows, computed from a Diagnosis: rows, labels and charts, no HTML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from app.diagnosis.model import Diagnosis
from app.diagnosis.rootcause import message_template
from app.formatting import format_value
from app.web.categories import category_label, stage_label
from app.web.charts import run_progress_bar
from app.web.loss_chart import loss_curve_chart

CONTEXT_RADIUS = 3  # lines of the log shown before and after each evidence line
RUN_FACT_ORDER = ("framework", "model", "world_size", "nnodes", "gpu", "gpu_memory", "dtype")
MISSING = "—"


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    """One log line shown as evidence or its context; `gap_before` when lines were skipped before it."""

    line: int
    text: str
    is_root: bool
    is_evidence: bool
    gap_before: bool


@dataclass(frozen=True, slots=True)
class SymptomRow:
    """One failure in the cascade after the root cause."""

    signature: str
    category: str
    category_label: str
    line: int


@dataclass(frozen=True, slots=True)
class RemedyRow:
    """One parameter to change, values written for people (`suggested` is empty for advice)."""

    parameter: str
    current: str
    suggested: str
    why: str


@dataclass(frozen=True, slots=True)
class DiagnosisView:
    """Everything the diagnosis page shows beyond the Diagnosis's own text fields."""

    category_label: str
    stage_label: str
    where: str
    confidence_percent: int
    progress_bar: Markup
    loss_chart: Markup
    evidence: list[EvidenceLine]
    root_line: int | None
    symptoms: list[SymptomRow]
    remedies: list[RemedyRow]
    run_facts: list[tuple[str, str]]
    blamed_settings: list[tuple[str, str]]  # the run's settings the remedies change, first
    other_settings: list[tuple[str, str]]  # the rest of what the log shows, folded away


def diagnosis_view(diagnosis: Diagnosis, *, context: Mapping[int, str] | None = None) -> DiagnosisView:
    """The page's view of one diagnosis; `context` holds log lines around the evidence, when read."""
    evidence = evidence_lines(diagnosis, context=context or {})
    root = next((line for line in evidence if line.is_root), None)
    has_progress = diagnosis.step is not None and diagnosis.total_steps
    return DiagnosisView(
        category_label=category_label(diagnosis.category),
        stage_label=stage_label(diagnosis.stage),
        where=where_it_died(diagnosis.step, diagnosis.total_steps, stage=diagnosis.stage),
        confidence_percent=round(diagnosis.confidence * 100),
        progress_bar=(
            run_progress_bar(diagnosis.step or 0, diagnosis.total_steps or 0) if has_progress else Markup("")
        ),
        loss_chart=loss_curve_chart(diagnosis.loss_curve),
        evidence=evidence,
        root_line=root.line if root else None,
        symptoms=[
            SymptomRow(symptom.signature, symptom.category, category_label(symptom.category), symptom.line)
            for symptom in diagnosis.symptoms
        ],
        remedies=[
            RemedyRow(
                remedy.parameter,
                format_value(remedy.current),
                "" if remedy.suggested is None else format_value(remedy.suggested),
                remedy.why,
            )
            for remedy in diagnosis.remedies
        ],
        run_facts=run_facts(diagnosis.run),
        **dict(zip(("blamed_settings", "other_settings"), run_settings(diagnosis), strict=True)),
    )


def context_ranges(diagnosis: Diagnosis, *, radius: int = CONTEXT_RADIUS) -> list[range]:
    """The line ranges to read from the log to show each evidence line with its neighbours."""
    return [range(max(item.line - radius, 1), item.line + radius + 1) for item in diagnosis.evidence]


def evidence_lines(diagnosis: Diagnosis, *, context: Mapping[int, str]) -> list[EvidenceLine]:
    """Evidence and context lines in line order; the root cause is the first evidence line no symptom has."""
    symptom_lines = {symptom.line for symptom in diagnosis.symptoms}
    evidence = {item.line: item.text for item in diagnosis.evidence}
    root = next((item.line for item in diagnosis.evidence if item.line not in symptom_lines), None)
    texts = {**context, **evidence}
    numbers = sorted(texts)
    return [
        EvidenceLine(
            line=number,
            text=texts[number],
            is_root=number == root,
            is_evidence=number in evidence,
            gap_before=index > 0 and number > numbers[index - 1] + 1,
        )
        for index, number in enumerate(numbers)
    ]


def where_it_died(step: int | None, total_steps: int | None, *, stage: str) -> str:
    """One phrase: "step 853 of 1,900 (45 %)", "step 853", or the stage when no step is known."""
    if step is None:
        return "while loading, before the first step" if stage == "load" else "step unknown"
    if total_steps:
        return f"step {step:,} of {total_steps:,} ({100 * step / total_steps:.0f} %)"
    return f"step {step:,}"


def run_settings(diagnosis: Diagnosis) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The run's settings as (name, value) rows: those the remedies change, then the others."""
    parameters = diagnosis.run.get("parameters") or {}
    blamed_names = {remedy.parameter for remedy in diagnosis.remedies}
    rows = [(name, format_value(value)) for name, value in parameters.items()]
    return [row for row in rows if row[0] in blamed_names], [row for row in rows if row[0] not in blamed_names]


def run_facts(run: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's facts as (name, value) rows, the most telling first, empty values left out; its settings
    and command are shown on their own."""
    known = [key for key in RUN_FACT_ORDER if key in run]
    rest = sorted(key for key in run if key not in RUN_FACT_ORDER and key not in ("parameters", "command"))
    return [
        (key.replace("_", " "), format_value(run[key])) for key in known + rest if run[key] not in (None, "", [], {})
    ]


def grouping_reason(diagnosis: Diagnosis) -> list[tuple[str, str]]:
    """Why runs count as the same failure kind (what the fingerprint is made of), as (what, value) rows."""
    root = next((item.text for item in diagnosis.evidence if item.line not in {s.line for s in diagnosis.symptoms}),
                diagnosis.evidence[0].text if diagnosis.evidence else "")
    return [
        ("signature", diagnosis.signature or "none (an unknown failure)"),
        ("framework", str(diagnosis.run.get("framework") or "not named in the log")),
        ("root line, masked", message_template(root)[:300] or "—"),
    ]
