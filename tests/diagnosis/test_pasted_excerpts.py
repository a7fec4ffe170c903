"""Where a run died, read from pasted excerpts: step formats of each trainer, tracebacks alone, launcher summaries."""

from __future__ import annotations

import pytest

from app.diagnosis.engine import Diagnoser

OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.15 GiB"
WATCHDOG = (
    "[E ProcessGroupNCCL.cpp:458] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=96120, "
    "OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1800412 milliseconds before timing out."
)
LAUNCHER_SUMMARY = [
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
    "Root Cause (first observed failure):",
    "[0]:",
    "  rank      : 0 (local_rank: 0)",
    "  exitcode  : -9 (pid: 1322)",
    "  traceback : Signal 9 (SIGKILL) received by PID 1322",
]


def _log(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _oom_after(*progress_lines: str) -> bytes:
    return _log(*progress_lines, "Traceback (most recent call last):", '  File "train.py", line 9, in main', OOM)


@pytest.mark.parametrize(
    ("progress_line", "step"),
    [
        ("{\"loss\": 0.41, \"epoch\": 0.5, \"global_step/max_steps\": \"853/1900\", \"percentage\": \"44.89%\"}", 853),
        ("steps: 1200 loss: 2.1043 iter time (s): 0.612 samples/sec: 104.5", 1200),
        ("Epoch: [1][1200/5005]\tTime  0.409\tLoss 2.7114e+00", 6205),  # epochs counted from 0
        ("2025-01-09 - mmdet - INFO - Epoch [3][600/3200]\tlr: 2.000e-02, loss: 0.7113", 7000),  # counted from 1
        ("Steps:  12% 310/2500 [08:25<1:08:12,  1.63s/it, loss=0.13, lr=5e-6]", 310),  # a bar pasted without its pipes
        ("Epoch 0:   6%|6         | 32040/500150 [6:28:43<94:39:17, v_num=9, global_step=3.2e+4]", 32040),
    ],
)
def test_step_is_read_from_each_trainers_progress_format(
    diagnoser: Diagnoser, progress_line: str, step: int
) -> None:
    diagnosis = diagnoser.diagnose(_oom_after(progress_line))
    assert (diagnosis.stage, diagnosis.step) == ("mid_run", step)


def test_slurm_step_id_is_not_a_training_step(diagnoser: Diagnoser) -> None:
    log = _log(
        " 30%|###       | 620/2048 [40:00<1:30:00,  3.80s/it]",
        "slurmstepd: error: *** STEP 771201.0 ON gpu-h12 CANCELLED AT 2024-04-20T09:09:37 DUE TO TIME LIMIT ***",
    )
    assert diagnoser.diagnose(log).step == 620


def test_double_quoted_nan_grad_norm_is_divergence_at_its_step(diagnoser: Diagnoser) -> None:
    log = _log(
        '{"loss": 1.21, "grad_norm": 0.9, "global_step/max_steps": "320/1230"}',
        '{"loss": 0.0, "grad_norm": NaN, "global_step/max_steps": "340/1230"}',
    )
    diagnosis = diagnoser.diagnose(log)
    assert (diagnosis.category, diagnosis.stage, diagnosis.step) == ("nan_loss", "mid_run", 340)


def test_error_printed_on_the_same_line_as_the_last_bar_is_after_it(diagnoser: Diagnoser) -> None:
    bar = "Epoch 0:   6%|6         | 32040/500150 [6:28:43<94:39:17,  1.37it/s, v_num=95nc]"
    diagnosis = diagnoser.diagnose(_log(bar + WATCHDOG))
    assert (diagnosis.category, diagnosis.stage, diagnosis.step) == ("nccl_timeout", "mid_run", 32040)


def test_traceback_through_evaluation_alone_is_not_load(diagnoser: Diagnoser) -> None:
    log = _log(
        '  File "eval.py", line 58, in <module>',
        "    metrics = trainer.evaluate()",
        '  File "/lib/transformers/trainer.py", line 4245, in evaluation_loop',
        "    losses, logits, labels = self.prediction_step(model, inputs, prediction_loss_only)",
        OOM,
    )
    assert diagnoser.diagnose(log).stage == "early"


def test_launcher_summary_alone_does_not_say_where_the_run_was(diagnoser: Diagnoser) -> None:
    diagnosis = diagnoser.diagnose(_log(*LAUNCHER_SUMMARY))
    assert (diagnosis.category, diagnosis.stage, diagnosis.step) == ("host_oom", "unknown", None)


@pytest.mark.parametrize(
    "setup_line",
    [
        "torchrun --nproc_per_node 8 finetune.py --model_name_or_path /models/13b --per_device_train_batch_size 2",
        "Loading checkpoint shards:  33%|###3      | 1/3 [00:21<00:42, 21.10s/it]",
    ],
)
def test_launcher_summary_after_setup_lines_is_load(diagnoser: Diagnoser, setup_line: str) -> None:
    assert diagnoser.diagnose(_log(setup_line, *LAUNCHER_SUMMARY)).stage == "load"
