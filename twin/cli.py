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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from layers import InputError, escape

from .engine.values import seed_problem
from .outputs import progress
from .outputs.folder import check_target
from .outputs.summary import report, run_details, run_summary
from .outputs.writer import run_and_write
from .policy import scenario as scenarios
from .policy.resources import check_resources, physical_memory
from .simulation.run import RunResult

if TYPE_CHECKING:
    from .studies.seeds import MemberSpec


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line and exit 2 like every other bad input."""

    def error(self, message: str) -> NoReturn:
        print(f"error: arguments: command line: {escape(message)} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _out_path(text: str) -> Path:
    """--out as a Path; an empty one is refused here, because Path('') silently means the working folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("--out is empty; give a folder name")
    path = Path(os.path.abspath(text))
    name_max, path_max = next(limits for limits in map(_name_and_path_max, path.parents) if limits)
    size, longest = len(os.fsencode(path)), max(len(os.fsencode(part)) for part in path.parts)
    if size + OUT_ROOM > path_max:
        raise argparse.ArgumentTypeError(f"is {size} bytes long as an absolute path; this file system takes "
                                         f"{path_max}, {OUT_ROOM} of them for the files written inside")
    if max(longest, len(os.fsencode(path.name)) + OUT_ROOM // 8) > name_max:
        raise argparse.ArgumentTypeError(f"has a name of {longest} bytes; this file system takes {name_max}, "
                                         f"{OUT_ROOM // 8} of them for the temporary folder's suffix")
    return Path(text)


OUT_ROOM = 128
"""Bytes of a path kept for what the tool writes inside --out (``.NAME.tmp-PID``, ``members/...``, sweep file names)."""


def _name_and_path_max(folder: Path) -> tuple[int, int] | None:
    """The file system's NAME_MAX and PATH_MAX at ``folder``, or None when it does not exist (yet)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
    except OSError:
        return None


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
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the terminal summary (zh: 亿元; en: CNY bn) and of map.html (default zh; map.html#lang=en also works)")
    parser.add_argument("--firm-years", type=int, nargs="+", metavar="YEAR", help="years kept in firms.parquet (default: the last)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument("--verbose", action="store_true", help="the summary also says where the parameters come from (provenance)")
    parser.add_argument("--schema", action="store_true", help="print the scenario JSON Schema and exit")
    parser.add_argument("--from-manifest", type=Path, metavar="MANIFEST", help="rerun the single run an earlier manifest.json records, "
                                                                              "byte for byte, after checking its inputs are unchanged (default --out: out/<name>_rerun)")
    studio = parser.add_argument_group("studio (a local what-if page; README: The studio)")
    studio.add_argument("--studio", action="store_true", help="serve the what-if studio for SCENARIO and print its URL")
    studio.add_argument("--port", type=int, default=8765, help="--studio: port (default 8765; 0 picks a free one)")
    studio.add_argument("--host", default="127.0.0.1", help="--studio: address (default 127.0.0.1; any other needs the printed token)")
    studio.add_argument("--no-browser", action="store_true", help="--studio: do not open a browser")
    group = parser.add_argument_group("ensembles (Dask)")
    group.add_argument("--ensemble", type=int, metavar="N", help="run N members with independent seeds")
    group.add_argument("--workers", type=int, default=2, help="local Dask worker processes (default 2)")
    group.add_argument("--scheduler", metavar="tcp|tls://HOST:PORT", help="use an existing Dask scheduler; it can run code in this process, so only one you trust (README: TLS)")
    group.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...", help="sweep a parameter (repeatable)")
    group.add_argument("--resume", action="store_true", help="skip ensemble members already finished")
    study = parser.add_argument_group("attribution and goal seeking (Dask; --ensemble N sets the paired members)")
    study.add_argument("--attribute", action="store_true", help="Shapley attribution of the effect to each lever (out/<name>_attribution)")
    study.add_argument("--seek", action="store_true", help="cheapest lever settings reaching the 2027 targets (out/<name>_seek)")
    study.add_argument("--trials", type=int, help="--seek: lever settings to try (default: the scenario's seek.trials)")
    study.add_argument("--probability", type=float, help="--seek: required P(all three 2027 targets) (default: seek.probability)")
    group.add_argument("--no-posterior", action="store_true",
                       help="members (--ensemble, --compare --ensemble, --attribute, --seek) use the fitted point values, "
                            "not draws from the calibration's posterior sample")
    group.add_argument("--freeze-responses", action="store_true",
                       help="members hold the lever responses at their central values, not draws within their evidence ranges "
                            "(docs/levers.md), so seed and parameter uncertainty can be told from the responses'")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = _parser().parse_args(argv)
    if args.schema:
        print(json.dumps(scenarios.json_schema(), ensure_ascii=False, indent=2))
        return 0
    try:
        with progress.reporting(quiet=args.quiet):
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
    except OSError as exc:
        from .studies.cluster import DISK_ERRNOS

        if exc.errno not in DISK_ERRNOS:
            raise
        print(f"error: {exc.filename or args.out or 'the output folder'}: {exc.strerror}; free some space and run again",
              file=sys.stderr)
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
    if args.studio:
        from .studio import serve

        if args.from_manifest or args.compare or args.ensemble or args.attribute or args.seek or args.out or args.png or args.frames:
            raise InputError("arguments", "--studio", "serves the studio alone (SCENARIO, --port, --host, --no-browser only)")
        return serve(None if args.scenario == str(scenarios.BASELINE) else args.scenario, args.host, args.port, not args.no_browser)
    if args.from_manifest:
        return _rerun(args)
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
        run_ensemble(spec, args.ensemble, out, workers=args.workers, scheduler=args.scheduler,
                     sweep=_sweep(args.sweep), resume=args.resume, quiet=args.quiet, seed=args.seed, member=member_spec(args),
                     lang=args.lang)
        return 0
    out = _out(args, spec)
    result = _run_and_write(spec, args.seed, out, firm_years=args.firm_years, png=args.png, lang=args.lang,
                            frames=args.frames)
    report(run_summary(result, args.lang), out, quiet=args.quiet, opens="map.html", details=run_details(result, args.verbose))
    for doubt in result.layers.warnings:
        print(f"warning: {doubt}", file=sys.stderr)
    return 0


def _rerun(args: argparse.Namespace) -> int:
    """--from-manifest: the recorded scenario, seed and writing options; only --out and --quiet may be given."""
    from .outputs.rerun import read_rerun

    given = [flag for flag, value in (("SCENARIO", args.scenario != str(scenarios.BASELINE)), ("--seed", args.seed is not None),
                                      ("--compare", args.compare), ("--png", args.png), ("--lang", args.lang != "zh"),
                                      ("--firm-years", args.firm_years), ("--ensemble", args.ensemble), ("--attribute", args.attribute),
                                      ("--seek", args.seek), ("--sweep", args.sweep), ("--no-posterior", args.no_posterior),
                                      ("--freeze-responses", args.freeze_responses),
                                      ("--resume", args.resume), ("--scheduler", args.scheduler), ("--trials", args.trials is not None),
                                      ("--probability", args.probability is not None)) if value]
    if given:
        raise InputError("arguments", "--from-manifest", f"reruns the recorded run as it was; {given[0]} does not go with it")
    run = read_rerun(args.from_manifest)
    check_resources(run.spec)
    out = check_target(args.out if args.out is not None else Path("out") / f"{run.spec.name}_rerun")
    _run_and_write(run.spec, run.seed, out, firm_years=run.firm_years, png=run.png, lang=run.lang, frames=run.frames)
    if not args.quiet:
        print(f"reran {args.from_manifest}: wrote {out}/")
    return 0


def _run_and_write(spec: scenarios.Scenario, seed: int | None, out: Path, *, firm_years: list[int] | None, png: bool,
                   lang: str, frames: bool) -> RunResult:
    """Simulate one run and write its folder whole (:func:`run_and_write`), with its progress: the run path of a plain run and of --from-manifest."""
    with progress.months(spec.name, spec.years.start, spec.years.end) as tick:
        return run_and_write(spec, seed, out, firm_years=firm_years, png=png, lang=lang, frames=frames, on_month=tick)


def _compare(args: argparse.Namespace, spec: scenarios.Scenario, other: scenarios.Scenario) -> int:
    """``--compare``: both scenarios on the same seed(s), one Dask task per pair with ``--ensemble N``."""
    from .studies.compare import compare
    from .studies.compare import summary as compare_summary

    out = _out(args, spec, other)
    result = compare(spec, other, out, seed=spec.seed if args.seed is None else args.seed, members=args.ensemble,
                     workers=args.workers, scheduler=args.scheduler, firm_years=args.firm_years, png=args.png, lang=args.lang,
                     member=member_spec(args))
    text = compare_summary(result, args.lang)
    if args.ensemble:
        text += f"\n  intervals count {member_spec(args).uncertainty(spec)}"
    report(text, out, quiet=args.quiet, opens="map.html")
    return 0


def default_out(spec: scenarios.Scenario, other: scenarios.Scenario | None = None, *, ensemble: bool = False,
                sweep: Sequence[str] = ()) -> Path:
    """The output folder when --out is not given: one per kind of job, so that a sweep never replaces
    an ensemble (or a plain run) of the same scenario, nor an ensemble comparison a one-seed comparison of the
    same pair: out/<name>, out/<a>_vs_<b>, out/<a>_vs_<b>_ensemble, out/<name>_ensemble,
    out/<name>_sweep_<swept parameters>."""
    if sweep:
        return Path("out") / f"{spec.name}_sweep_{'_'.join(item.partition('=')[0].strip() for item in sweep)}"
    if other is not None:
        return Path("out") / f"{spec.name}_vs_{other.name}{'_ensemble' if ensemble else ''}"
    return Path("out") / (f"{spec.name}_ensemble" if ensemble else spec.name)


def _check_args(args: argparse.Namespace, spec: scenarios.Scenario, other: scenarios.Scenario | None = None) -> None:
    """Argument values that the parser cannot judge alone."""
    if args.seed is not None and seed_problem(args.seed):
        raise InputError("arguments", "--seed", seed_problem(args.seed))
    if args.ensemble is not None and not 1 <= args.ensemble <= 100_000:
        raise InputError("arguments", "--ensemble", f"must be between 1 and 100000, got {args.ensemble}")
    if args.workers < 1:
        raise InputError("arguments", "--workers", f"must be at least 1, got {args.workers}")
    if args.scheduler is not None:
        from .studies.scheduler import scheduler_address

        args.scheduler = scheduler_address(args.scheduler)
    for year in args.firm_years or ():
        if not spec.years.start <= year <= spec.years.end:
            raise InputError("arguments", "--firm-years", f"{year} is outside the scenario's years {spec.years.start}-{spec.years.end}")
    if args.no_browser or args.host != "127.0.0.1" or args.port != 8765:
        raise InputError("arguments", "--port/--host/--no-browser", "go with --studio")
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
    for flag, given, single in (("--no-posterior", args.no_posterior, "the point fit"),
                                ("--freeze-responses", args.freeze_responses, "the central lever responses")):
        if given and not _has_members(args):
            raise InputError("arguments", flag, "goes with a study of members (--ensemble N, --compare with "
                                                f"--ensemble N, --attribute or --seek); a single run uses {single}")


def _has_members(args: argparse.Namespace) -> bool:
    """Whether the chosen study runs members that draw (a single run or a one-seed comparison does not)."""
    return bool(args.ensemble or args.attribute or args.seek)


def member_spec(args: argparse.Namespace) -> MemberSpec:
    """The one member specification every study of members uses (twin.studies.seeds.MemberSpec)."""
    from .studies.seeds import MemberSpec

    members = _has_members(args)
    return MemberSpec(posterior=members and not args.no_posterior, responses=members and not args.freeze_responses)


def _grid_of(spec: scenarios.Scenario) -> tuple:
    """What fixes a run's grid: the cell size and the districts file."""
    return spec.grid.cell_m, spec.layer_arguments().get("districts")


def _out(args: argparse.Namespace, spec: scenarios.Scenario, other: scenarios.Scenario | None = None) -> Path:
    """The output folder: --out, or the job's default (checked by :func:`check_target` before any work)."""
    return args.out if args.out is not None else default_out(spec, other, ensemble=other is not None and bool(args.ensemble))


def _study(args: argparse.Namespace, spec: scenarios.Scenario) -> int:
    """--attribute or --seek: delegated to twin.studies (defaults: 2 paired members)."""
    members = args.ensemble or 2
    options = {"workers": args.workers, "scheduler": args.scheduler, "resume": args.resume, "quiet": args.quiet, "seed": args.seed,
               "member": member_spec(args), "lang": args.lang}
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
