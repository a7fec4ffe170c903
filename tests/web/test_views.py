import math

from app.diagnosis.model import Diagnosis, Evidence, LossPoint, Remedy, Symptom
from app.formatting import format_value
from app.web.views import context_ranges, diagnosis_view, evidence_lines, run_facts, where_it_died


def make_diagnosis(**changes) -> Diagnosis:
    fields = {
        "category": "gpu_oom",
        "stage": "mid_run",
        "step": 853,
        "total_steps": 1900,
        "signature": "cuda-oom",
        "title": "CUDA ran out of GPU memory",
        "summary": "The GPU had no room for the next allocation.",
        "confidence": 0.93,
        "evidence": [
            Evidence(10230, "  File train.py, line 12"),
            Evidence(10234, "torch.OutOfMemoryError: CUDA out of memory."),
            Evidence(10301, "[rank3] Watchdog caught collective operation timeout"),
        ],
        "symptoms": [Symptom("nccl-watchdog", "nccl_timeout", 10301)],
        "remedies": [Remedy("per_device_train_batch_size", 4, 2, "Halving the batch halves activation memory.")],
        "run": {"world_size": 8, "framework": "ms-swift", "gpu": None, "args": {"lr": 1e-4}},
    }
    fields.update(changes)
    return Diagnosis(**fields)


def test_evidence_is_in_line_order_with_gaps_marked():
    lines = evidence_lines(make_diagnosis(), context={})
    assert [line.line for line in lines] == [10230, 10234, 10301]
    assert [line.gap_before for line in lines] == [False, True, True]


def test_context_lines_surround_the_evidence():
    diagnosis = make_diagnosis(evidence=[Evidence(10, "boom")], symptoms=[])
    assert context_ranges(diagnosis, radius=2) == [range(8, 13)]
    context = {8: "a", 9: "b", 10: "boom (from the log)", 11: "c", 12: "d"}
    lines = evidence_lines(diagnosis, context=context)
    assert [(line.line, line.is_evidence, line.is_root) for line in lines] == [
        (8, False, False),
        (9, False, False),
        (10, True, True),
        (11, False, False),
        (12, False, False),
    ]
    assert lines[2].text == "boom"
    assert not any(line.gap_before for line in lines)


def test_context_ranges_never_start_before_line_one():
    assert context_ranges(make_diagnosis(evidence=[Evidence(2, "x")]), radius=3) == [range(1, 6)]


def test_the_root_cause_is_the_first_evidence_line_that_is_no_symptom():
    diagnosis = make_diagnosis(
        evidence=[Evidence(10301, "watchdog timeout"), Evidence(10234, "CUDA out of memory")],
    )
    lines = evidence_lines(diagnosis, context={})
    assert [line.line for line in lines if line.is_root] == [10234]


def test_diagnosis_view_has_labels_progress_remedies_and_facts():
    view = diagnosis_view(make_diagnosis())
    assert view.category_label == "GPU out of memory"
    assert view.stage_label == "Mid-run"
    assert view.where == "step 853 of 1,900 (45 %)"
    assert view.confidence_percent == 93
    assert "Died at step 853 of 1,900" in view.progress_bar
    assert view.loss_chart == ""
    assert view.root_line == 10230
    assert view.symptoms[0].category_label == "Collective timeout"
    assert view.remedies[0].current == "4" and view.remedies[0].suggested == "2"
    assert view.run_facts[0] == ("framework", "ms-swift")


def test_diagnosis_view_draws_the_loss_curve_when_the_log_had_one():
    curve = [LossPoint(step, 2.0) for step in range(1, 20)] + [LossPoint(20, math.nan)]
    assert "NaN at step 20" in diagnosis_view(make_diagnosis(loss_curve=curve)).loss_chart


def test_no_progress_bar_without_a_total():
    assert diagnosis_view(make_diagnosis(total_steps=None)).progress_bar == ""


def test_where_it_died_reads_naturally():
    assert where_it_died(None, None, stage="load") == "while loading, before the first step"
    assert where_it_died(None, None, stage="unknown") == "step unknown"
    assert where_it_died(12, None, stage="early") == "step 12"


def test_format_value_writes_values_for_people():
    assert format_value(None) == "—"
    assert format_value(True) == "true"
    assert format_value(1e-4) == "0.0001"
    assert format_value({"b": 1, "a": "x"}) == '{"a": "x", "b": 1}'
    assert format_value("expandable_segments:True") == "expandable_segments:True"


def test_run_facts_leave_out_empty_values_and_put_known_facts_first():
    facts = run_facts({"zeta": 1, "world_size": 8, "framework": "megatron", "gpu": "", "nnodes": None})
    assert facts == [("framework", "megatron"), ("world size", "8"), ("zeta", "1")]


def test_the_settings_the_remedies_change_come_first_and_the_rest_is_folded():
    from app.diagnosis.model import Diagnosis, Remedy
    from app.web.views import run_settings

    diagnosis = Diagnosis(
        category="gpu_oom", stage="mid_run", step=1, total_steps=2, signature="cuda-oom", title="t", summary="s",
        confidence=0.9, remedies=[Remedy(parameter="per_device_train_batch_size", current=4, suggested=2, why="w")],
        run={"command": "torchrun t.py", "parameters": {"learning_rate": 1e-5, "per_device_train_batch_size": 4}},
    )
    blamed, others = run_settings(diagnosis)
    assert blamed == [("per_device_train_batch_size", "4")]
    assert others == [("learning_rate", "1e-05")]
    assert run_facts(diagnosis.run) == []  # the command and the settings are shown on their own
