"""The terminal summaries' shared parts: money in the reader's unit, figures against the 2027 targets, notes, closing lines.

Every study (a run, a comparison, an ensemble, an attribution, a search)
keeps its own account in its module and builds it from these parts, so a
figure reads the same whichever study prints it, and every study ends the
same way: its answer first, its time when it reports one, then the folder it
wrote and the one file to open. Money is in 亿元 (10^8 yuan, as the plan states
its targets) for ``--lang zh`` and in CNY bn (10^9 yuan = 10 亿元) for
``--lang en``; where the parameters come from (provenance) is shown with
``--verbose`` only, since it names parameters rather than answering.
"""

from __future__ import annotations

from pathlib import Path

from ..engine.targets import LEADER_100BN_CNY, TARGETS_2027
from ..simulation.run import RunResult
from .manifest import target_status
from .provenance import provenance_lines

YI = 1e8
"""CNY in one 亿元 (100 million yuan), the unit of the Chinese summaries (the English ones use CNY bn, :func:`money`)."""


def yi(cny: float, digits: int = 2, *, sign: bool = False) -> str:
    """``cny`` in 亿元 with thousands separators and ``digits`` decimals (a leading sign with ``sign``)."""
    return format(cny / YI, f"{'+' if sign else ''},.{digits}f")


def money(cny: float, lang: str = "zh", *, digits: int = 1, sign: bool = False) -> str:
    """``cny`` in the summary's unit: ``digits`` decimals of 亿元 in Chinese, one more of CNY bn in English (1 bn = 10 亿元)."""
    if lang == "en":
        return f"CNY {format(cny / 1e9, ('+' if sign else '') + f',.{digits + 1}f')} bn"
    return f"{yi(cny, digits, sign=sign)} 亿元"


TARGET_LABELS_EN = {
    "total_scale_cny": "total scale (core x multiplier), target CNY 1 trillion",
    "revenue_cny": "core revenue, target CNY 400 bn",
    "leaders_100bn": f"firms over CNY {LEADER_100BN_CNY / 1e9:.0f} bn (千亿), target 2",
}
"""The 2027 targets' labels in English (the Chinese summary keeps the plan's own wording, TARGETS_2027)."""


def target_label(metric: str, lang: str = "zh") -> str:
    """A 2027 target's label in ``lang``."""
    return TARGET_LABELS_EN[metric] if lang == "en" else TARGETS_2027[metric][1]


def figure(metric: str, value: float, lang: str = "zh") -> str:
    """A target metric's figure as planners say it: money in whole 亿元 (tenths of CNY bn in English), counts whole."""
    return money(value, lang, digits=0) if metric.endswith("_cny") else f"{value:.0f}"


def note(text: str) -> str:
    """An indented note under a study's account."""
    return f"  note: {text}"


def scale_note(scale: float, what: str) -> list[str]:
    """The note that a scaled-down city reports ``what`` for that share of its firms and talent (none at full scale)."""
    return [note(f"params.scale = {scale:g}: {what} for that share of the city's firms and talent")] if scale != 1 else []


def estimate_note(scale: float) -> str:
    """What a run below params.scale 1 is judged by: full-city estimates (:func:`~twin.engine.targets.full_scale`)."""
    return (f"this run simulates {scale:.1%} of the city's other firms with the anchors at their real size "
            f"(params.scale = {scale:g}); each target figure is a full-city estimate: anchors + other firms / {scale:g} "
            "(with params.anchors = 0 it leaves the anchors out, so the targets are out of reach)")


def report(text: str, out: Path, *, quiet: bool, opens: str, timing: str | None = None, details: list[str] = ()) -> None:
    """Print a study's account, its ``details`` (provenance with --verbose), its time (when given), the folder
    it wrote and, last, the file to open; nothing with ``--quiet``."""
    if quiet:
        return
    print(text)
    for line in details:
        print(line)
    if timing:
        print(f"time: {timing}")
    print(f"wrote {out}/")
    print(f"open {out / opens}")


def run_summary(result: RunResult, lang: str = "zh") -> str:
    """A single run against the 2027 targets (below params.scale 1 as full-city estimates, :func:`estimate_note`),
    what its levers spent, and what one run cannot show (how wide the result is)."""
    status = target_status(result)
    year = next(iter(status.values()))["year"]
    scale = result.params.scale
    lines = [f"{result.scenario.name} (seed {result.seed}), {year} against the 2027 targets:"]
    if scale < 1:
        lines.append(f"  {estimate_note(scale)}")
    width = max(len(target_label(metric, lang)) for metric in TARGETS_2027)
    for metric in TARGETS_2027:
        value, goal = status[metric]["value"], status[metric]["target"]
        shown = ("estimate " if scale < 1 else "") + figure(metric, value, lang)
        lines.append(f"  {target_label(metric, lang):<{width}} {shown:>23} of {figure(metric, goal, lang):<14} "
                     f"{'met' if value >= goal else 'not met'} ({value / goal:.0%})")
    spend = result.metrics.query("level == 'lever' and metric == 'spend_cny'").groupby("lever", sort=False)["value"].sum()
    lines.append(f"  levers spent {money(spend.sum(), lang, digits=2)} in all (at the run's scale {scale:g}): "
                 + ", ".join(f"{lever} {money(cny, lang, digits=2)}" for lever, cny in spend.items()))
    lines.append("  uncertainty: one seed on the calibration's point fit; a single run does not show how wide the result "
                 "would be under seed or parameter uncertainty (--ensemble N shows both)")
    return "\n".join(lines)


def run_details(result: RunResult, verbose: bool) -> list[str]:
    """What ``--verbose`` adds after a run's answer: where its parameters come from."""
    return provenance_lines(result.scenario.params, result.scenario.calibration_file()) if verbose else []
