"""Resources a scenario implies, judged before any work: memory at the peak year, fund tickets, workers.

A scenario whose values are each in range can still ask for more than the
machine has (a long run that outgrows memory, a fund split into tiny tickets
that would draw millions of random choices a month, more ensemble workers than
cores). These checks refuse such runs with a one-line :class:`layers.InputError`
before the population is synthesized. The command line calls them for each
scenario before any work, and ``VisionValleyModel`` for its own arguments: the
one place where memory is judged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from layers import InputError

from ..engine.params import BYTES_PER_AGENT, MONTH, Params
from .levers import VisionFund
from .scenario import Scenario

MIN_FIRMS = 10
"""Fewer synthesized firms than this leave nothing to simulate (an empty firm table)."""

MAX_TICKETS_PER_MONTH = 100_000
"""ASSUMPTION: more fund tickets a month than this is a unit mistake (the seed fund makes about 12 a month at full scale)."""


def physical_memory() -> int:
    """Bytes of RAM on this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_resources(spec: Scenario, params: Params | None = None, levers: Iterable[object] | None = None, *,
                    workers: int | None = None, cores: int | None = None, memory_bytes: int | None = None) -> None:
    """Refuse a scenario (and ensemble workers) that the machine cannot run; see the module docstring.

    ``params`` and ``levers`` are the run's when they differ from the scenario's own (the Python API's arguments).
    """
    memory = memory_bytes or physical_memory()
    where = spec.source or "scenario"
    params = spec.parameters() if params is None else params
    years = spec.years.end - spec.years.start
    try:
        params.check_memory(memory, years=years)
    except InputError as exc:
        raise InputError(where, f"params.{exc.where}", exc.what) from None
    firms = params.scale * params.firms_full
    if firms < MIN_FIRMS:
        raise InputError(where, "params.scale", f"scale {params.scale:g} x firms_full {params.firms_full:,} leaves about "
                                                f"{firms:.1f} firms; a run needs at least {MIN_FIRMS}")
    for i, lever in enumerate(spec.levers if levers is None else levers):
        if isinstance(lever, VisionFund):
            _check_tickets(lever, spec, params.scale, where, f"levers.{i}.ticket_cny")
    if workers is not None:
        _check_workers(params, workers, cores or os.cpu_count() or 1, memory, years)


def _check_tickets(fund: VisionFund, spec: Scenario, scale: float, where: str, key: str) -> None:
    """The fund's busiest month, by its own schedule (:meth:`VisionFund.tranche`, which the lever pays by), within the cap."""
    first = spec.years.start + 1
    busiest = max(fund.tranche(year, first) for year in range(first, spec.years.end + 1)) if spec.years.end >= first else 0.0
    per_month = busiest * scale / fund.ticket_cny * MONTH
    if per_month > MAX_TICKETS_PER_MONTH:
        raise InputError(where, key, f"{fund.ticket_cny:g} CNY tickets from {fund.total_cny:g} CNY make about {per_month:,.0f} "
                                     f"tickets a month in the fund's busiest year (at most {MAX_TICKETS_PER_MONTH:,}); use larger tickets")


def _check_workers(params: Params, workers: int, cores: int, memory: int, years: int) -> None:
    """Ensemble worker processes: no more than the cores, and all their members must fit in memory at once."""
    if workers > cores:
        raise InputError("arguments", "--workers", f"{workers} is more than this machine's {cores} cores")
    need = workers * params.peak_agents(years) * BYTES_PER_AGENT
    if need > 0.8 * memory:
        raise InputError("arguments", "--workers", f"{workers} workers need about {need / 2**30:,.1f} GiB at the peak; "
                                                   f"this machine has {memory / 2**30:,.1f} GiB")
