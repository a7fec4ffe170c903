from __future__ import annotations

from app.diagnosis.model import Diagnosis
from app.slack.pasted import looks_like_crash_log, pasted_text

TRACEBACK = "Traceback (most recent call last):\n  File \"train.py\", line 3, in &lt;module&gt;\nKeyError: 'input_ids'"


def diagnosis(signature: str | None) -> Diagnosis:
    return Diagnosis(
        category="unknown" if signature is None else "gpu_oom",
        stage="unknown",
        step=None,
        total_steps=None,
        signature=signature,
        title="",
        summary="",
        confidence=0.0,
    )


def test_code_blocks_are_the_pasted_log() -> None:
    text = pasted_text(f"died again:\n```{TRACEBACK}```\nand\n```RuntimeError: boom```")

    assert text == TRACEBACK.replace("&lt;", "<").replace("&gt;", ">") + "\nRuntimeError: boom\n"


def test_a_traceback_without_a_code_block_is_the_pasted_log() -> None:
    assert pasted_text(TRACEBACK) == TRACEBACK.replace("&lt;", "<").replace("&gt;", ">") + "\n"


def test_ordinary_chat_has_no_pasted_log() -> None:
    assert pasted_text("my run hit CUDA out of memory again, any ideas?") is None
    assert pasted_text("```   ```") is None


def test_a_traceback_or_a_signature_line_looks_like_a_crash_log() -> None:
    assert looks_like_crash_log(TRACEBACK, diagnosis(None))
    assert looks_like_crash_log("CUDA out of memory. Tried to allocate 2.00 GiB", diagnosis("cuda-oom"))
    assert not looks_like_crash_log("SELECT * FROM runs;", diagnosis(None))
