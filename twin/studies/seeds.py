"""Member seeds and sweep points: what an ensemble runs, fixed before any work starts."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from layers import InputError

from ..engine.params import CALIBRATION, Params
from ..policy.scenario import Scenario


def member_seeds(seed: int, members: int) -> list[int]:
    """The members' seeds: ``SeedSequence(seed).spawn(members)``, each child turned into one int."""
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(members)]


def sweep_points(spec: Scenario, sweep: Mapping[str, Sequence[float]] | None) -> list[dict[str, Any]]:
    """The cartesian product of the swept values, in the order given; ``[{}]`` without a sweep.

    Unknown names, repeated values and values out of a parameter's range are
    input errors, reported before any work starts.
    """
    if not sweep:
        return [{}]
    for name, values in sweep.items():
        values = list(values)
        if not values:
            raise InputError("arguments", f"--sweep {name}", "no values given")
        if len(set(values)) != len(values):
            raise InputError("arguments", f"--sweep {name}", f"a value is repeated in {values}")
        for value in values:
            try:
                Params().with_overrides({**spec.params, name: value})
            except InputError as exc:
                raise InputError("arguments", f"--sweep {name}", exc.what) from None
    names = list(sweep)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(v) for v in sweep.values()))]


def point_label(point: Mapping[str, Any]) -> str:
    """``name=value_name=value``: the point's part of a file name."""
    return "_".join(f"{name}={value!r}" for name, value in point.items())


def posterior_spec(spec: Scenario, seed: int) -> Scenario:
    """The member's scenario with its fitted parameters drawn from the calibration's posterior sample.

    Parameter uncertainty joins seed noise, so P(target) counts both. The draw
    is seeded by the member's seed (the same member draws the same set at every
    sweep point); off when the scenario sets ``posterior: 0`` (``--no-posterior``)
    and never overriding a parameter the scenario or sweep sets itself.
    """
    sample = CALIBRATION.get("posterior", [])
    if not sample or not Params().with_overrides(spec.params).posterior:
        return spec
    drawn = sample[int(np.random.default_rng([seed, 12]).integers(len(sample)))]
    return spec.model_copy(update={"params": {**{k: v for k, v in drawn.items() if k not in spec.params}, **spec.params}})


def uncertainty(spec: Scenario) -> str:
    """What an ensemble's P(target) counts: seed noise only, or seed noise and the posterior's parameter sets."""
    sample = CALIBRATION.get("posterior", [])
    if sample and Params().with_overrides(spec.params).posterior:
        return (f"seed + parameters: each member's own seed and one of the calibration's {len(sample)} posterior "
                "parameter sets (twin/engine/calibration.json), drawn by that seed")
    return "seed only: every member runs the fitted point values (--no-posterior or no posterior sample)"
