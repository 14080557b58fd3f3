"""Variants of a scenario (lever subsets, lever settings) x seeded members on Dask, with resume.

Attribution runs every subset of a scenario's levers and goal seeking runs one
variant a trial; both are "points" of an ensemble: every variant runs the same
member seeds (paired runs), each (variant, member) is one member file
(:mod:`twin.studies.members`) under ``members/``, and ``--resume`` keeps the
valid ones. Nothing here depends on finishing order: values are kept in
(variant, member) slots.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import layers

from ..engine.metrics import KEYS
from ..policy.scenario import Scenario
from ..outputs.progress import Members
from .cluster import dask_client, run_members
from .members import MEMBERS, Member, member_file, read_member
from .resume import OutputLock, check_resume, make_fingerprint, prepare_members
from .seeds import MemberSpec, member_seeds


def subset_spec(spec: Scenario, levers: tuple[int, ...]) -> Scenario:
    """The scenario with only the levers at the given positions (in their order), same name and seed."""
    return spec.model_copy(update={"levers": [spec.levers[i] for i in levers]})


class Panel:
    """Every member's tidy metric values, 2027 figures and judged-year map cells, in (variant, member) slots."""

    def __init__(self, variants: int, members: int) -> None:
        self.members = members
        self.values: list[list[dict[tuple, float] | None]] = [[None] * members for _ in range(variants)]
        self.targets = np.full((variants, members, 3), np.nan)
        self.target_year: int | None = None
        self.cells: list[list[tuple[np.ndarray, np.ndarray] | None]] = [[None] * members for _ in range(variants)]
        self.seen = np.zeros((variants, members), dtype=bool)

    def fold(self, m: Member) -> None:
        """Keep one member's values (a member already kept is ignored)."""
        if self.seen[m.point, m.member]:
            return
        self.values[m.point][m.member] = dict(zip(m.keys, m.values.tolist()))
        self.targets[m.point, m.member] = m.targets
        self.cells[m.point][m.member] = (m.cells, m.cell_revenue)
        self.target_year = m.target_year
        self.seen[m.point, m.member] = True

    @property
    def done(self) -> int:
        return int(self.seen.sum())

    def spend(self, variant: int, year: int, lever: str | None = None) -> np.ndarray | None:
        """Per member, the public spend to ``year`` from the ``level=lever, metric=spend_cny`` rows
        (of one lever label ``kind#n``, or of all); ``None`` when the runs report no spend rows."""
        rows = self.values[variant]
        picked = [[v for k, v in r.items() if k[1] == "lever" and k[2] == "spend_cny" and int(k[0]) <= year
                   and (lever is None or k[6] == lever)] for r in rows]
        if not any(picked):
            return None
        return np.array([sum(p) for p in picked], dtype=np.float64)

    def cell_means(self) -> tuple[np.ndarray, np.ndarray]:
        """The map cells any member has firms in (sorted flat indices), and per variant the members' mean
        judged-year revenue there (CNY, float64): (variants, cells). Shapley values are linear, so the
        lever values of these means are the means of each member's lever values."""
        used = np.unique(np.concatenate([c for row in self.cells for c, _ in row]))
        means = np.zeros((len(self.cells), len(used)))
        for p, row in enumerate(self.cells):
            for cells, revenue in row:
                means[p, np.searchsorted(used, cells)] += revenue
        return used, means / self.members

    def frame(self, variant: int) -> pd.DataFrame:
        """One variant as a (member x row key) frame; a row a member lacks counts as 0, as in comparisons."""
        rows = self.values[variant]
        keys = sorted(set().union(*(r.keys() for r in rows)), key=lambda k: tuple(map(str, k)))
        data = np.array([[r.get(k, 0.0) for k in keys] for r in rows], dtype=np.float64)
        return pd.DataFrame(data, columns=pd.MultiIndex.from_tuples(keys, names=list(KEYS)))


def run_variants(spec: Scenario, variants: list[Scenario], members: int, out: Path, *, kind: dict[str, Any],
                 seed: int, workers: int, scheduler: str | None, resume: bool, quiet: bool, member: MemberSpec,
                 members_dir: Path | None = None, client: Any = None) -> Panel:
    """Run every variant on the same ``members`` seeds on Dask (or read them back on resume).

    ``kind`` describes the variants (it goes into the fingerprint, so a resume
    never mixes members of other variants in). ``client`` reuses an open Dask
    client (goal seeking runs a batch of trials at a time).
    """
    if spec.source:
        resolved = str(Path(spec.source).resolve())  # workers may run elsewhere
        spec = spec.model_copy(update={"source": resolved})
        variants = [v.model_copy(update={"source": resolved}) for v in variants]
    seeds = member_seeds(seed, members)
    stack = layers.load(**spec.layer_arguments())
    shape = tuple(int(n) for n in stack.grid.shape)
    years = list(range(spec.years.start, spec.years.end + 1))
    fingerprint = make_fingerprint(spec, seed, members, kind, shape, stack, member.as_dict())
    members_dir = members_dir or out / MEMBERS
    panel = Panel(len(variants), members)
    expected = {"token": fingerprint["token"], "shape": shape, "years": years}
    slots = list(itertools.product(range(len(variants)), range(members)))
    if resume:
        check_resume(members_dir, fingerprint, out)
        for p, m in slots:
            if member_file(members_dir, p, m).exists():
                with contextlib.suppress(ValueError):
                    panel.fold(read_member(member_file(members_dir, p, m), point=p, member=m, seed=seeds[m], **expected))
    todo = [(p, m) for p, m in slots if not panel.seen[p, m]]
    progress = Members(spec.name, len(slots), panel.done, quiet)
    opened = dask_client(workers, scheduler) if todo and client is None else contextlib.nullcontext(client)
    with opened as client, OutputLock(out, members_dir):
        prepare_members(members_dir, fingerprint, resume, quiet)
        if todo:
            progress.start()
            try:
                run_members(client, variants, seeds, todo, members_dir, fingerprint["token"], panel, expected, progress, member)
            finally:
                progress.close()
    return panel
