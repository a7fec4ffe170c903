"""Every rule flags the commands it lists and none of its near misses; broken rule files fail at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.check.checker import Checker
from app.check.rules import RuleSamples, load_rule_set
from app.errors import SignatureError
from tests.check.machines import machine

RULES = load_rule_set().rules
CASES = [
    pytest.param(rule.id, kind, RuleSamples.as_sample(item), id=f"{rule.id}-{kind}-{index}")
    for rule in RULES
    for kind in ("flag", "not_flag")
    for index, item in enumerate(getattr(rule.spec.samples, kind))
]


@pytest.mark.parametrize(("rule_id", "kind", "sample"), CASES)
def test_rule_sample(checker: Checker, rule_id: str, kind: str, sample) -> None:  # type: ignore[no-untyped-def]
    report = checker.check(sample.command, machine=machine(**sample.machine), read_config=sample.configs.get)
    fired = [finding for finding in report.findings if finding.rule == rule_id]
    if kind == "flag":
        assert fired, f"{rule_id} did not flag: {sample.command}"
        finding = fired[0]
        assert "?" not in finding.message.split(), f"a value the message shows is unknown: {finding.message}"
        assert finding.parameters
    else:
        assert not fired, f"{rule_id} flagged a near miss: {sample.command}"


def test_there_are_rules_for_each_family_the_field_knows() -> None:
    ids = {rule.id for rule in RULES}
    assert {"deepspeed-with-device-map", "fsdp-with-deepspeed", "model-parallel-not-dividing-gpus",
            "processes-above-visible-gpus", "bf16-without-hardware-support", "fp16-at-bf16-learning-rate",
            "fp16-and-bf16-both-on", "warmup-too-short", "dataloader-workers-for-host-memory",
            "shared-memory-for-workers", "gpu-memory-exceeds-card", "checkpoints-exceed-free-disk"} <= ids


def test_every_rule_says_what_crash_it_foresees() -> None:
    assert all(rule.spec.prevents for rule in RULES)


def _rule_file(tmp_path: Path, **changes: str) -> Path:
    fields = {
        "id": "team-rule",
        "title": "A team's rule",
        "severity": "warning",
        "parameters": "[learning_rate]",
        "when": "'learning_rate > 0.01'",
        "message": "Too high.",
        "samples": "{flag: ['python t.py --learning_rate 0.1'], not_flag: ['python t.py --learning_rate 1e-4']}",
    } | changes
    path = tmp_path / f"{fields['id']}.yaml"
    path.write_text("".join(f"{key}: {value}\n" for key, value in fields.items()))
    return tmp_path


def test_a_team_rule_folder_adds_rules(tmp_path: Path) -> None:
    rule_set = load_rule_set([_rule_file(tmp_path)])
    assert "team-rule" in {rule.id for rule in rule_set.rules}
    assert rule_set.version != load_rule_set().version


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"when": "'learning_rat > 0.01'"}, "unknown name 'learning_rat'"),
        ({"when": "'__import__(\"os\")'"}, "only the functions"),
        ({"when": "'learning_rate.real > 1'"}, "attribute access"),
        ({"when": "'learning_rate >'"}, "invalid expression"),
        ({"parameters": "[lr]"}, "unknown setting 'lr'"),
        ({"severity": "fatal"}, "severity"),
        ({"prevents": "[melted_gpu]"}, "unknown category"),
        ({"id": "other-name"}, None),
        ({"suggested": "{lr: 1}"}, "unknown setting 'lr'"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_broken_rule_file_is_refused_with_its_name(
    tmp_path: Path, changes: dict[str, str], complaint: str | None
) -> None:
    folder = _rule_file(tmp_path, **changes)
    if changes.get("id") == "other-name":  # the id must equal the file's stem
        (folder / "other-name.yaml").rename(folder / "team-rule.yaml")
        complaint = "must equal the file name"
    with pytest.raises(SignatureError) as raised:
        load_rule_set([folder], builtin_dir=None)
    assert "team-rule.yaml" in str(raised.value)
    assert complaint is not None and complaint in str(raised.value)


def test_a_rule_reading_an_unknown_fact_stays_quiet(checker: Checker) -> None:
    report = checker.check("torchrun --nproc_per_node 8 train.py --dataloader_num_workers 32 --output_dir out",
                           machine=machine(host_memory_gib=None))
    assert "dataloader-workers-for-host-memory" not in {finding.rule for finding in report.findings}
