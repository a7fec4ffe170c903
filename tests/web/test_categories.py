from pathlib import Path

import pytest

from app.diagnosis.taxonomy import _taxonomy, categories, stages
from app.web.categories import (
    CATEGORY_COLORS,
    CATEGORY_LABELS,
    STAGE_COLORS,
    badge_text_color,
    category_label,
    category_stylesheet,
    contrast_ratio,
)


def _taxonomy_wording() -> dict:
    return _taxonomy()["stage_wording"]


STATIC = Path(__file__).parents[2] / "app" / "web" / "static"


def test_every_taxonomy_category_has_a_label_and_a_colour():
    assert set(CATEGORY_LABELS) == set(categories())
    assert set(CATEGORY_COLORS) == set(categories())


def test_every_stage_has_wording_and_a_colour():
    assert set(_taxonomy_wording()) == set(stages())
    assert set(STAGE_COLORS) == set(stages())


@pytest.mark.parametrize("color", sorted({*CATEGORY_COLORS.values(), *STAGE_COLORS.values()}))
def test_badge_text_is_readable_on_every_colour(color):
    assert contrast_ratio(color, badge_text_color(color)) >= 4.5


def test_contrast_ratio_of_black_on_white_is_21():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)


def test_an_unknown_category_is_shown_by_its_id():
    assert category_label("made_up") == "made_up"


def test_the_static_badge_stylesheet_is_generated_from_the_palette():
    written = (STATIC / "categories.css").read_text()
    assert written == category_stylesheet(), "regenerate it: python -m app.web.categories"
