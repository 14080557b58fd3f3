"""The vectorized engine agrees in distribution with the per-agent reference model, and the comparison has teeth.

Both models start from the same synthesized base year for a given seed, run
the baseline's levers (vouchers, model subsidies, the fund with its funding
stock, compute build-out) plus smart_om and talent, and then draw their
randomness differently: the reference from its own seeded generator, one
draw at a time, the engine from its keyed streams. So they agree in
distribution, not draw for draw. Over many seeds, a paired t-test on each key
metric must not reject agreement; the same test against an engine with a
small, real change to one rule must reject it. The reference shares no rule
with the engine (only data: the base year, the grid and its smoothing);
tests/test_rules.py compares the two draw for draw, agent by agent.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from twin.engine.params import Params
from twin.model import VisionValleyModel
from twin.policy import scenario
from twin.simulation.reference import ReferenceModel

SEEDS = range(1, 21)
CITY = {"scale": 0.003, "anchors": 0}
ALPHA = 1e-3  # per metric; twelve metrics, so a false alarm is rarer than 1 in 80 runs


EXTRA_LEVERS = [{"kind": "smart_om"}, {"kind": "talent"}]


def _one_year() -> scenario.Scenario:
    """The baseline's first simulated year, with its levers and the two it leaves out (smart_om, talent)."""
    spec = scenario.load(scenario.BASELINE).model_dump()
    return scenario.Scenario.model_validate({**spec, "years": {"start": 2023, "end": 2024}, "levers": [*spec["levers"], *EXTRA_LEVERS]})


EVENTS = ("firm_births", "firm_exits", "hires", "relocations", "talent_in", "talent_out")
NAMES = ["mean log firm revenue", "log revenue", "firms", "talent", "employment rate", "core+window firm share", *EVENTS]


def _metrics(model, events: dict[str, int]) -> np.ndarray:
    """Totals, growth, a spatial share and event counts: a divergence in any process moves one of them."""
    if isinstance(model, ReferenceModel):
        table = model.firm_table()
    else:
        firms = model.state.firms
        table = {"revenue": firms.revenue[firms.alive], "cell": firms.cell[firms.alive]}
    figures = model.figures
    zone = model.geo.zone[table["cell"]]
    return np.array(
        [
            np.log(table["revenue"]).mean(),
            np.log(figures["revenue_cny"]),
            figures["firms"],
            figures["talent"],
            figures["employed"] / figures["talent"],
            np.isin(zone, [0, 1]).mean(),
            *(events[e] for e in EVENTS),
        ]
    )


def _runs(cls, stack, **params) -> np.ndarray:
    spec = _one_year()
    out = []
    for seed in SEEDS:
        model = cls(spec, seed=seed, stack=stack, **CITY, **params)
        events = dict.fromkeys(EVENTS, 0)
        while model.running:
            model.step()
            log = model.state.log if hasattr(model, "state") else model.log
            for e in EVENTS:
                events[e] += getattr(log, e)
        out.append(_metrics(model, events))
    return np.array(out)


@pytest.fixture(scope="module")
def reference(stack) -> np.ndarray:
    return _runs(ReferenceModel, stack)


def _p_values(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {name: float(stats.ttest_rel(a[:, i], b[:, i]).pvalue) for i, name in enumerate(NAMES)}


def test_engine_agrees_with_reference_within_sampling_error(stack, reference):
    engine = _runs(VisionValleyModel, stack)
    p = _p_values(engine, reference)
    assert min(p.values()) > ALPHA, p


@pytest.mark.parametrize(
    "change",
    [{name: 2 * getattr(Params.from_calibration(), name)} for name in ("growth_mu", "birth_rate", "exit_rate", "quit_rate", "relocation_rate")],
    ids=lambda change: next(iter(change)),
)
def test_comparison_catches_a_real_divergence(stack, reference, change):
    """A factor-of-two slip in one rule of the engine (growth, birth, exit, quitting, relocation) must be caught."""
    mutant = _runs(VisionValleyModel, stack, **change)
    p = _p_values(mutant, reference)
    assert min(p.values()) < ALPHA, p
