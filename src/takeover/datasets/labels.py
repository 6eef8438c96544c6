"""Which steps of a demonstration are training labels, and how much each one counts.

A label rule looks at one stored demo and says which of its steps are labels:

    rule(demo, attrs) -> bool array (T,), or None when every step is a label

`demo` maps array names to arrays (an h5py group: `"interventions" in demo`, `demo["interventions"][()]`),
`attrs` holds the demo's attributes (source, success, round, ...). A step that is not a label is never
a training target, but its observation stays in the data as history (HG-DAgger labels only the steps a
person drove: docs/tutorials/dagger-live.md). Whatever the rule, the first `history_steps` steps of a demo (a demo
attribute; CCIL's label episodes carry it) are never labels: they are observation history only. A weight rule has the same form and returns float weights (T,) or None
(all 1); the dataset multiplies them into every batch as `weights`.
"""
from __future__ import annotations

import numpy as np

from .errors import DatasetError


def history_steps(demo, attrs) -> np.ndarray | None:
    """False on a demo's leading `history_steps` (attribute) steps, True after them; None without any."""
    n = int(attrs.get("history_steps", 0) or 0)
    if n <= 0:
        return None
    mask = np.ones(int(demo["actions"].shape[0]), bool)
    mask[:n] = False
    return mask


def every_step(demo, attrs) -> np.ndarray | None:
    """Every step of every demo is a label (plain behaviour cloning), history steps aside."""
    return history_steps(demo, attrs)


def intervention_steps(demo, attrs) -> np.ndarray | None:
    """In a demo that carries per-step `interventions`, only the steps with 1 (a person drove) are
    labels; every step of a demo without them is one (history steps aside)."""
    history = history_steps(demo, attrs)
    if "interventions" not in demo:
        return history
    human = np.asarray(demo["interventions"][()]).reshape(-1) != 0
    return human if history is None else human & history


LABEL_RULES = {"all": every_step, "interventions": intervention_steps}
DEFAULT_LABEL_RULE = "interventions"  # the trainer's


def label_rule(name_or_rule):
    """A rule from its name in LABEL_RULES, or the callable itself."""
    if callable(name_or_rule):
        return name_or_rule
    if name_or_rule not in LABEL_RULES:
        raise DatasetError(f"unknown label rule {name_or_rule!r}; known: {', '.join(sorted(LABEL_RULES))}")
    return LABEL_RULES[name_or_rule]


# Sirius (Liu et al. 2022) classes of a take-over episode's steps and their loss weights: the robot's
# own steps count as they are, the person's are up-weighted, and the robot's steps just before a
# take-over (what made the person step in) are dropped. Demos without `interventions` weigh 1.
SIRIUS_PRE_INTERVENTION_STEPS = 15
SIRIUS_WEIGHTS = {"robot": 1.0, "intervention": 2.0, "pre_intervention": 0.0}


def sirius_weights(demo, attrs) -> np.ndarray | None:
    """Per-step Sirius weights of a take-over episode (None for a demo without `interventions`)."""
    if "interventions" not in demo:
        return None
    human = np.asarray(demo["interventions"][()]).reshape(-1) != 0
    weights = np.where(human, SIRIUS_WEIGHTS["intervention"], SIRIUS_WEIGHTS["robot"]).astype(np.float32)
    starts = np.flatnonzero(human & ~np.concatenate([[False], human[:-1]]))  # first step of each take-over
    for s in starts:
        before = slice(max(0, s - SIRIUS_PRE_INTERVENTION_STEPS), s)
        weights[before] = np.where(human[before], weights[before], SIRIUS_WEIGHTS["pre_intervention"])
    return weights


# --weighting: (label rule, weight rule, balance interventions to half of each batch)
#   none:   only a person's steps are labels in take-over episodes, all weigh 1
#   iwr:    the same labels; intervention steps make up half of every batch (Mandlekar et al. 2020)
#   sirius: every step is a label, weighted by sirius_weights
WEIGHTINGS = {"none": ("interventions", None, False), "iwr": ("interventions", None, True),
              "sirius": ("all", sirius_weights, False)}
