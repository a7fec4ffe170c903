from __future__ import annotations

import json

from app.diagnosis.model import Diagnosis, Evidence, Remedy
from app.slack.blocks import diagnosis_message, help_message, notice_message, stats_message

URL = "https://trainwreck.example/diagnoses/42"


def oom_diagnosis(**changes: object) -> Diagnosis:
    fields: dict[str, object] = {
        "category": "gpu_oom",
        "stage": "mid_run",
        "step": 853,
        "total_steps": 1900,
        "signature": "cuda-oom",
        "title": "CUDA ran out of GPU memory",
        "summary": "The GPU had no room for the next allocation <2 GiB> & more.",
        "confidence": 0.93,
        "evidence": [Evidence(line=10234, text="torch.OutOfMemoryError: CUDA out of memory.")],
        "remedies": [
            Remedy("per_device_train_batch_size", 4, 2, "Halving the batch halves activation memory."),
            Remedy("gradient_accumulation_steps", 8, 16, "Keeps the effective batch the same."),
            Remedy("gradient_checkpointing", None, True, "Trades compute for memory."),
            Remedy("max_length", 8192, 4096, "Shorter sequences."),
        ],
        "run": {"framework": "transformers"},
    }
    fields.update(changes)
    return Diagnosis(**fields)  # type: ignore[arg-type]


def message_text(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_diagnosis_message_shows_title_category_stage_step_remedies_and_link() -> None:
    message = diagnosis_message(oom_diagnosis(), url=URL)
    text = message_text(message.blocks)

    assert message.blocks[0]["text"]["text"] == "CUDA ran out of GPU memory"  # type: ignore[index]
    assert "`gpu_oom`" in text
    assert "mid_run, step 853 of 1900" in text
    assert "`per_device_train_batch_size` `4` → `2`" in text
    assert "`gradient_checkpointing` → `true`" in text
    assert "max_length" not in text  # only the top three remedies
    assert URL in message.text
    button = next(block for block in message.blocks if block["type"] == "actions")
    assert button["elements"][0]["url"] == URL  # type: ignore[index]


def test_diagnosis_message_escapes_mrkdwn_in_log_text() -> None:
    text = message_text(diagnosis_message(oom_diagnosis(), url=URL).blocks)

    assert "&lt;2 GiB&gt; &amp; more" in text
    assert "<2 GiB>" not in text


def test_diagnosis_message_of_unknown_without_step_or_remedies() -> None:
    diagnosis = oom_diagnosis(
        category="unknown",
        stage="unknown",
        step=None,
        total_steps=None,
        signature=None,
        title="No known failure found",
        summary="",
        evidence=[],
        remedies=[],
        run={},
    )
    message = diagnosis_message(diagnosis, url=URL)
    text = message_text(message.blocks)

    assert "`unknown`" in text
    assert "What to change" not in text
    assert message.text == f"No known failure found (unknown, unknown): {URL}"


def test_diagnosis_message_cuts_overlong_text_to_slack_limits() -> None:
    diagnosis = oom_diagnosis(title="x" * 400, summary="&" * 5000)
    message = diagnosis_message(diagnosis, url=URL)

    assert len(message.blocks[0]["text"]["text"]) == 150  # type: ignore[index]
    summary = message.blocks[2]["text"]["text"]  # type: ignore[index]
    assert len(summary) <= 3000
    assert summary.endswith("&amp;…")


def test_advice_without_a_value_reads_as_the_advice() -> None:
    diagnosis = oom_diagnosis(remedies=[Remedy("NCCL_DEBUG", None, None, "Set NCCL_DEBUG=INFO and rerun.")])
    text = message_text(diagnosis_message(diagnosis, url=URL).blocks)

    assert "`NCCL_DEBUG`: Set NCCL_DEBUG=INFO and rerun." in text


def test_stats_message_ranks_categories() -> None:
    message = stats_message("vision", days=7, counts={"nan_loss": 1, "gpu_oom": 3})
    text = message.blocks[0]["text"]["text"]  # type: ignore[index]

    assert text.startswith("*vision*: 4 diagnoses in the last 7 days")
    assert text.index("gpu_oom") < text.index("nan_loss")


def test_help_and_notices_are_one_section() -> None:
    assert "/trainwreck stats" in help_message("/trainwreck").text
    assert [block["type"] for block in notice_message("hello").blocks] == ["section"]
