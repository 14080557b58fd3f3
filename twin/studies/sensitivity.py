"""Screening of every assumption: Morris elementary effects with SALib over several seeds, runs on Dask.

Morris screening (SALib, a kept library) ranks parameters by mu* (mean
absolute elementary effect) with r(k+1) design points, which a 2-core
machine can afford where Sobol's N(2k+2) cannot. The factors are found from
the parameters' own metadata, so a parameter added later is screened
without an edit here (``factors``):

- every parameter the calibration fits, over its posterior's span (what the
  data leave open);
- every parameter whose documentation says ASSUMPTION, over the range its
  documentation states ("range a-b"), else ``ASSUMED``, else the default
  divided and multiplied by 1.5 (within its allowed range);
- every lever-response parameter (metadata ``grade``), over its evidence range.

Each design point runs on every seed of ``--seeds`` (the same seeds at every
point: common random numbers), and its outputs are the seed means, so an
effect is the parameter's, not the noise's. The outputs screened are the
baseline's 2027 levels (core revenue and the 规上 count as full-scale
estimates: anchors at their real size + the other firms / scale) and a
policy effect: 2027 core revenue of ``EFFECT`` against ``NO_POLICY`` on the
same seeds. Each row of docs/sensitivity.csv names its output.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from layers import InputError

from ..engine.params import SHIPPED_CALIBRATION, Params, read_calibration
from ..engine.targets import full_scale
from ..outputs.charts import save_png
from ..outputs.tables import write_csv
from ..policy import scenario as scenarios

ASSUMED = {
    "sigma_size_elasticity": (0.14, 0.3),
    "growth_sigma": (0.15, 0.35),
    "guishang_pareto_alpha": (1.1, 2.2),
    "exit_rate": (0.04, 0.16),
}
"""Ranges stated here rather than in a parameter's documentation (ASSUMPTION: the literature's β range for
sigma_size_elasticity, docs/sources.md#s-lit-size-variance; about ±40-50% around the defaults for the rest)."""
SPREAD = 1.5
"""ASSUMPTION: an assumption with no stated range is screened from its default / 1.5 to its default x 1.5."""
NOT_SCREENED = ("related_multiplier",)
"""Assumptions no screened output reads (related_multiplier only scales the total-scale figure)."""
_RANGE = re.compile(r"range (?:¥)?([0-9.]+)\s*(?:[-–]|to)\s*([0-9.]*[0-9])(?![0-9.]|\s*(?:M|k|亿|%))")
EFFECT, NO_POLICY = "trillion_push", "no_policy"

if TYPE_CHECKING:
    from ..simulation.model import VisionValleyModel


def _stated(doc: str) -> tuple[float, float] | None:
    """The plain numeric range a parameter's documentation states ("range 0.2-1.0"), if any."""
    found = _RANGE.search(doc)
    return (float(found.group(1)), float(found.group(2))) if found else None


def factors(calibration: Path = SHIPPED_CALIBRATION) -> dict[str, tuple[float, float, str]]:
    """Every screened parameter: (low, high, kind), kind one of fitted, response, assumption."""
    record = read_calibration(calibration)
    sample = record.get("posterior", [])
    fit = Params.from_calibration(calibration)
    out = {}
    for f in dataclasses.fields(Params):
        m, default = f.metadata, getattr(fit, f.name)
        if f.name in record["fitted"]:
            values = {member[f.name] for member in sample if f.name in member}
            lo, hi = (min(values), max(values)) if len(values) > 1 else (0.5 * default, 1.5 * default)
            out[f.name] = (lo, hi, "fitted")
        elif "grade" in m:
            out[f.name] = (*m["evidence"], "response")
        elif "ASSUMPTION" in m["doc"] and f.name not in NOT_SCREENED:
            lo, hi = ASSUMED.get(f.name) or _stated(m["doc"]) or ((default / SPREAD, default * SPREAD) if default else (m["lo"], m["lo"] + 0.1 * (m["hi"] - m["lo"])))
            out[f.name] = (max(lo, m["lo"]), min(hi, m["hi"]), "assumption")
    return {k: v for k, v in out.items() if v[1] > v[0]}


OUTPUTS = ("core_revenue_cny", "guishang_firms", "leaders_100bn", f"{EFFECT}_effect_core_revenue_cny")


def _integers(values: dict[str, float]) -> dict[str, float | int]:
    """Counts as ints (the one rule for numbers refuses 16.0 as a count)."""
    ints = {f.name for f in dataclasses.fields(Params) if isinstance(f.default, int)}
    return {k: round(v) if k in ints else v for k, v in values.items()}


def _run(scenario: str, values: dict[str, float], seed: int, scale: float, calibration: Path) -> VisionValleyModel:
    """One run 2023→2027 of a shipped scenario on ``calibration``'s fit with ``values``; the finished model."""
    from ..simulation.model import VisionValleyModel
    from .members import _stack

    spec = scenarios.load(scenarios.SCENARIOS / f"{scenario}.yaml").model_copy(update={"calibration": str(Path(calibration).resolve())})
    model = VisionValleyModel(spec, seed=seed, stack=_stack(spec), scale=scale, anchors=1, **_integers(values))
    model.run_model()
    return model


def _core(model: VisionValleyModel, scale: float) -> float:
    """Core revenue as a full-scale estimate (:func:`~twin.engine.targets.full_scale`)."""
    return full_scale(model.figures, scale)["revenue_cny"]


