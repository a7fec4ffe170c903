"""Loading signature files: one clear error naming the file and the field; hostile patterns cannot hang a scan."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.diagnosis.engine import Diagnoser
from app.diagnosis.signatures import load_signature_set
from app.errors import SignatureError

VALID = """\
id: {id}
category: data_error
title: A team's own failure
patterns:
  - '{pattern}'
explanation: Our loader says so.
remedies:
  - parameter: [dataset]
    action: advise
    why: Check the dataset.
samples:
  match: ['OurLoaderError: shard 3 is empty']
  no_match: ['OurLoader started']
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_team_signature_folder_is_loaded_after_the_builtin_one(tmp_path: Path) -> None:
    _write(tmp_path, "our-loader", VALID.format(id="our-loader", pattern=r"OurLoaderError: shard \d+ is empty"))
    signature_set = load_signature_set([tmp_path])
    assert signature_set.signatures[-1].id == "our-loader"
    diagnosis = Diagnoser(signature_set).diagnose(b"x\nOurLoaderError: shard 3 is empty\n")
    assert diagnosis.signature == "our-loader"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (VALID.format(id="bad", pattern="x") + "colour: red\n", "colour"),
        (VALID.format(id="bad", pattern="x").replace("data_error", "gremlins"), "category"),
        (VALID.format(id="bad", pattern="(unclosed"), "patterns.0"),
        (VALID.format(id="other-name", pattern="x"), "id"),
        (VALID.format(id="bad", pattern="x").replace("action: advise", "action: pray"), "remedies.0.action"),
        (VALID.format(id="bad", pattern="x").replace("  no_match: ['OurLoader started']\n", ""), "samples.no_match"),
        (VALID.format(id="bad", pattern="x").replace("action: advise", "action: advise\n    when_error: '('"),
         "remedies.0.when_error"),
        (VALID.format(id="bad", pattern="x").replace("action: advise", "action: set"), "remedies.0.value"),
        (VALID.format(id="bad", pattern="x").replace("parameter: [dataset]", "parameter: 7"), "remedies.0.parameter"),
        (VALID.format(id="bad", pattern="x").replace("title: A team's own failure", "title: 12"), "title"),
    ],
)
def test_invalid_signature_names_the_file_and_the_field(tmp_path: Path, text: str, field: str) -> None:
    _write(tmp_path, "bad", text)
    with pytest.raises(SignatureError) as raised:
        load_signature_set([tmp_path])
    assert "bad.yaml" in raised.value.message
    assert f"field '{field}'" in raised.value.message


def test_a_list_of_one_setting_may_be_written_as_the_setting(tmp_path: Path) -> None:
    _write(tmp_path, "one", VALID.format(id="one", pattern="OurLoaderError").replace("[dataset]", "dataset"))
    (signature,) = load_signature_set([tmp_path], builtin_dir=None).signatures
    assert signature.spec.remedies[0].parameter == ["dataset"]


def test_duplicate_id_across_folders_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "cuda-oom", VALID.format(id="cuda-oom", pattern="x"))
    with pytest.raises(SignatureError, match="already defined"):
        load_signature_set([tmp_path])


def test_yaml_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "list", "- just\n- a list\n")
    with pytest.raises(SignatureError, match=r"list\.yaml"):
        load_signature_set([tmp_path])


def test_catastrophic_pattern_in_a_team_signature_cannot_hang_a_diagnosis(tmp_path: Path) -> None:
    _write(tmp_path, "evil", VALID.format(id="evil", pattern=r"^(a+)+\1$"))
    diagnoser = Diagnoser(load_signature_set([tmp_path]))
    log = b"a" * 50_000 + b"!\n" + b"RuntimeError: CUDA error: device-side assert triggered\n"
    started = time.perf_counter()
    diagnosis = diagnoser.diagnose(log)
    assert time.perf_counter() - started < 10
    assert diagnosis.category == "cuda_error"
