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

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from layers import InputError

from ..engine.params import SHIPPED_CALIBRATION, Params, read_calibration
from ..outputs.charts import save_png
from ..outputs.tables import write_csv
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


def factors(calibration: Path = SHIPPED_CALIBRATION) -> dict[str, tuple[float, float]]:
    """Screened parameters: the fitted ones over the calibration's posterior span (±50% of the fit if it has one value)."""
    sample = read_calibration(calibration).get("posterior", [])
    fit = Params.from_calibration(calibration)
    out = {}
    for name in FITTED:
        values = {member[name] for member in sample if name in member}
        default = getattr(fit, name)
        out[name] = (min(values), max(values)) if len(values) > 1 else (0.5 * default, 1.5 * default)
    return out | ASSUMED


OUTPUTS = ("core_revenue_cny", "leaders_100bn", "guishang_firms")


def run_point(values: dict[str, float], seed: int, scale: float, calibration: Path = SHIPPED_CALIBRATION) -> dict[str, float]:
    """One baseline run 2023→2027 (a Dask task) on ``calibration``'s fit: the 2027 headline figures at full-scale estimate."""
    from ..simulation.model import VisionValleyModel
    from .members import _stack

    spec = scenarios.load(scenarios.BASELINE).model_copy(update={"calibration": str(Path(calibration).resolve())})
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


def morris(client, trajectories: int, scale: float, seed: int = 1, progress=None,
           calibration: Path = SHIPPED_CALIBRATION) -> pd.DataFrame:
    """Morris screening on the Dask client: a ranked table of mu*, mu and sigma per output and parameter.

    Seven factors (``factors``), so r trajectories cost 8r four-year baseline runs.
    """
    FACTORS = factors(calibration)
    from SALib.analyze import morris as analyze
    from SALib.sample import morris as sample

    problem = {"num_vars": len(FACTORS), "names": list(FACTORS), "bounds": [list(b) for b in FACTORS.values()]}
    X = sample.sample(problem, trajectories, num_levels=4, seed=seed)
    futures = [client.submit(run_point, dict(zip(FACTORS, map(float, x))), seed, scale, calibration, pure=False) for x in X]
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
    save_png(fig, path, dpi=110)
    plt.close(fig)


DOCS = Path(__file__).resolve().parents[2] / "docs"


def main(argv: list[str] | None = None) -> int:
    """``python -m twin.studies.sensitivity``: run the screening on Dask; write sensitivity.csv and
    sensitivity.png (default into docs/); print the ranking."""
    parser = argparse.ArgumentParser(prog="python -m twin.studies.sensitivity", description=main.__doc__)
    parser.add_argument("--trajectories", type=int, default=6, help="Morris trajectories (runs = r x (k+1); default 6)")
    parser.add_argument("--scale", type=float, default=1.0, help="population scale (default 1, as the calibration; anchors on)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    parser.add_argument("--calibration", type=Path, default=SHIPPED_CALIBRATION, help="calibration file: the fit and posterior spans screened (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for sensitivity.csv and .png (default docs/)")
    args = parser.parse_args(argv)
    if args.trajectories < 2:
        print("error: --trajectories: Morris needs at least 2", file=sys.stderr)
        return 2
    try:  # before the runs, not after: a bad folder or calibration must not cost the whole screening
        runs = args.trajectories * (len(factors(args.calibration)) + 1)
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: {args.out}: cannot write there ({exc.strerror})", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from .cluster import dask_client

    with dask_client(args.workers, None) as client, tqdm(total=runs, desc="morris", unit="run", file=sys.stderr) as bar:
        table = morris(client, args.trajectories, args.scale, progress=bar.update, calibration=args.calibration)
    write_csv(table.round(6), args.out / "sensitivity.csv")
    chart(table, args.out / "sensitivity.png")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
