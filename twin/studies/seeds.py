"""Member seeds and sweep points: what an ensemble runs, fixed before any work starts."""

from __future__ import annotations

import dataclasses
import itertools
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from layers import InputError

from ..engine.params import Params, read_calibration
from ..policy.evidence import response_fields
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


POSTERIOR_STREAM, RESPONSE_STREAM = 12, 13
"""The member-draw streams: ``default_rng([member seed, stream, ...])``, apart from each other and from the engine's."""


def draw_responses(seed: int) -> dict[str, float]:
    """One member's lever responses: every response parameter drawn within its evidence range, seeded by ``seed``.

    Triangular over the evidence range with the central value as its mode:
    the studies give a low, a likely and a high value and no more shape, and
    the three-point estimate uses exactly those (a uniform would throw the
    likely value away). Each parameter has its own generator, keyed by the
    crc32 of its name, so adding a response parameter leaves the others'
    draws unchanged. A range of one point gives that point.
    """
    drawn = {}
    for f in response_fields():
        lo, hi = f.metadata["evidence"]
        rng = np.random.default_rng([seed, RESPONSE_STREAM, zlib.crc32(f.name.encode())])
        drawn[f.name] = float(rng.triangular(lo, f.default, hi)) if hi > lo else float(f.default)
    return drawn


@dataclass(frozen=True)
class MemberSpec:
    """How every study turns (scenario, member seed) into that member's run: the one place members draw.

    Ensembles, sweeps, paired comparisons, attribution and goal seeking all
    call :meth:`run_spec`, so a draw is applied the same way everywhere. A
    draw depends only on the member's seed and the scenario's calibration, so
    the two scenarios of a pair, the subsets of an attribution and the trials
    of a search get the same draw for the same member: they stay paired. Each
    kind of draw is one entry of :meth:`draws` with its own stream and its own
    switch: the calibration's posterior and the lever responses (docs/levers.md).
    A drawn value never overrides a parameter the scenario or sweep sets itself.
    """

    posterior: bool = True
    """Draw the fitted parameters from the calibration's posterior sample (``--no-posterior``: the point fit)."""
    responses: bool = True
    """Draw the lever-response parameters within their evidence ranges (``--freeze-responses``: their central values)."""

    def draws(self, spec: Scenario, seed: int) -> dict[str, dict[str, Any]]:
        """Per kind of draw that is on (and has something to draw): what member ``seed`` draws."""
        kinds: dict[str, dict[str, Any]] = {}
        if self.posterior and (sets := read_calibration(spec.calibration_file()).get("posterior", [])):
            kinds["posterior"] = sets[int(np.random.default_rng([seed, POSTERIOR_STREAM]).integers(len(sets)))]
        if self.responses and response_fields():
            kinds["responses"] = draw_responses(seed)
        return kinds

    def run_spec(self, spec: Scenario, seed: int) -> Scenario:
        """The member's scenario: ``spec`` with each kind of draw applied, seeded by the member's ``seed``."""
        drawn: dict[str, Any] = {}
        for values in self.draws(spec, seed).values():
            drawn |= values
        if not drawn:
            return spec
        return spec.model_copy(update={"params": {**{k: v for k, v in drawn.items() if k not in spec.params}, **spec.params}})

    def uncertainty(self, spec: Scenario) -> str:
        """What the members' intervals count: seed noise, and which drawn inputs beside it (parameters, lever responses)."""
        parts, label = ["each member's own seed"], ["seed"]
        if self.posterior and (sets := read_calibration(spec.calibration_file()).get("posterior", [])):
            parts.append(f"one of the calibration's {len(sets)} posterior parameter sets ({spec.calibration_file().name})")
            label.append("parameters")
        if self.responses and (fields := response_fields()):
            parts.append(f"its own draw of the {len(fields)} lever-response parameters within their evidence ranges (docs/levers.md)")
            label.append("responses")
        if len(label) == 1:
            return ("seed only: every member runs the calibration's point fit and the lever responses' central values "
                    "(posterior draws and response draws off, or nothing to draw)")
        fixed = [] if self.posterior else ["the fitted parameters at the point fit"]
        fixed += [] if self.responses else ["the lever responses at their central values (frozen)"]
        said = f"{' + '.join(label)}: {', '.join(parts[:-1])} and {parts[-1]}, drawn by that seed"
        return said + (f"; {' and '.join(fixed)}" if fixed else "")

    def as_dict(self) -> dict[str, bool]:
        """The switches, for fingerprints and manifests (members drawn otherwise never mix)."""
        return dataclasses.asdict(self)
