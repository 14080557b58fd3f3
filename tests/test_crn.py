"""Common random numbers, one model for API / batch_run / CLI, Mesa-style seeding and one clock.

Keyed streams (twin/engine/streams.py) make every monthly draw a function of
(seed, process, month, agent id), so two scenarios on one seed meet the same
shocks and their difference is the lever's effect, not noise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mesa.batchrunner import batch_run

from twin.engine.params import TRACK_IDS
from twin.engine.streams import Streams, newborn_ids
from twin.model import VisionValleyModel
from twin.policy import scenario

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"scale": 0.004, "anchors": 0}


def _years(name: str, end: int) -> scenario.Scenario:
    spec = scenario.load(ROOT / "scenarios" / f"{name}.yaml")
    return spec.model_copy(update={"years": scenario.Years(start=2023, end=end)})


def test_a_draw_depends_on_the_agent_id_not_on_who_else_draws():
    streams = Streams(11)
    ids = np.array([5, 17, 2**40 + 3, 0])
    u = streams.uniform("grow", 7, ids)
    np.testing.assert_array_equal(streams.uniform("grow", 7, ids[::-1]), u[::-1])
    np.testing.assert_array_equal(streams.uniform("grow", 7, np.r_[ids, 99, 100])[:4], u)
    for other in (streams.uniform("exit", 7, ids), streams.uniform("grow", 8, ids), Streams(12).uniform("grow", 7, ids)):
        assert not np.isin(other, u).any()
    wide = streams.uniform("grow", 7, ids, k=3)
    assert wide.shape == (4, 3) and len(np.unique(wide)) == 12



def test_seeds_keys_and_member_seeds_are_pairwise_distinct_over_a_range():
    """No two run seeds share a stream key (every process, several months), nor a first draw; no two ensemble members,
    under any of a range of root seeds, share a seed. Pairs such as 2k and 2k + 1 are covered, not only 11 and 12."""
    from twin.studies.seeds import member_seeds

    seeds = range(0, 300)
    for process in ("grow", "exit", "talent_month", "births"):
        for month in (0, 1, 24289):
            keys = [int(Streams(s).key(process, month)) for s in seeds]
            assert len(set(keys)) == len(keys), (process, month)
    first = np.array([Streams(s).uniform("grow", 3, np.arange(4)) for s in seeds])
    assert len(np.unique(first)) == first.size
    members = [m for root in range(0, 60) for m in member_seeds(root, 24)]
    assert len(set(members)) == len(members)


def test_keyed_uniforms_are_uniform_and_counts_are_monotone_in_the_rate():
    from scipy import stats

    u = Streams(3).uniform("test", 0, np.arange(200_000))
    assert 0.0 < u.min() and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    streams = Streams(3)
    for month in range(50):
        counts = [streams.poisson("births", month, mean) for mean in (20.0, 20.5, 21.0)]
        assert counts[0] <= counts[1] <= counts[2] <= counts[0] + 3
    assert newborn_ids(5, 3).tolist() == [6 * 2**32, 6 * 2**32 + 1, 6 * 2**32 + 2]


def test_counts_and_normal_quantiles_match_scipy():
    """The engine's own Poisson inverse CDF and normal quantile (AS 241) give SciPy's answers, tails included."""
    from scipy import special, stats

    from twin.engine.kernels import ndtri
    from twin.engine.streams import poisson_quantile

    rng = np.random.default_rng(5)
    for u, mean in zip(rng.random(3000), 10 ** rng.uniform(-3, 6, 3000)):
        assert poisson_quantile(u, mean) == int(stats.poisson.ppf(u, mean))
    u = np.concatenate([rng.random(20_000), 10 ** -rng.uniform(1, 300, 2000), 1 - 10 ** -rng.uniform(1, 15, 2000), [0.075, 0.5, 0.925]])
    exact = special.ndtri(u)
    ours = np.array([ndtri(x) for x in u])
    np.testing.assert_allclose(ours, exact, rtol=1e-14, atol=1e-300)


def test_one_hash_a_month_gives_independent_talent_events_at_their_rates():
    """Separation and home moves come from the two halves of one hash: each at its rate, independent of the other."""
    from twin.engine.talent import _below32, _talent_month

    n = 400_000
    uid = np.arange(n, dtype=np.int64) * 3 + 11
    alive = np.arange(n) % 10 != 0  # every tenth row is dead
    firm = np.where(np.arange(n) % 4 == 0, -1, 7).astype(np.int32)  # a quarter seeking
    p_leave, p_separate, p_move = 0.01, 0.05, 0.08
    args = (np.uint64(99), uid, alive, firm, _below32(p_leave), _below32(p_separate), _below32(p_move))
    seekers, separated, leaving, movers = _talent_month(*args)
    for threaded, serial in zip((seekers, separated, leaving, movers), _talent_month.serial(*args)):
        np.testing.assert_array_equal(threaded, serial)  # the same rows on any number of threads
    employed = alive & (firm >= 0)
    assert alive[movers].all() and employed[separated].all() and np.isin(leaving, separated).all()
    assert not np.isin(leaving, movers).any() and not np.isin(leaving, seekers).any()
    np.testing.assert_array_equal(np.sort(seekers), np.flatnonzero(alive & (firm < 0) | np.isin(np.arange(n), np.setdiff1d(separated, leaving))))

    def near(count: int, at_risk: int, p: float) -> bool:
        return abs(count - at_risk * p) < 5 * np.sqrt(at_risk * p * (1 - p))

    assert near(len(separated), employed.sum(), p_separate) and near(len(leaving), employed.sum(), p_leave)
    stayers = np.setdiff1d(np.flatnonzero(alive), leaving)
    assert near(len(movers), len(stayers), p_move)
    quitters = np.setdiff1d(separated, leaving)
    assert near(np.isin(quitters, movers).sum(), len(quitters), p_move)  # a quitter moves home as often as anybody


class BoostTrack:
    """A lever that raises one track's growth and touches nothing else."""

    def __init__(self, track: str) -> None:
        self.track = TRACK_IDS.index(track)

    def apply(self, model, effects) -> None:
        effects.growth[model.state.firms.track == self.track] += 0.5


