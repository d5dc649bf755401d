"""Every slot of every programme has something to do, whatever kit the person has.

A slot is filled from its ladder; when the person cannot do the exercise there, the engine
tries the easier levels of the same ladder and then that exercise's own ``alternatives``
(``app.domain.engine._fit_to_person``), skipping any alternative whose ladder another slot
of the protocol uses. So it is not enough that some exercise of the ladder's family fits:
at every level the slot can reach, the exercise there, an easier one, or one of its own
stand-ins must fit. Otherwise the person who loses a band halfway up the ladder is told
"no safe option" for a whole phase.

Kits: the household items only (nothing bought), the household items plus a mat, and every
piece of ``Equipment``. A candidate fits when its equipment is all in the kit and the
condition does not rate it "avoid". For a slot limited to a directional preference it must
also move in that direction or keep the spine neutral (moving against the preference does
worse: Long A et al. 2004, Spine 29:2593).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.catalog.loader import default_catalog
from app.domain.catalog import Catalog, ConditionProtocol, Exercise, PhaseSpec, Slot
from app.domain.types import AbilityLevel, ConditionKind, Contraindication, Equipment, Phase

_CATALOG = default_catalog()

KITS: dict[str, frozenset[Equipment]] = {
    "household": _CATALOG.household,
    # The mat is a household item today, so this is the same kit as "household". It stays
    # a case of its own: "a mat only" is a promise the service makes whatever that list says.
    "household+mat": _CATALOG.household | {Equipment.MAT},
    "full-kit": frozenset(Equipment),
}


def _slots(catalog: Catalog) -> Iterator[tuple[ConditionProtocol, PhaseSpec, Slot, str]]:
    for protocol in catalog.protocols:
        for phase in protocol.phases:
            for slot in phase.slots:
                # A directional slot is checked once for each preference it applies to.
                for preference in slot.when_directional or ("any",):
                    yield protocol, phase, slot, str(preference)


def _cases(variants: dict[str, object]) -> list[Any]:
    """One case per slot (per preference, for a directional slot) and per variant."""
    return [
        pytest.param(
            protocol.kind,
            phase.id,
            slot.ladder,
            preference,
            variant,
            id=f"{protocol.kind.value}/{phase.id.value}/{slot.ladder}/{preference}/{name}",
        )
        for protocol, phase, slot, preference in _slots(_CATALOG)
        for name, variant in variants.items()
    ]


CASES = _cases({kit: kit for kit in KITS})


def _fits(
    exercise: Exercise,
    kind: ConditionKind,
    kit: frozenset[Equipment],
    preference: str,
    contraindication: Contraindication | None = None,
) -> bool:
    if not kit.issuperset(exercise.equipment):
        return False
    if exercise.conditions[kind] == "avoid":
        return False
    note = exercise.contraindications.get(contraindication) if contraindication else None
    if note is not None and note.level == "avoid":
        return False
    return preference == "any" or exercise.spinal_direction in (preference, "neutral")


def _slot(catalog: Catalog, kind: ConditionKind, phase: Phase, ladder: str) -> Slot:
    spec = next(p for p in catalog.protocol_for[kind].phases if p.id == phase)
    return next(s for s in spec.slots if s.ladder == ladder)


@pytest.mark.parametrize(("kind", "phase", "ladder", "preference", "kit"), CASES)
def test_every_slot_has_an_option_at_every_level_for_every_kit(
    catalog: Catalog, kind: ConditionKind, phase: Phase, ladder: str, preference: str, kit: str
) -> None:
    slot = _slot(catalog, kind, phase, ladder)
    have = KITS[kit]
    protocol_ladders = catalog.protocol_ladders[kind]
    stuck = []
    for level in range(1, slot.max_level + 1):
        exercise = catalog.at_level(ladder, level)
        assert exercise is not None
        easier = [catalog.at_level(ladder, lower) for lower in range(level, 0, -1)]
        stand_ins = [
            catalog.by_id[alt]
            for alt in exercise.alternatives
            if catalog.by_id[alt].ladder not in protocol_ladders
        ]
        if not any(_fits(e, kind, have, preference) for e in [*easier, *stand_ins] if e):
            stuck.append(f"level {level} ({exercise.id})")
    assert not stuck, f"no option with the {kit} kit at {', '.join(stuck)}"


@pytest.mark.parametrize(("kind", "phase", "ladder", "preference", "kit"), CASES)
def test_every_slot_has_a_candidate_in_its_family(
    catalog: Catalog, kind: ConditionKind, phase: Phase, ladder: str, preference: str, kit: str
) -> None:
    """The looser form: some exercise of the ladder up to the phase's ceiling, or some
    stand-in named anywhere on the ladder (``Catalog.slot_family``), fits the kit."""
    slot = _slot(catalog, kind, phase, ladder)
    family = catalog.slot_family(ladder, catalog.protocol_ladders[kind])
    candidates = [
        catalog.by_id[i]
        for i in family
        if catalog.by_id[i].ladder != ladder or catalog.by_id[i].level <= slot.max_level
    ]
    assert any(_fits(e, kind, KITS[kit], preference) for e in candidates), (
        f"no candidate with the {kit} kit"
    )


def test_the_kits_are_what_they_say() -> None:
    assert KITS["household"] <= KITS["household+mat"] < KITS["full-kit"]
    assert KITS["household+mat"] - KITS["household"] <= {Equipment.MAT}
    assert Equipment.MAT in KITS["household+mat"]


@pytest.mark.parametrize("ability", list(AbilityLevel))
def test_with_the_full_kit_every_slot_starts_on_its_own_ladder(
    catalog: Catalog, ability: AbilityLevel
) -> None:
    """Stand-ins are for people without the kit: whoever has everything starts each slot on
    the slot's own exercise, so a stand-in added for the kitless never becomes the default."""
    wrong = []
    for protocol, phase, slot, preference in _slots(catalog):
        level = min(slot.start[ability], slot.max_level)
        start = catalog.at_level(slot.ladder, level)
        assert start is not None
        if not _fits(start, protocol.kind, KITS["full-kit"], preference):
            wrong.append(f"{protocol.kind.value}/{phase.id.value}/{slot.ladder}: {start.id}")
    assert not wrong


