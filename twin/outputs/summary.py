"""The terminal summaries' shared parts: money in 亿元, figures against the 2027 targets, spend, notes, closing lines.

Every study (a run, a comparison, an ensemble, an attribution, a search)
keeps its own account in its module and builds it from these parts, so a
figure reads the same whichever study prints it, and every study ends the
same way: its account, its time when it reports one, then ``wrote <folder>/``.
"""

from __future__ import annotations

from pathlib import Path

from ..engine.targets import TARGETS_2027
from ..simulation.run import RunResult
from .manifest import target_status
from .provenance import provenance_lines

YI = 1e8
"""CNY in one 亿元 (100 million yuan), the unit every summary reports money in."""


def yi(cny: float, digits: int = 2, *, sign: bool = False) -> str:
    """``cny`` in 亿元 with thousands separators and ``digits`` decimals (a leading sign with ``sign``)."""
    return format(cny / YI, f"{'+' if sign else ''},.{digits}f")


def figure(metric: str, value: float) -> str:
    """A target metric's figure as planners say it: money in whole 亿元, counts whole."""
    return f"{yi(value, 0)} 亿元" if metric.endswith("_cny") else f"{value:.0f}"


def note(text: str) -> str:
    """An indented note under a study's account."""
    return f"  note: {text}"


def scale_note(scale: float, what: str) -> list[str]:
    """The note that a scaled-down city reports ``what`` for that share of its firms and talent (none at full scale)."""
    return [note(f"params.scale = {scale:g}: {what} for that share of the city's firms and talent")] if scale != 1 else []


def report(text: str, out: Path, *, quiet: bool, timing: str | None = None) -> None:
    """Print a study's account, its time (when given) and the folder it wrote; nothing with ``--quiet``."""
    if quiet:
        return
    print(text)
    if timing:
        print(f"time: {timing}")
    print(f"wrote {out}/")


def run_summary(result: RunResult) -> str:
    """A single run against the 2027 targets, what its levers spent, and where its parameters come from."""
    status = target_status(result)
    year = next(iter(status.values()))["year"]
    lines = [f"{result.scenario.name} (seed {result.seed}), {year} against the 2027 targets:"]
    for metric, (target, label) in TARGETS_2027.items():
        s = status[metric]
        goal = figure(metric, target) if metric.endswith("_cny") else f"{target}"
        lines.append(f"  {label:<38} {figure(metric, s['value']):>12} of {goal:<12} "
                     f"{'met' if s['met'] else 'not met'} ({s['value'] / target:.0%})")
    spend = result.metrics.query("level == 'lever' and metric == 'spend_cny'").groupby("lever", sort=False)["value"].sum()
    lines.append(f"  levers spent {yi(spend.sum())} 亿元 in all (at the run's scale {result.scenario.params.get('scale', 1.0)}): "
                 + ", ".join(f"{lever} {yi(cny)}" for lever, cny in spend.items()))
    lines += provenance_lines(result.scenario.params, result.scenario.calibration_file())
    return "\n".join(lines)
