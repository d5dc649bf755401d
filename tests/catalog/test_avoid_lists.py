"""The exercise flags agree with the avoid lists, which name what they rule out.

An avoid item ("no lifting, bending or twisting under load after spinal surgery", "no lying
face down in pregnancy") lists the demands and positions it rules out
(``app.domain.movement``), and each exercise lists the demands it makes and its position.
So the test can read both: every exercise that does what a contraindication's avoid list
names is flagged ``avoid`` for that contraindication, and every exercise that does what a
condition's avoid list names is rated ``avoid`` for that condition, or, when the item holds
only in some phases, is never offered in them (neither on a slot's ladder up to the phase's
ceiling nor as a stand-in from it).
"""

from __future__ import annotations

import pytest

from app.catalog.loader import default_catalog
from app.domain.catalog import AvoidSpec, Catalog, Exercise
from app.domain.movement import FLOOR_POSITIONS, Demand
from app.domain.types import Contraindication, Equipment

_CATALOG = default_catalog()

_RANK = {None: 0, "caution": 1, "avoid": 2}


def _does(exercise: Exercise, item: AvoidSpec) -> bool:
    return bool(set(exercise.demands) & set(item.demands)) or exercise.position in item.positions


ADVICE_ITEMS = [
    pytest.param(a.contraindication, item.id, id=item.id)
    for a in _CATALOG.profile_advice
    for item in a.avoid
    if item.demands or item.positions
]
CONDITION_ITEMS = [
    pytest.param(p.kind, item.id, id=f"{p.kind.value}/{item.id}")
    for p in _CATALOG.protocols
    for item in p.avoid
    if item.demands or item.positions
]


@pytest.mark.parametrize(("contraindication", "item_id"), ADVICE_ITEMS)
def test_an_exercise_doing_what_a_contraindication_rules_out_is_flagged(
    catalog: Catalog, contraindication: Contraindication, item_id: str
) -> None:
    item = next(i for i in catalog.advice_for[contraindication].avoid if i.id == item_id)
    wanted = _RANK[item.exercise_flag]
    unflagged = []
    for exercise in catalog.exercises:
        if not _does(exercise, item):
            continue
        note = exercise.contraindications.get(contraindication)
        if _RANK[None if note is None else note.level] < wanted:
            unflagged.append(exercise.id)
    assert not unflagged, f"{item.text!r} names them, but they are not flagged {item.exercise_flag}"


@pytest.mark.parametrize(("kind", "item_id"), CONDITION_ITEMS)
def test_an_exercise_doing_what_a_condition_rules_out_is_never_offered(
    catalog: Catalog, kind: object, item_id: str
) -> None:
    protocol = next(p for p in catalog.protocols if p.kind == kind)
    item = next(i for i in protocol.avoid if i.id == item_id)
    if not item.phases:
        wrong = [
            e.id
            for e in catalog.exercises
            if _does(e, item) and e.conditions[protocol.kind] != "avoid"
        ]
        assert not wrong, f"{item.text!r} names them, but {protocol.kind.value} allows them"
        return
    offered = []
    for phase in protocol.phases:
        if phase.id not in item.phases:
            continue
        for slot in phase.slots:
            rungs = catalog.ladders[slot.ladder][: slot.max_level]
            stand_ins = [catalog.by_id[a] for e in rungs for a in e.alternatives]
            offered += [
                f"{phase.id.value}/{slot.ladder}: {e.id}"
                for e in (*rungs, *stand_ins)
                if _does(e, item) and e.conditions[protocol.kind] != "avoid"
            ]
    assert not offered, f"{item.text!r} ({', '.join(p.value for p in item.phases)})"


def test_every_avoid_item_that_names_a_demand_catches_something(catalog: Catalog) -> None:
    """A demand nobody makes is a typo or a dead rule; positions and demands must bite."""
    items = [i for a in catalog.profile_advice for i in a.avoid] + [
        i for p in catalog.protocols for i in p.avoid
    ]
    idle = [
        i.id
        for i in items
        if (i.demands or i.positions)
        and not any(_does(e, i) for e in catalog.exercises)
        and i.demands != ("loaded_twist",)  # nothing in the catalog twists under load
    ]
    assert not idle


def test_every_demand_is_ruled_out_somewhere(catalog: Catalog) -> None:
    """Each demand an exercise declares is there because some avoid list names it."""
    named = {d for a in catalog.profile_advice for i in a.avoid for d in i.demands} | {
        d for p in catalog.protocols for i in p.avoid for d in i.demands
    }
    made = {d for e in catalog.exercises for d in e.demands}
    assert made <= named, sorted(made - named)


def test_a_floor_exercise_tells_a_person_at_risk_of_falling_how_to_get_down_and_up(
    catalog: Catalog,
) -> None:
    """Getting down to the floor and up again is a fall and long-lie hazard (Otago
    programme; Campbell AJ et al. 1997, BMJ 315:1065): the fall-risk advice has a note for
    every floor position (``slots`` gives it to each floor exercise without a note of its
    own), and an exercise's own fall-risk note on the floor speaks of the floor."""
    advice = catalog.advice_for[Contraindication.FALL_RISK]
    assert set(advice.note_for_position) >= FLOOR_POSITIONS
    own = [
        e.id
        for e in catalog.exercises
        if e.position in FLOOR_POSITIONS
        and (note := e.contraindications.get(Contraindication.FALL_RISK)) is not None
        and note.level == "caution"
        and not any(w in note.note.lower() for w in ("floor", "kneel", "get up", "getting up"))
    ]
    assert not own, f"their own fall-risk note says nothing of the floor: {own}"


# Kit that is a weight to lift, carry or hold: an exercise that uses it declares it.
_WEIGHTS = {
    Equipment.DUMBBELL,
    Equipment.KETTLEBELL,
    Equipment.ANKLE_WEIGHT,
    Equipment.SHOPPING_BAGS,
    Equipment.BOX,
}


def test_an_exercise_with_a_weight_declares_that_it_lifts_a_load(catalog: Catalog) -> None:
    """The other direction of the comparison above: a demand left undeclared would let an
    exercise slip past every avoid list that names it (ankle weights after surgery)."""
    undeclared = [
        e.id
        for e in catalog.exercises
        if set(e.equipment) & _WEIGHTS and Demand.LIFTS_LOAD not in e.demands
    ]
    assert not undeclared
