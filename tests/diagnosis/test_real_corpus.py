"""The scorer on labelled logs of real runs kept outside the project (TRAINWRECK_TEST_CORPUS, set by CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.diagnosis.engine import Diagnoser
from app.evaluation import evaluate

MIN_CATEGORY_ACCURACY = 0.90
MIN_STAGE_ACCURACY = 0.80


def test_real_corpus_accuracy_meets_the_bar(diagnoser: Diagnoser) -> None:
    corpus = os.environ.get("TRAINWRECK_TEST_CORPUS")
    if not corpus:
        if os.environ.get("TRAINWRECK_REQUIRE_ALL_TESTS") == "1":
            pytest.fail("TRAINWRECK_REQUIRE_ALL_TESTS=1 but TRAINWRECK_TEST_CORPUS is not set")
        pytest.skip("TRAINWRECK_TEST_CORPUS is not set (a folder with logs and labels.jsonl)")
    report = evaluate(Path(corpus), diagnoser)
    figures = report.figures()
    category, stage = (figures[name][0] / figures[name][1] for name in ("category", "stage"))
    assert category >= MIN_CATEGORY_ACCURACY, report.render()
    assert stage >= MIN_STAGE_ACCURACY, report.render()
