"""The command line: ``python run_scenario.py [SCENARIO] [--out DIR] [--seed N] ...``.

Exit status: 0 when done; 2 for bad input, with one line
``error: <file>: <where>: <what is wrong>`` on stderr and no output folder
left behind; 1 for anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import layers
from layers import InputError

from .engine.targets import TARGETS_2027
from .outputs.folder import atomic_folder, check_target
from .outputs.manifest import target_status
from .outputs.provenance import provenance_lines
from .outputs.writer import write_run
from .policy import scenario as scenarios
from .policy.bounds import check_resources, physical_memory
from .simulation.run import RunResult, simulate


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line and exit 2 like every other bad input."""

    def error(self, message: str) -> NoReturn:
        print(f"error: arguments: command line: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _out_path(text: str) -> Path:
    """--out as a Path; an empty one is refused here, because Path('') silently means the working folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("--out is empty; give a folder name")
    return Path(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="run_scenario.py",
        description="Run a 中国视谷 scenario and write its map, metrics, firms, density raster and manifest.",
    )
    parser.add_argument("scenario", nargs="?", default=str(scenarios.BASELINE), help="scenario YAML file, or a name looked up in ./scenarios then the shipped scenarios (default: baseline)")
    parser.add_argument("--out", type=_out_path, help="output folder: new, empty or an earlier output (default: out/<name>, out/<a>_vs_<b>, out/<name>_ensemble or out/<name>_sweep_<parameters>)")
    parser.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    parser.add_argument("--compare", metavar="OTHER.yaml", help="also run OTHER and write the differences and a comparison map")
    parser.add_argument("--png", action="store_true", help="also write map_zh.png and map_en.png of the final year (headless Chromium)")
    parser.add_argument("--frames", action="store_true", help="also write one PNG slide per year (frames/) and an animated GIF (map_<lang>.gif) in --lang (headless Chromium)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="language map.html opens in (default zh; map.html#lang=en also works)")
    parser.add_argument("--firm-years", type=int, nargs="+", metavar="YEAR", help="years kept in firms.parquet (default: the last)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument("--schema", action="store_true", help="print the scenario JSON Schema and exit")
    group = parser.add_argument_group("ensembles (Dask)")
    group.add_argument("--ensemble", type=int, metavar="N", help="run N members with independent seeds")
    group.add_argument("--workers", type=int, default=2, help="local Dask worker processes (default 2)")
    group.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use an existing Dask scheduler")
    group.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...", help="sweep a parameter (repeatable)")
    group.add_argument("--resume", action="store_true", help="skip ensemble members already finished")
    study = parser.add_argument_group("attribution and goal seeking (Dask; --ensemble N sets the paired members)")
    study.add_argument("--attribute", action="store_true", help="Shapley attribution of the effect to each lever (out/<name>_attribution)")
    study.add_argument("--seek", action="store_true", help="cheapest lever settings reaching the 2027 targets (out/<name>_seek)")
    study.add_argument("--trials", type=int, help="--seek: lever settings to try (default: the scenario's seek.trials)")
    study.add_argument("--probability", type=float, help="--seek: required P(all three 2027 targets) (default: seek.probability)")
    group.add_argument("--no-posterior", action="store_true",
                       help="members use the fitted point values, not draws from the calibration's posterior sample")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = _parser().parse_args(argv)
    if args.schema:
        print(json.dumps(scenarios.json_schema(), ensure_ascii=False, indent=2))
        return 0
    try:
        return _run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemError) as exc:
        if not _interrupted(exc):
            raise
        kept = "; finished ensemble members are kept: rerun with --resume" if args.ensemble or args.attribute or args.seek else ""
        print(f"error: interrupted; no output was written{kept}", file=sys.stderr)
        return 1


def _interrupted(exc: BaseException | None) -> bool:
    """True for Ctrl-C, also when it landed inside a compiled kernel: numba then reports a SystemError caused by it."""
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _run(args: argparse.Namespace) -> int:
    """Load, check, simulate and write, in that order, so bad input fails before any work."""
    spec = scenarios.load(args.scenario)
    other = scenarios.load(args.compare) if args.compare else None
    _check_args(args, spec, other)
    if args.attribute or args.seek:
        return _study(args, spec)
    if other is not None:
        return _compare(args, spec, other)
    if args.ensemble:
        from .studies.ensemble import run_ensemble

        out = check_target(args.out if args.out is not None else default_out(spec, ensemble=True, sweep=args.sweep),
                           allow=("members/fingerprint.json",))
        if args.no_posterior:
            spec = spec.model_copy(update={"params": {**spec.params, "posterior": 0}})
        run_ensemble(spec, args.ensemble, out, workers=args.workers, scheduler=args.scheduler,
                     sweep=_sweep(args.sweep), resume=args.resume, quiet=args.quiet, seed=args.seed)
        return 0
    stack = layers.load(**spec.layer_arguments())
    result = _simulate(spec, args.seed, stack, args.firm_years, args.quiet)
    out = _out(args, spec)
    with atomic_folder(out) as folder:
        write_run(result, folder, png=args.png, lang=args.lang)
        if args.frames:
            from .outputs.frames import write_frames

            write_frames(folder / "map.html", folder, args.lang)
    if not args.quiet:
        print(summary(result))
        print(f"wrote {out}/")
    for doubt in result.layers.warnings:
        print(f"warning: {doubt}", file=sys.stderr)
    return 0


def _compare(args: argparse.Namespace, spec: scenarios.Scenario, other: scenarios.Scenario) -> int:
    """``--compare``: both scenarios on the same seed(s), one Dask task per pair with ``--ensemble N``."""
    from .studies.compare import compare
    from .studies.compare import summary as compare_summary

    out = _out(args, spec, other)
    result = compare(spec, other, out, seed=spec.seed if args.seed is None else args.seed, members=args.ensemble,
                     workers=args.workers, scheduler=args.scheduler, firm_years=args.firm_years, png=args.png, lang=args.lang)
    if not args.quiet:
        print(compare_summary(result))
        print(f"wrote {out}/")
    return 0


def default_out(spec: scenarios.Scenario, other: scenarios.Scenario | None = None, *, ensemble: bool = False,
                sweep: Sequence[str] = ()) -> Path:
    """The output folder when --out is not given: one per kind of job, so that a sweep never replaces
    an ensemble (or a plain run) of the same scenario: out/<name>, out/<a>_vs_<b>, out/<name>_ensemble,
    out/<name>_sweep_<swept parameters>."""
    if sweep:
        return Path("out") / f"{spec.name}_sweep_{'_'.join(item.partition('=')[0].strip() for item in sweep)}"
    if ensemble:
        return Path("out") / f"{spec.name}_ensemble"
    return Path("out") / (spec.name if other is None else f"{spec.name}_vs_{other.name}")


def _check_args(args: argparse.Namespace, spec: scenarios.Scenario, other: scenarios.Scenario | None = None) -> None:
    """Argument values that the parser cannot judge alone."""
    if args.seed is not None and args.seed < 0:
        raise InputError("arguments", "--seed", f"must be 0 or more, got {args.seed}")
    if args.ensemble is not None and not 1 <= args.ensemble <= 100_000:
        raise InputError("arguments", "--ensemble", f"must be between 1 and 100000, got {args.ensemble}")
    if args.workers < 1:
        raise InputError("arguments", "--workers", f"must be at least 1, got {args.workers}")
    for year in args.firm_years or ():
        if not spec.years.start <= year <= spec.years.end:
            raise InputError("arguments", "--firm-years", f"{year} is outside the scenario's years {spec.years.start}-{spec.years.end}")
    if (args.sweep or args.resume or args.scheduler) and not (args.ensemble or args.attribute or args.seek):
        raise InputError("arguments", "--sweep/--resume/--scheduler", "go with --ensemble N")
    if args.frames and (args.compare or args.ensemble or args.attribute or args.seek):
        raise InputError("arguments", "--frames", "goes with a single run (not --compare, --ensemble, --attribute or --seek)")
    if args.png or args.frames:
        from .outputs.maps import png_unavailable

        if missing := png_unavailable():
            raise InputError("arguments", "--png" if args.png else "--frames", missing)
    if args.compare and (args.sweep or args.resume):
        raise InputError("arguments", "--compare", "does not go with --sweep or --resume")
    if args.ensemble or args.attribute or args.seek:
        check_resources(spec, workers=args.workers, cores=os.cpu_count() or 1, memory_bytes=physical_memory())
    else:
        for each in (spec, other) if other is not None else (spec,):
            check_resources(each)
        check_target(_out(args, spec, other))
    if other is not None and _grid_of(other) != _grid_of(spec):
        raise InputError(other.source, "grid", f"--compare needs the same grid and districts as {Path(spec.source).name}; "
                                               f"this file has cell_m {other.grid.cell_m:g}, that one {spec.grid.cell_m:g}")
    if args.attribute and args.seek or (args.attribute or args.seek) and (args.compare or args.sweep):
        raise InputError("arguments", "--attribute/--seek", "run alone (not together, nor with --compare or --sweep)")
    if (args.trials is not None or args.probability is not None) and not args.seek:
        raise InputError("arguments", "--trials/--probability", "go with --seek")


def _grid_of(spec: scenarios.Scenario) -> tuple:
    """What fixes a run's grid: the cell size and the districts file."""
    return spec.grid.cell_m, spec.layer_arguments().get("districts")


def _out(args: argparse.Namespace, spec: scenarios.Scenario, other: scenarios.Scenario | None = None) -> Path:
    """The output folder: --out, or the job's default (checked by :func:`check_target` before any work)."""
    return args.out if args.out is not None else default_out(spec, other)


def _study(args: argparse.Namespace, spec: scenarios.Scenario) -> int:
    """--attribute or --seek: delegated to twin.studies (defaults: 2 paired members)."""
    members = args.ensemble or 2
    options = {"workers": args.workers, "scheduler": args.scheduler, "resume": args.resume, "quiet": args.quiet, "seed": args.seed}
    kind = "attribution" if args.attribute else "seek"
    resumable = "members/fingerprint.json" if args.attribute else "members/batch0000/fingerprint.json"  # an interrupted run's own members
    out = check_target(args.out if args.out is not None else Path("out") / f"{spec.name}_{kind}", allow=(resumable,))
    if args.attribute:
        from .studies.attribution import attribute

        attribute(spec, members, out, **options)
    else:
        from .studies.seek import seek

        seek(spec, members, out, trials=args.trials, probability=args.probability, **options)
    return 0


def _sweep(items: list[str]) -> dict[str, list[float]]:
    """Parse repeated NAME=V1,V2,... into {name: [values]}."""
    sweep: dict[str, list[float]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        try:
            parsed = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            parsed = []
        if not sep or not name or not parsed:
            raise InputError("arguments", "--sweep", f"expected NAME=V1,V2,... with numbers, got {item!r}")
        sweep[name.strip()] = [int(v) if v.is_integer() and "." not in values else v for v in parsed]
    return sweep


def _simulate(spec: scenarios.Scenario, seed: int | None, stack: layers.LayerStack, firm_years, quiet: bool) -> RunResult:
    """Run with a progress bar on a terminal."""
    with _progress(spec, quiet) as tick:
        return simulate(spec, seed, stack=stack, firm_years=firm_years, progress=tick)


class _progress:
    """A tqdm bar over the months, shown only on a terminal and without --quiet."""

    def __init__(self, spec: scenarios.Scenario, quiet: bool) -> None:
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=(spec.years.end - spec.years.start) * 12, desc=spec.name, unit="month", file=sys.stderr)

    def __enter__(self) -> Callable[[int, int], None] | None:
        if self.bar is None:
            return None
        return lambda done, total: self.bar.update(done - self.bar.n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def summary(result: RunResult) -> str:
    """A short account of the run against the 2027 targets, and what its levers spent."""
    run, lines = result, []
    status = target_status(run)
    year = next(iter(status.values()))["year"]
    lines.append(f"{run.scenario.name} (seed {run.seed}), {year} against the 2027 targets:")
    for metric, (target, label) in TARGETS_2027.items():
        s = status[metric]
        value = f"{s['value'] / 1e8:,.0f} 亿元" if metric.endswith("_cny") else f"{s['value']:.0f}"
        goal = f"{target / 1e8:,.0f} 亿元" if metric.endswith("_cny") else f"{target}"
        lines.append(f"  {label:<38} {value:>12} of {goal:<12} {'met' if s['met'] else 'not met'} ({s['value'] / target:.0%})")
    spend = result.metrics.query("level == 'lever' and metric == 'spend_cny'").groupby("lever", sort=False)["value"].sum()
    lines.append(f"  levers spent {spend.sum() / 1e8:,.2f} 亿元 in all (at the run's scale {result.scenario.params.get('scale', 1.0)}): "
                 + ", ".join(f"{lever} {cny / 1e8:,.2f}" for lever, cny in spend.items()))
    lines += provenance_lines(result.scenario.params)
    return "\n".join(lines)
