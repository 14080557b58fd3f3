"""Global sensitivity of the 2027 headline figures: Morris elementary effects with SALib, runs on Dask.

Morris screening (SALib, a kept library) ranks parameters by mu* (mean
absolute elementary effect) with r(k+1) runs, which a 2-core machine can
afford where Sobol's N(2k+2) cannot. Each run uses the same seed (common
random numbers), so effects are the parameters', not the noise's. The core
revenue is reported as a full-scale estimate: anchors (at their real size) +
the other firms' revenue / scale. The fitted parameters vary over their
posterior sample's span (what the data leave open), the assumed ones over
stated ASSUMPTION ranges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.params import CALIBRATION, Params
from ..policy import scenario as scenarios
from .calibration import FITTED

ASSUMED = {
    "sigma_size_elasticity": (0.14, 0.3),
    "growth_sigma": (0.15, 0.35),
    "guishang_pareto_alpha": (1.1, 2.2),
    "exit_rate": (0.04, 0.16),
}
"""Assumed parameters screened and their ranges (ASSUMPTION: the literature's β range for
sigma_size_elasticity, docs/sources.md#s-lit-size-variance; about ±40-50% around the defaults for the rest)."""


def factors() -> dict[str, tuple[float, float]]:
    """Screened parameters: the fitted ones over their posterior sample's span (±50% of the fit if it has one value)."""
    sample = CALIBRATION.get("posterior", [])
    out = {}
    for name in FITTED:
        values = {member[name] for member in sample if name in member}
        default = getattr(Params(), name)
        out[name] = (min(values), max(values)) if len(values) > 1 else (0.5 * default, 1.5 * default)
    return out | ASSUMED


FACTORS = factors()
"""Seven, so a screening of r trajectories costs 8r four-year baseline runs."""

OUTPUTS = ("core_revenue_cny", "leaders_100bn", "guishang_firms")


def run_point(values: dict[str, float], seed: int, scale: float) -> dict[str, float]:
    """One baseline run 2023→2027 (a Dask task): the 2027 headline figures at full-scale estimate."""
    from ..simulation.model import VisionValleyModel
    from .members import _stack

    spec = scenarios.load(scenarios.BASELINE)
    model = VisionValleyModel(spec, seed=seed, stack=_stack(spec), scale=scale, anchors=1, **values)
    model.run_model()
    firms = model.state.firms
    alive, anchor = firms.alive, firms.anchor >= 0
    revenue = firms.revenue
    big = revenue >= model.params.guishang_threshold_cny
    return {
        "core_revenue_cny": float(revenue[alive & anchor].sum() + revenue[alive & ~anchor].sum() / scale),
        "leaders_100bn": model.figures["leaders_100bn"],
        "guishang_firms": float((alive & anchor & big).sum() + (alive & ~anchor & big).sum() / scale),
    }


def morris(client, trajectories: int, scale: float, seed: int = 1, progress=None) -> pd.DataFrame:
    """Morris screening on the Dask client: a ranked table of mu*, mu and sigma per output and parameter."""
    from SALib.analyze import morris as analyze
    from SALib.sample import morris as sample

    problem = {"num_vars": len(FACTORS), "names": list(FACTORS), "bounds": [list(b) for b in FACTORS.values()]}
    X = sample.sample(problem, trajectories, num_levels=4, seed=seed)
    futures = [client.submit(run_point, dict(zip(FACTORS, map(float, x))), seed, scale, pure=False) for x in X]
    results = []
    for future in futures:
        results.append(future.result())
        if progress:
            progress(1)
    rows = []
    for output in OUTPUTS:
        Y = np.array([r[output] for r in results])
        Si = analyze.analyze(problem, X, Y, num_levels=4, seed=seed)
        for i, name in enumerate(FACTORS):
            rows.append({"output": output, "parameter": name, "mu_star": Si["mu_star"][i], "mu": Si["mu"][i],
                         "sigma": Si["sigma"][i], "mu_star_rel": Si["mu_star"][i] / max(abs(Y.mean()), 1e-12)})
    table = pd.DataFrame(rows).sort_values(["output", "mu_star"], ascending=[True, False])
    table["rank"] = table.groupby("output").cumcount() + 1
    return table


def chart(table: pd.DataFrame, path: Path) -> None:
    """Horizontal bars of relative mu* per output, largest on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outputs = list(dict.fromkeys(table["output"]))
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.2 * len(outputs), 3.6))
    for ax, output in zip(np.atleast_1d(axes), outputs):
        part = table[table["output"] == output].sort_values("mu_star_rel")
        ax.barh(part["parameter"], part["mu_star_rel"])
        ax.set_title(f"2027 {output}")
        ax.set_xlabel("Morris mu* / mean")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