def test_same_firm_meets_the_same_shocks_in_two_scenarios(stack):
    """A lever changes what it touches: firms it does not touch keep their revenue path to the byte in month one."""
    spec = _years("baseline", 2024)
    plain = VisionValleyModel(spec, seed=4, stack=stack, levers=[], **SMALL)
    boosted = VisionValleyModel(spec, seed=4, stack=stack, levers=[BoostTrack("medical")], **SMALL)
    medical = TRACK_IDS.index("medical")
    for month in range(1, 4):
        plain.step()
        boosted.step()
        a, b = plain.state.firms, boosted.state.firms
        both, ia, ib = np.intersect1d(a.uid[a.alive], b.uid[b.alive], return_indices=True)
        rows_a, rows_b = np.flatnonzero(a.alive)[ia], np.flatnonzero(b.alive)[ib]
        assert len(both) > 0.95 * a.count, "exits and births should mostly line up"
        others = a.track[rows_a] != medical
        ratio = b.revenue[rows_b] / a.revenue[rows_a]
        if month == 1:
            np.testing.assert_array_equal(ratio[others], 1.0)
        else:  # later months feel the boosted firms through the city averages only
            np.testing.assert_allclose(np.median(np.abs(np.log(ratio[others]))), 0.0, atol=1e-3)
        base_year = a.uid[rows_a] < 2**32  # newborns of the month have not grown yet
        assert np.all(ratio[~others & base_year] > 1.0)


