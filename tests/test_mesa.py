"""Mesa's conventions: a model given no seed draws a fresh one and records it; arguments are checked first, by name."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from mesa.batchrunner import batch_run

from twin.simulation import model as model_module
from twin.simulation.model import VisionValleyModel
from twin.simulation.run import simulate
from twin.policy import scenario

TINY = {"scale": 0.003, "anchors": 0}


def _short(years: int = 1) -> scenario.Scenario:
    spec = scenario.load(scenario.BASELINE)
    return spec.model_copy(update={"years": scenario.Years(start=2023, end=2023 + years)})


def test_batch_run_without_a_seed_gives_distinct_runs_each_rerun_from_its_recorded_seed(stack):
    rows = batch_run(VisionValleyModel, {"stack": stack, **TINY}, iterations=3, max_steps=2, number_processes=1,
                     data_collection_period=-1, display_progress=False)
    seeds = [row["seed"] for row in rows]
    revenue = [row["revenue_cny"] for row in rows]
    assert len(rows) == 3 and len(set(seeds)) == 3 and len(set(revenue)) == 3, (seeds, revenue)
    again = VisionValleyModel(seed=seeds[1], stack=stack, **TINY)
    again.step()
    again.step()
    assert again.figures["revenue_cny"] == revenue[1]


def test_a_seeded_generator_reruns_the_same_batch(stack):
    def seeds_and_revenue() -> list[tuple[int, float]]:
        rows = batch_run(VisionValleyModel, {"stack": stack, "rng": np.random.default_rng(7), **TINY}, iterations=3,
                         max_steps=1, number_processes=1, data_collection_period=-1, display_progress=False)
        return [(row["seed"], row["revenue_cny"]) for row in rows]

    first = seeds_and_revenue()
    assert first == seeds_and_revenue() and len(set(first)) == 3


def test_the_command_line_path_passes_the_scenario_seed(stack):
    """simulate() (what run_scenario.py calls) runs on the scenario's seed, so its bytes do not change with the API's default."""
    short = _short()
    spec = short.model_copy(update={"seed": 5, "params": {**short.params, **TINY}})
    result = simulate(spec, stack=stack, firm_years=())
    assert result.seed == 5 and set(result.metrics.seed) == {5}
    model = VisionValleyModel(spec, seed=5, stack=stack)
    model.run_model()
    assert model.steps == 12 and model.figures["revenue_cny"] == result.years[-1].figures["revenue_cny"]


BAD_ARGUMENTS = [
    ({"seed": 1.5}, TypeError, "seed"),
    ({"seed": True}, TypeError, "seed"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 2**64}, ValueError, "seed"),
    ({"rng": 2.0}, TypeError, "rng"),
    ({"levers": "abc"}, TypeError, "levers"),
    ({"levers": [3]}, TypeError, "levers[0]"),
    ({"scenario": 123}, TypeError, "scenario"),
    ({"stack": "x"}, TypeError, "stack"),
    ({"candidates": 16.0}, ValueError, "candidates"),
    ({"candidates": True}, ValueError, "candidates"),
]


@pytest.mark.parametrize(("arguments", "error", "name"), BAD_ARGUMENTS, ids=[repr(a) for a, _, _ in BAD_ARGUMENTS])
def test_bad_arguments_are_refused_by_name_before_any_work(arguments, error, name):
    with mock.patch.object(model_module.layers, "load", side_effect=AssertionError("work began")), \
         mock.patch.object(model_module, "synthesize", side_effect=AssertionError("work began")):
        with pytest.raises(error) as caught:
            VisionValleyModel(**{"seed": 1, **arguments} if "rng" not in arguments else arguments)
    assert name in str(caught.value)


def test_the_largest_seed_a_numpy_integer_and_a_tuple_of_levers_are_taken(stack):
    model = VisionValleyModel(seed=np.uint64(2**64 - 1), stack=stack, candidates=16, levers=(), **TINY)
    assert model.seed == 2**64 - 1 and type(model.seed) is int and model.params.candidates == 16 and model.levers == []
