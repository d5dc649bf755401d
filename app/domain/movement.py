"""What an exercise asks of the body, in words the avoid lists and the ladders share.

- ``Position``: where the body is. Floor positions need getting down and up again, a fall
  and long-lie hazard for people at risk of falling.
- ``Demand``: the things an avoid list can name ("no loaded lifting after surgery",
  "no lying face down in pregnancy"). An exercise lists the demands it makes; an avoid item
  lists the demands it rules out; the catalog tests compare the two with the exercise's
  ``avoid`` flags, so the data cannot contradict itself.
- ``Axis``: what makes one level of a ladder harder than the one below. Each exercise on a
  ladder of more than one level rates itself on the same axes, and a ladder rises on at
  least one of them at every step and falls on none, unless the level names the trade and
  why it is still harder (``Exercise.trade_offs``).
- ``PURPOSE_OF_PATTERN``: the job each movement pattern does. A stand-in must share a job
  with the exercise it replaces: an angel does not strengthen the upper back as a row does.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FLOOR_POSITIONS", "PURPOSE_OF_PATTERN", "Axis", "Demand", "Position"]


class Position(StrEnum):
    SUPINE = "supine"
    PRONE = "prone"
    SIDE_LYING = "side_lying"
    FOUR_POINT = "four_point"
    KNEELING = "kneeling"
    FLOOR_SITTING = "floor_sitting"  # sitting on the floor (a butterfly or a twist)
    SITTING = "sitting"  # on a chair
    STANDING = "standing"
    WALKING = "walking"


FLOOR_POSITIONS = frozenset(
    {
        Position.SUPINE,
        Position.PRONE,
        Position.SIDE_LYING,
        Position.FOUR_POINT,
        Position.KNEELING,
        Position.FLOOR_SITTING,
    }
)


class Demand(StrEnum):
    """Something an exercise does that an avoid list may rule out."""

    # Lifting, carrying or holding an external weight (bags, dumbbell, kettlebell).
    LIFTS_LOAD = "lifts_load"
    # Head and shoulders (or more) curled up off the floor: loaded flexion of the upper back.
    TRUNK_CURL = "trunk_curl"
    # Stretching the back of a straight leg: bending forward over it (toe touches, slump or
    # standing hamstring stretches) or lifting it (a lying strap stretch); both pull on the
    # sciatic nerve.
    STRAIGHT_LEG_FORWARD_BEND = "straight_leg_forward_bend"
    # Takes the spine to the end of its range by design: rounding, arching or twisting.
    END_RANGE_FLEXION = "end_range_flexion"
    END_RANGE_EXTENSION = "end_range_extension"
    END_RANGE_TWIST = "end_range_twist"
    # Twists while lifting or holding a weight.
    LOADED_TWIST = "loaded_twist"
    # Swinging or bouncing: momentum, not control, sets the end of the movement.
    SWINGING = "swinging"
    # Balance away from support, with the eyes closed, on a soft surface or with head turns.
    UNSUPPORTED_BALANCE = "unsupported_balance"


class Axis(StrEnum):
    """What makes a level harder (each rated on a small whole-number scale per ladder)."""

    # Less of the body supported: lying, then sitting, then standing; for the neck, the head
    # resting, then against a wall, then free, then lifted.
    SUPPORT = "support"
    LEVER = "lever"  # a longer lever or a less upright body angle
    LOAD = "load"  # more resistance: a band, a heavier band, a weight
    RANGE = "range"  # further into the range of movement, or held there longer
    BASE = "base"  # a smaller base of support (two feet, split stance, one leg)
    PACE = "pace"  # faster or more continuous work (marching, then walking, then brisk)
    SENSES = "senses"  # less help from sight, the feet or a still head (eyes closed, a pad)


# Each movement pattern's job. A stand-in shares one with what it replaces (and a stand-in
# family, ``app.domain.catalog.STAND_IN_FAMILIES``).
PURPOSE_OF_PATTERN: dict[str, frozenset[str]] = {
    # Trunk control: holds and slow limb movements that keep the spine still.
    "anti-extension": frozenset({"trunk-control"}),
    "anti-rotation": frozenset({"trunk-control"}),
    "anti-lateral-flexion": frozenset({"trunk-control"}),
    "bracing": frozenset({"trunk-control"}),
    "pelvic-floor": frozenset({"trunk-control"}),
    # A carry is trunk control with a load in the hands, and the lifting of daily life.
    "carry": frozenset({"trunk-control", "lifting"}),
    # Hips and legs: the muscles that lift, stand and climb (hip extensors, thighs).
    "hinge": frozenset({"hips-and-legs", "lifting"}),
    "lift": frozenset({"hips-and-legs", "lifting"}),
    "squat": frozenset({"hips-and-legs"}),
    "hip-extension": frozenset({"hips-and-legs"}),
    # The side of the hip, which steadies the pelvis on one leg: squats do not train it.
    "hip-abduction": frozenset({"hip-abductors"}),
    # Upper back strength: rows and raises against a load.
    "horizontal-pull": frozenset({"upper-back-strength"}),
    "scapular-retraction": frozenset({"upper-back-strength"}),
    # Neck control: the deep neck flexors that hold the head over the shoulders.
    "cervical-retraction": frozenset({"neck-control"}),
    # Shoulder-blade control through the shoulder's range.
    "wall-slide": frozenset({"shoulder-blade-control"}),
    "scapular-mobility": frozenset({"shoulder-blade-control"}),
    # The length of the chest muscles.
    "chest-mobility": frozenset({"chest-length"}),
    # The spine's own range.
    "spinal-extension": frozenset({"spine-mobility"}),
    "spinal-flexion": frozenset({"spine-mobility"}),
    "spinal-flexion-extension": frozenset({"spine-mobility"}),
    "rotation": frozenset({"spine-mobility"}),
    # The hips' range (buttocks, groin, hip flexors), and the hamstrings' length apart: a
    # figure-four does not lengthen the back of the thigh.
    "hip-mobility": frozenset({"hip-mobility"}),
    "hamstring-mobility": frozenset({"hamstring-length"}),
    # The irritated nerve root, and nothing else.
    "neural-mobility": frozenset({"nerve"}),
    # Light rhythmic work that raises the heart rate.
    "locomotion": frozenset({"aerobic"}),
    "cycling": frozenset({"aerobic"}),
    "upper-body-rhythmic": frozenset({"aerobic"}),
    # Standing balance.
    "single-leg-stance": frozenset({"balance"}),
    "tandem-gait": frozenset({"balance"}),
    # Calming the nervous system; the gentle flow also moves the spine.
    "breathing": frozenset({"calm"}),
    "rest-position": frozenset({"calm"}),
    "spinal-mobility": frozenset({"calm", "spine-mobility"}),
    # Habits through the day.
    "posture-awareness": frozenset({"habit"}),
    "sitting-break": frozenset({"habit"}),
}