def test_paired_seeds_cut_the_noise_of_a_policy_comparison(stack):
    """vouchers_250m minus baseline: same-seed differences have under a quarter of the sd of independent ones.

    The vouchers' effect on a year of a tiny city is too small for a t test
    with four seeds (benchmarks/crn_pairs.py measures it at scale 0.1); that
    the difference is the lever's alone is what the same-shocks test shows.
    """

    def revenue(name: str, seed: int) -> float:
        model = VisionValleyModel(_years(name, 2024), seed=seed, stack=stack, scale=0.003)
        model.run_model()
        return model.figures["revenue_cny"]

    seeds = range(1, 5)
    base = np.array([revenue("baseline", s) for s in seeds])
    paired = np.array([revenue("vouchers_250m", s) for s in seeds]) - base
    unpaired = np.array([revenue("vouchers_250m", s + 100) for s in seeds]) - base
    assert np.any(paired != 0), "the lever did nothing"
    assert paired.std(ddof=1) <= 0.25 * unpaired.std(ddof=1), (paired, unpaired)


def test_batch_run_iterations_differ_and_rerun_the_same(stack):
    def rows() -> list[dict]:
        return batch_run(
            VisionValleyModel,
            parameters={"scenario": str(scenario.BASELINE), "stack": stack, "rng": np.random.default_rng(2024), **SMALL},
            iterations=2,
            max_steps=3,
            number_processes=1,
            data_collection_period=-1,
            display_progress=False,
        )

    first, again = rows(), rows()
    revenue = [r["revenue_cny"] for r in first]
    assert len(revenue) == 2 and revenue[0] != revenue[1]
    assert revenue == [r["revenue_cny"] for r in again]
    with pytest.raises(ValueError, match="either rng or seed"):
        VisionValleyModel(seed=1, rng=1, stack=stack, **SMALL)


def test_the_clock_and_the_collected_year_agree(stack):
    model = VisionValleyModel(_years("baseline", 2024), seed=2, stack=stack, **SMALL)
    assert model.year == 2024.0 and model.calendar_year == 2023
    model.step()
    assert model.year == pytest.approx(2024 + 1 / 12) and model.calendar_year == 2024
    model.run_model()
    years = model.datacollector.get_model_vars_dataframe()["year"]
    assert model.steps == 12 and years.iloc[-1] == model.year == 2025.0
    assert set(model.datacollector.get_table_dataframe("metrics").year) == {2023, 2024}


def test_api_batch_run_and_command_line_agree(stack, tmp_path):
    """One model: the scenario's levers are on by default in the Python API, in batch_run and on the command line.

    batch_run labels a row by how many steps the model had taken; it steps
    past ``max_steps`` once, so its Step 12 row is the state after 12 months.
    """
    path = tmp_path / "small.yaml"
    path.write_text(
        f"extends: {ROOT / 'scenarios' / 'baseline.yaml'}\nname: small\nyears: {{start: 2023, end: 2025}}\n"
        "params: {scale: 0.003, anchors: 1}\n",
        encoding="utf-8",
    )
    model = VisionValleyModel(path, seed=9, stack=stack)
    assert len(model.levers) == len(scenario.load(path).levers) > 0
    for _ in range(12):
        model.step()
    api = model.figures["revenue_cny"]
    rows = batch_run(
        VisionValleyModel,
        {"scenario": str(path), "seed": 9, "stack": stack},
        iterations=1,
        max_steps=12,
        data_collection_period=12,
        display_progress=False,
    )
    out = subprocess.run(
        [sys.executable, str(ROOT / "run_scenario.py"), str(path), "--seed", "9", "--out", str(tmp_path / "out"), "--quiet"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    metrics = pd.read_csv(tmp_path / "out" / "metrics.csv", keep_default_na=False)
    cli = metrics[(metrics.year == 2024) & (metrics.level == "city") & (metrics.metric == "revenue_cny")].value.iloc[0]
    assert [r["revenue_cny"] for r in rows if r["Step"] == 12] == [api]
    assert cli == round(api)  # metrics.csv keeps whole yuan
    unlevered = VisionValleyModel(path, seed=9, stack=stack, levers=[])
    for _ in range(12):
        unlevered.step()
    assert unlevered.figures["revenue_cny"] != api
