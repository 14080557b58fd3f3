"""Screening of every assumption: the factors come from the parameters' metadata, and a tiny Morris run on real Dask
workers screens a lever response on the policy effect as well as the baseline's levels."""

from __future__ import annotations

import dataclasses

import numpy as np

from twin.engine.params import Params, read_calibration
from twin.studies import sensitivity


def test_every_assumption_every_response_and_every_fitted_parameter_is_screened():
    found = sensitivity.factors()
    fitted = read_calibration()["fitted"]
    for f in dataclasses.fields(Params):
        m = f.metadata
        should = f.name in fitted or "grade" in m or ("ASSUMPTION" in m["doc"] and f.name not in sensitivity.NOT_SCREENED)
        assert (f.name in found) == should, f.name
        if f.name in found:
            lo, hi, kind = found[f.name]
            assert m["lo"] <= lo < hi <= m["hi"], f.name
            if kind == "response":
                assert (lo, hi) == tuple(m["evidence"])
    assert {"funding_return", "funding_half_life_years", "birth_rate", "talent_weight", "labour_penalty"} <= set(found)
    assert sensitivity._stated("ASSUMPTION (range 0.2-1.0, docs/levers.md)") == (0.2, 1.0)
    assert sensitivity._stated("ASSUMPTION (range ¥0.1-10 M): the law") is None  # a range in other units is not the parameter's


def test_a_tiny_screening_names_its_outputs_and_sees_a_response_move_the_policy_effect():
    """Morris on a one-worker LocalCluster at scale 0.003: two trajectories of funding_return, one seed (12 four-year runs)."""
    from twin.studies.cluster import dask_client

    with dask_client(1, None) as client:
        table = sensitivity.morris(client, 2, 0.003, seeds=1, only=("funding_return",))
    assert set(table["output"]) == set(sensitivity.OUTPUTS)
    assert (table["parameter"] == "funding_return").all() and (table["kind"] == "response").all()
    effect = table[table["output"] == f"{sensitivity.EFFECT}_effect_core_revenue_cny"].iloc[0]
    # the response moves the policy effect (its sign at this scale is noise: the other firms' revenue is divided by 0.003)
    assert np.isfinite(effect["mu_star"]) and effect["mu_star"] > 0
    assert (table["scale"] == 0.003).all() and (table["seeds"] == 1).all()
