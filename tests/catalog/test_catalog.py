"""The catalog as data: coverage, ladders, provenance, and errors that name file and field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from app.catalog.loader import DATA_DIR, CatalogError, load_catalog
from app.domain.catalog import Catalog
from app.domain.types import Aim, Category, ConditionKind, Contraindication
from app.main import create_app
from app.settings import Settings

# The progression ladders the clinical rules name (section 7), with their minimum length.
CLINICAL_LADDERS = {
    "glute-bridge": 6,
    "front-plank": 5,
    "side-plank": 4,
    "bird-dog": 5,
    "curl-up": 3,
    "dead-bug": 5,
    "clamshell": 5,
    "squat": 4,
    "hip-hinge": 4,
    "prone-press-up": 5,
    "sciatic-nerve-glide": 3,
    "chin-tuck": 4,
    "wall-angel": 4,
    "band-row": 4,
}

# Every kind of exercise the source article names, by the catalog id that covers it.
ARTICLE_KINDS = {
    "aerobic warm-up: walking, marching, cycling": [
        "easy-walk",
        "marching-on-the-spot",
        "stationary-cycling",
    ],
    "dynamic stretches": [
        "leg-swing-front-back",
        "lunge-with-twist",
        "shoulder-circles",
        "cat-cow",
    ],
    "static stretches": [
        "prone-press-up",
        "seated-butterfly",
        "seated-spinal-twist",
        "standing-hamstring-stretch",
        "supine-figure-four",
        "half-kneeling-hip-flexor",
        "doorway-chest-stretch",
        "childs-pose",
        "single-knee-to-chest",
    ],
    "isometrics": ["abdominal-brace-lying", "front-plank", "side-plank", "clamshell-band"],
    "dynamic strength": [
        "glute-bridge",
        "single-leg-bridge-band",
        "loaded-hip-thrust",
        "bodyweight-squat",
        "bodyweight-hip-hinge",
        "standing-band-row",
        "bird-dog",
        "dead-bug",
    ],
    "functional retraining": ["floor-lift-hip-hinge", "two-bag-carry"],
    "core stabilisation": ["curl-up-head-lift", "pelvic-floor-lying"],
    "nerve glides": ["sciatic-slider-supine", "sciatic-tensioner"],
    "balance": [
        "single-leg-stance",
        "tandem-stance",
        "tandem-walk",
        "single-leg-stance-eyes-closed",
    ],
    "posture work": [
        "chin-tuck",
        "wall-angel",
        "posture-check",
        "movement-break",
        "lift-from-step-height",
    ],
    "relaxation and breathing": ["diaphragmatic-breathing", "gentle-yoga-flow"],
}


def test_the_catalog_is_large_enough(catalog: Catalog) -> None:
    assert len(catalog.exercises) >= 45
    assert len(catalog.ladders) >= 14


@pytest.mark.parametrize(("ladder", "levels"), sorted(CLINICAL_LADDERS.items()))
def test_each_clinical_ladder_is_complete(catalog: Catalog, ladder: str, levels: int) -> None:
    steps = catalog.ladders[ladder]
    assert len(steps) >= levels
    assert [e.level for e in steps] == list(range(1, len(steps) + 1))


@pytest.mark.parametrize("kind", sorted(ARTICLE_KINDS))
def test_every_kind_the_article_names_is_in_the_catalog(catalog: Catalog, kind: str) -> None:
    missing = [i for i in ARTICLE_KINDS[kind] if i not in catalog.by_id]
    assert not missing


@pytest.mark.parametrize("aim", [Aim.STRENGTH, Aim.FLEXIBILITY, Aim.ENDURANCE, Aim.BALANCE])
def test_each_aim_has_its_own_progression(catalog: Catalog, aim: Aim) -> None:
    ladders = {
        name
        for name, steps in catalog.ladders.items()
        if len(steps) >= 2 and all(aim in e.aims for e in steps)
    }
    assert ladders, f"no ladder of two or more levels serves {aim.value} throughout"


def test_every_category_is_used(catalog: Catalog) -> None:
    assert {e.category for e in catalog.exercises} == set(Category)


def test_every_exercise_is_rated_for_each_condition_and_explains_cautions(
    catalog: Catalog,
) -> None:
    for exercise in catalog.exercises:
        assert set(exercise.conditions) == set(ConditionKind)
        for kind, rating in exercise.conditions.items():
            if rating != "suitable":
                assert kind in exercise.condition_notes, f"{exercise.id}: why {rating}?"


def test_each_profile_contraindication_rules_something_out(catalog: Catalog) -> None:
    for item in (
        Contraindication.PREGNANCY,
        Contraindication.OSTEOPOROSIS,
        Contraindication.RECENT_SPINAL_SURGERY,
    ):
        assert any(
            e.contraindications.get(item) and e.contraindications[item].level == "avoid"
            for e in catalog.exercises
        ), item
    assert any(Contraindication.HYPERTENSION in e.contraindications for e in catalog.exercises)


def test_sciatica_avoids_neural_tension_hamstring_stretching(catalog: Catalog) -> None:
    assert catalog.by_id["standing-hamstring-stretch"].conditions[ConditionKind.SCIATICA] == "avoid"


def test_every_threshold_has_a_unit_and_a_source(catalog: Catalog) -> None:
    for name, threshold in catalog.thresholds:
        assert threshold.unit.strip(), name
        assert threshold.source.strip(), name


def _copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def _edited(tmp_path: Path, name: str, edit: Callable[[Any], object]) -> Path:
    """A copy of the catalog data with one YAML file changed by ``edit``."""
    data = _copy_data(tmp_path)
    path = data / name
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc))
    return data


def test_an_invalid_exercise_names_the_file_and_field(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    path = data / "exercises" / "strength.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["exercises"][0]["dose"]["sets"]["start"] = "two"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogError) as info:
        load_catalog(data)
    message = str(info.value)
    assert "strength.yaml" in message
    assert f"exercises[{doc['exercises'][0]['id']}].dose.sets.start" in message


def test_a_threshold_without_a_source_is_refused(tmp_path: Path) -> None:
    data = _edited(
        tmp_path, "thresholds.yaml", lambda doc: doc["thresholds"]["pain_safe_max"].pop("source")
    )
    with pytest.raises(CatalogError, match=r"thresholds.yaml: thresholds.pain_safe_max.source"):
        load_catalog(data)


def test_a_slot_on_an_unknown_ladder_is_refused(tmp_path: Path) -> None:
    data = _edited(
        tmp_path,
        "protocols.yaml",
        lambda doc: doc["protocols"][0]["phases"][0]["slots"][0].update(ladder="moon-walk"),
    )
    with pytest.raises(CatalogError, match="unknown ladder moon-walk"):
        load_catalog(data)


def test_the_service_refuses_to_start_on_an_invalid_catalog(tmp_path: Path) -> None:
    data = _edited(tmp_path, "triage.yaml", lambda doc: doc["red_flags"].pop(0))
    app = create_app(Settings(catalog_dir=data))
    with (
        pytest.raises(CatalogError, match="red_flags must describe every RedFlag"),
        TestClient(app),
    ):
        pass


def test_the_ruleset_version_changes_with_any_threshold(tmp_path: Path, catalog: Catalog) -> None:
    data = _copy_data(tmp_path)
    assert load_catalog(data).ruleset_version == catalog.ruleset_version
    path = data / "thresholds.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["thresholds"]["long_gap_days"]["value"] = 21
    path.write_text(yaml.safe_dump(doc))
    changed = load_catalog(data).ruleset_version
    assert changed != catalog.ruleset_version
    assert changed.startswith(catalog.rules_version + "+")


def test_incoherent_pain_gates_are_refused(tmp_path: Path) -> None:
    data = _edited(
        tmp_path,
        "thresholds.yaml",  # safe band above the acceptable band
        lambda doc: doc["thresholds"]["pain_safe_max"].update(value=6),
    )
    with pytest.raises(CatalogError, match="pain_safe_max <= pain_acceptable_max"):
        load_catalog(data)


def test_a_warm_up_must_last_the_warm_up_minutes(tmp_path: Path) -> None:
    data = _edited(
        tmp_path,
        "thresholds.yaml",
        lambda doc: doc["thresholds"]["warm_up_minutes"].update(value=8),
    )
    with pytest.raises(CatalogError, match="a warm-up lasts warm_up_minutes"):
        load_catalog(data)


def test_no_slot_may_start_on_a_level_reached_only_symptom_free(tmp_path: Path) -> None:
    def start_on_tensioner(doc: Any) -> None:
        sciatica = next(p for p in doc["protocols"] if p["kind"] == "sciatica")
        function = next(ph for ph in sciatica["phases"] if ph["id"] == "function")
        glide = next(s for s in function["slots"] if s["ladder"] == "sciatic-nerve-glide")
        glide["start"]["advanced"] = 3

    data = _edited(tmp_path, "protocols.yaml", start_on_tensioner)
    with pytest.raises(CatalogError, match="may not start on sciatic-tensioner"):
        load_catalog(data)


def _set(**values: float) -> Callable[[Any], object]:
    def edit(doc: Any) -> None:
        for name, value in values.items():
            doc["thresholds"][name]["value"] = value

    return edit


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ({"history_window_days": 28}, "history_window_days > stopped_direction_days"),
        ({"long_gap_days": 42}, "history_window_days > long_gap_days"),
        ({"volume_growth_window_days": 42}, "history_window_days > volume_growth_window_days"),
        ({"repeated_flares_window_days": 42}, "history_window_days > repeated_flares_window_days"),
        (
            {
                "history_window_days": 13,
                "stopped_direction_days": 7,
                "long_gap_days": 7,
                "volume_growth_window_days": 7,
                "pain_trend_days": 7,
                "repeated_flares_window_days": 7,
            },
            "history_window_days >= 14",
        ),
        (
            {"history_window_sessions": 3},
            r"history_window_sessions >= 2 \* green_sessions_to_progress",
        ),
        (
            {"green_sessions_to_progress": 31},
            r"history_window_sessions >= 2 \* green_sessions_to_progress",
        ),
        ({"history_window_sessions": 60.5}, "history_window_sessions must be a whole number"),
        ({"history_window_days": 0}, "history_window_days must be a whole number"),
    ],
)
def test_a_decision_window_shorter_than_a_rule_looks_back_is_refused(
    tmp_path: Path, values: dict[str, float], rule: str
) -> None:
    """The window must reach past every rule's look-back: a decision reads nothing older."""
    data = _edited(tmp_path, "thresholds.yaml", _set(**values))
    with pytest.raises(CatalogError, match=rule):
        load_catalog(data)


def test_a_decision_window_just_long_enough_is_accepted(tmp_path: Path) -> None:
    # One day past the longest look-back (28 days), and twice the green streak.
    data = _edited(
        tmp_path, "thresholds.yaml", _set(history_window_days=29, history_window_sessions=4)
    )
    thresholds = load_catalog(data).thresholds
    assert thresholds.history_window_days.value == 29
    assert thresholds.history_window_sessions.value == 4
