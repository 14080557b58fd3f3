"""Member seeds and sweep points: what an ensemble runs, fixed before any work starts."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from layers import InputError

from ..engine.params import Params, read_calibration
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
                Params().with_overrides({**spec.params, name: value})  # ranges only: the fit does not change them
            except InputError as exc:
                raise InputError("arguments", f"--sweep {name}", exc.what) from None
    names = list(sweep)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(v) for v in sweep.values()))]


def point_label(point: Mapping[str, Any]) -> str:
    """``name=value_name=value``: the point's part of a file name."""
    return "_".join(f"{name}={value!r}" for name, value in point.items())


@dataclass(frozen=True)
class MemberSpec:
    """How every study turns (scenario, member seed) into that member's run: the one place members draw.

    Ensembles, sweeps, paired comparisons, attribution and goal seeking all
    call :meth:`run_spec`, so a draw is applied the same way everywhere. A
    draw depends only on the member's seed and the scenario's calibration, so
    the two scenarios of a pair, the subsets of an attribution and the trials
    of a search get the same draw for the same member: they stay paired. Each
    kind of draw is one entry of :meth:`draws` with its own stream and its own
    switch; the lever-response draws (docs/levers.md) join as a second kind.
    A drawn value never overrides a parameter the scenario or sweep sets itself.
    """

    posterior: bool = True
    """Draw the fitted parameters from the calibration's posterior sample (``--no-posterior``: the point fit)."""

    def draws(self, spec: Scenario) -> list[tuple[str, int, list[dict[str, Any]]]]:
        """The kinds of draw that are on: (name, stream, the sets a member draws one of)."""
        kinds = []
        if self.posterior:
            kinds.append(("posterior", 12, read_calibration(spec.calibration_file()).get("posterior", [])))
        return [(name, stream, sets) for name, stream, sets in kinds if sets]

    def run_spec(self, spec: Scenario, seed: int) -> Scenario:
        """The member's scenario: ``spec`` with each kind of draw applied, seeded by the member's ``seed``."""
        drawn: dict[str, Any] = {}
        for _, stream, sets in self.draws(spec):
            drawn |= sets[int(np.random.default_rng([seed, stream]).integers(len(sets)))]
        if not drawn:
            return spec
        return spec.model_copy(update={"params": {**{k: v for k, v in drawn.items() if k not in spec.params}, **spec.params}})

    def uncertainty(self, spec: Scenario) -> str:
        """What the members' intervals count: seed noise, and which drawn inputs beside it."""
        parts = [f"one of the calibration's {len(sets)} posterior parameter sets ({spec.calibration_file().name})"
                 for name, _, sets in self.draws(spec) if name == "posterior"]
        if parts:
            return f"seed + parameters: each member's own seed and {' and '.join(parts)}, drawn by that seed"
        return "seed only: every member runs the calibration's point fit (posterior draws off, or no posterior sample)"

    def as_dict(self) -> dict[str, bool]:
        """The switches, for fingerprints and manifests (members drawn otherwise never mix)."""
        return dataclasses.asdict(self)