@pytest.mark.parametrize(
    "ladder",
    [
        "bodyweight-row",
        "bag-row",
        "prone-raise",
        "pelvic-tilt",
        "rest-position",
        "seated-arm-warm-up",
        "standing-hip-flexor",
    ],
)
def test_the_kit_free_stand_ins_fill_no_slot_of_their_own(catalog: Catalog, ladder: str) -> None:
    """The band-free rows, the lying pelvic tilt, the supported rest position, the seated arm
    warm-up and the standing hip flexor stretch exist for people the slot's own ladder does
    not fit: no slot starts on them, so nobody who has the kit is given them instead of the
    slot's own exercise."""
    assert ladder in catalog.ladders
    users = [p.kind.value for p in catalog.protocols if ladder in catalog.protocol_ladders[p.kind]]
    assert not users
    named_by = {
        e.ladder
        for e in catalog.exercises
        for a in e.alternatives
        if a in catalog.ladder_ids[ladder]
    }
    assert named_by, f"{ladder} is nobody's stand-in"


PERSON_CASES = _cases({c.value: c for c in Contraindication})


def _options_at(
    catalog: Catalog, phase: PhaseSpec, slot: Slot, preference: str, level: int
) -> list[Exercise]:
    """What the engine may fill the slot with when its exercise is at ``level``: for a
    directional slot, any level of its ladder up to the ceiling in the person's direction
    (``follow_directional_preference``); otherwise that level or an easier one, or a
    stand-in the level names from a ladder none of the phase's slots uses
    (``fit_to_person``)."""
    rungs = list(catalog.ladders[slot.ladder][: slot.max_level])
    if preference != "any":
        return [e for e in rungs if e.spinal_direction == preference]
    slot_ladders = {s.ladder for s in phase.slots}
    exercise = rungs[level - 1]
    stand_ins = [
        catalog.by_id[a]
        for a in exercise.alternatives
        if catalog.by_id[a].ladder not in slot_ladders
    ]
    return [*rungs[:level], *stand_ins]


def _candidates(catalog: Catalog, phase: PhaseSpec, slot: Slot, preference: str) -> list[Exercise]:
    """Everything the slot may be filled with, at any level up to its ceiling."""
    return [
        e
        for level in range(1, slot.max_level + 1)
        for e in _options_at(catalog, phase, slot, preference, level)
    ]


@pytest.mark.parametrize(
    ("kind", "phase", "ladder", "preference", "contraindication"), PERSON_CASES
)
def test_every_slot_has_an_option_for_every_person_and_kit(
    catalog: Catalog,
    kind: ConditionKind,
    phase: Phase,
    ladder: str,
    preference: str,
    contraindication: Contraindication,
) -> None:
    """Condition x phase x slot x kit x each single contraindication, at every level the
    slot can reach: at least one option the person may do, or the protocol says the slot is
    left out for them and why (``Slot.optional_for``)."""
    slot = _slot(catalog, kind, phase, ladder)
    if contraindication in slot.optional_for:
        return
    spec = next(p for p in catalog.protocol_for[kind].phases if p.id == phase)
    stuck = [
        f"level {level} with the {kit} kit"
        for level in range(1, slot.max_level + 1)
        for kit, have in KITS.items()
        if not any(
            _fits(e, kind, have, preference, contraindication)
            for e in _options_at(catalog, spec, slot, preference, level)
        )
    ]
    assert not stuck, f"nothing with {contraindication.value} at {', '.join(stuck)}"


OPTIONAL = [
    pytest.param(
        protocol.kind,
        phase.id,
        slot.ladder,
        c,
        id=f"{protocol.kind.value}/{phase.id.value}/{slot.ladder}/{c.value}",
    )
    for protocol in _CATALOG.protocols
    for phase in protocol.phases
    for slot in phase.slots
    for c in slot.optional_for
]


@pytest.mark.parametrize(("kind", "phase", "ladder", "contraindication"), OPTIONAL)
def test_a_slot_is_left_out_only_where_nothing_could_fill_it(
    catalog: Catalog,
    kind: ConditionKind,
    phase: Phase,
    ladder: str,
    contraindication: Contraindication,
) -> None:
    """``optional_for`` is not a way round the search for an option: it holds only where,
    even with the full kit, no level and no stand-in fits the person."""
    slot = _slot(catalog, kind, phase, ladder)
    spec = next(p for p in catalog.protocol_for[kind].phases if p.id == phase)
    for preference in slot.when_directional or ("any",):
        candidates = _candidates(catalog, spec, slot, str(preference))
        fitting = [
            e.id
            for e in candidates
            if _fits(e, kind, KITS["full-kit"], str(preference), contraindication)
        ]
        assert not fitting, f"{fitting} could fill it"
