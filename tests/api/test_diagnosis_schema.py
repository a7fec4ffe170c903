"""The API's diagnosis body and the engine's Diagnosis are one contract: a field added to one is in the other."""

from __future__ import annotations

from app.api.schemas import DiagnosisBody
from app.diagnosis.model import Diagnosis


def test_the_api_body_has_exactly_the_fields_of_the_engine_diagnosis() -> None:
    assert set(DiagnosisBody.model_fields) == set(Diagnosis.__struct_fields__)


def test_a_diagnosis_validates_as_the_api_body() -> None:
    diagnosis = Diagnosis(category="gpu_oom", stage="unknown", step=None, total_steps=None, signature="cuda-oom",
                          title="t", summary="s", confidence=0.9, stage_reason="the excerpt shows no progress or setup")
    body = DiagnosisBody.model_validate(diagnosis.to_dict())
    assert body.stage_reason == "the excerpt shows no progress or setup"