def run_point(values: dict[str, float], seed: int, scale: float, calibration: Path = SHIPPED_CALIBRATION) -> dict[str, float]:
    """One design point on one seed (a Dask task): the baseline's 2027 figures and the policy effect, full-scale estimates."""
    base = _run("baseline", values, seed, scale, calibration)
    firms = base.state.firms
    big = firms.alive & (firms.revenue >= base.params.guishang_threshold_cny)
    anchor = firms.anchor >= 0
    effect = _core(_run(EFFECT, values, seed, scale, calibration), scale) - _core(_run(NO_POLICY, values, seed, scale, calibration), scale)
    return {
        "core_revenue_cny": _core(base, scale),
        "guishang_firms": float((big & anchor).sum() + (big & ~anchor).sum() / scale),
        "leaders_100bn": full_scale(base.figures, scale)["leaders_100bn"],
        f"{EFFECT}_effect_core_revenue_cny": effect,
    }


def morris(client, trajectories: int, scale: float, seed: int = 1, progress=None,
           calibration: Path = SHIPPED_CALIBRATION, seeds: int = 1, only: tuple[str, ...] = ()) -> pd.DataFrame:
    """Morris screening on the Dask client: a ranked table of mu*, mu and sigma per output and parameter.

    k factors (``factors``, or ``only`` of them) cost r(k+1) design points, each three four-year runs
    (baseline, the policy and no policy) on each of ``seeds`` seeds.
    """
    found = factors(calibration)
    chosen = {k: v for k, v in found.items() if not only or k in only}
    from SALib.analyze import morris as analyze
    from SALib.sample import morris as sample

    problem = {"num_vars": len(chosen), "names": list(chosen), "bounds": [[lo, hi] for lo, hi, _ in chosen.values()]}
    X = sample.sample(problem, trajectories, num_levels=4, seed=seed)
    futures = [[client.submit(run_point, dict(zip(chosen, map(float, x))), s, scale, calibration, pure=False)
                for s in range(1, seeds + 1)] for x in X]
    results = []
    for point in futures:
        runs = client.gather(point)
        results.append({o: float(np.mean([r[o] for r in runs])) for o in OUTPUTS})
        if progress:
            progress(1)
    rows = []
    for output in OUTPUTS:
        Y = np.array([r[output] for r in results])
        Si = analyze.analyze(problem, X, Y, num_levels=4, seed=seed)
        for i, (name, (lo, hi, kind)) in enumerate(chosen.items()):
            rows.append({"output": output, "parameter": name, "kind": kind, "lo": lo, "hi": hi, "mu_star": Si["mu_star"][i],
                         "mu": Si["mu"][i], "sigma": Si["sigma"][i], "mu_star_rel": Si["mu_star"][i] / max(abs(Y.mean()), 1e-12),
                         "seeds": seeds, "scale": scale})
    table = pd.DataFrame(rows).sort_values(["output", "mu_star"], ascending=[True, False])
    table["rank"] = table.groupby("output").cumcount() + 1
    return table


def chart(table: pd.DataFrame, path: Path) -> None:
    """Horizontal bars of relative mu* per output, largest on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outputs = list(dict.fromkeys(table["output"]))
    height = 1.2 + 0.16 * table.groupby("output").size().max()
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.2 * len(outputs), height))
    for ax, output in zip(np.atleast_1d(axes), outputs):
        part = table[table["output"] == output].sort_values("mu_star_rel")
        ax.barh(part["parameter"], part["mu_star_rel"])
        ax.set_title(f"2027 {output}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("Morris mu* / mean")
    fig.tight_layout()
    save_png(fig, path, dpi=110)
    plt.close(fig)


DOCS = Path(__file__).resolve().parents[2] / "docs"


def main(argv: list[str] | None = None) -> int:
    """``python -m twin.studies.sensitivity``: run the screening on Dask; write sensitivity.csv and
    sensitivity.png (default into docs/); print the ranking."""
    parser = argparse.ArgumentParser(prog="python -m twin.studies.sensitivity", description=main.__doc__)
    parser.add_argument("--trajectories", type=int, default=4, help="Morris trajectories r: r x (k+1) design points (default 4)")
    parser.add_argument("--seeds", type=int, default=2, help="common seeds per design point, each three runs (default 2)")
    parser.add_argument("--only", default="", help="comma-separated parameters to screen (default: every factor found)")
    parser.add_argument("--scale", type=float, default=1.0, help="population scale (default 1, as the calibration; anchors on)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    parser.add_argument("--calibration", type=Path, default=SHIPPED_CALIBRATION, help="calibration file: the fit and posterior spans screened (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for sensitivity.csv and .png (default docs/)")
    args = parser.parse_args(argv)
    if args.trajectories < 2:
        print("error: --trajectories: Morris needs at least 2", file=sys.stderr)
        return 2
    try:  # before the runs, not after: a bad folder or calibration must not cost the whole screening
        found = factors(args.calibration)
        only = tuple(filter(None, args.only.split(",")))
        unknown = sorted(set(only) - set(found))
        if unknown:
            raise InputError("arguments", "--only", f"{', '.join(unknown)} are not screened parameters ({', '.join(found)})")
        points = args.trajectories * (len(only or found) + 1)
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: {args.out}: cannot write there ({exc.strerror})", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from .cluster import dask_client

    print(f"{points} design points x {args.seeds} seeds x 3 runs (baseline, {EFFECT}, {NO_POLICY})", file=sys.stderr)
    with dask_client(args.workers, None) as client, tqdm(total=points, desc="morris", unit="point", file=sys.stderr) as bar:
        table = morris(client, args.trajectories, args.scale, progress=bar.update, calibration=args.calibration,
                       seeds=args.seeds, only=only)
    write_csv(table.round(6), args.out / "sensitivity.csv")
    chart(table, args.out / "sensitivity.png")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
