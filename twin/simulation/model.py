"""``VisionValleyModel``: the vectorized engine as a real ``mesa.Model``.

One ``step()`` is one month: policy -> infrastructure -> talent -> firms ->
land -> metrics (docs/sources.md#s-design). The synthesized population is the base year
(``years.start``) as it ends; the run simulates the months of the following
years up to the end of ``years.end``. Agents live in numpy columns
(:mod:`twin.engine.state`); the per-agent Mesa model in
:mod:`twin.simulation.reference` states the same rules one agent at a time and
is the oracle the tests compare against.

The clock: ``model.year`` is the decimal date the run has reached, the start
of the month simulated next (the end of the last month simulated). A run
whose base year is 2023 starts at 2024.0; after one step (January 2024) it
is 2024.083; after twelve, 2025.0. The ``year`` the DataCollector records is
this same value. The yearly metrics table labels its rows with the calendar
year just completed (2024 at 2025.0), as metrics.csv does.

Randomness: the synthesis and the policy levers draw from the Mesa ``rng``
(seeded); every draw in the monthly processes comes from counter-based
streams keyed by (seed, process, month, agent id) (:mod:`twin.engine.streams`),
so two scenarios on one seed meet the same shocks (common random numbers).
"""

from __future__ import annotations

import math
import os
import reprlib
from collections.abc import Iterable
from typing import Any

import mesa
import numpy as np

import layers
from layers import LayerStack

from ..engine.choice import WeightedSampler
from ..engine.effects import Effects
from ..engine.fields import neighbourhood_fields
from ..engine.firms import exit_firms, found_firms, grow_firms, relocate_firms
from ..engine.geography import Geography
from ..engine.infrastructure import update_compute
from ..engine.labour import revenue_per_worker
from ..engine.land import update_land
from ..engine.metrics import COLUMNS, headline, tidy_rows
from ..engine.values import number_problem, seed_problem
from ..engine.state import StepLog
from ..engine.streams import Streams
from ..engine.synth import synthesize
from ..engine.talent import release_workers_of_closed_firms, step_talent
from ..policy import scenario as scenarios
from ..policy.hook import Lever, lever_labels
from ..policy.resources import check_resources

HEADLINE = ("revenue_cny", "total_scale_cny", "firms", "guishang_firms", "leaders_100bn", "talent", "employed", "compute_pflops")


class VisionValleyModel(mesa.Model):
    """The 中国视谷 twin: firms, talent and infrastructure on the city grid, one month a step.

    Args:
        scenario: a scenario file path or name, or a :class:`twin.policy.scenario.Scenario`; the shipped
            baseline by default.
        seed: the run's seed, an int in [0, 2**64): it seeds the Mesa ``rng`` and the keyed streams.
            Default (with no ``rng`` either): a fresh seed from the operating system's entropy, recorded
            in ``model.seed``, as ``mesa.Model`` does; so ``mesa.batch_run`` iterations are distinct runs,
            and ``VisionValleyModel(seed=model.seed)`` reruns one. The command line passes the scenario's
            ``seed`` (or ``--seed``) explicitly: ``VisionValleyModel("x.yaml", seed=spec.seed)`` is
            ``python run_scenario.py x.yaml``.
        rng: as in ``mesa.Model``, instead of ``seed``: an int, or a ``numpy.random.Generator`` from
            which the run's seed is drawn. Passing one generator to ``mesa.batch_run`` makes each
            iteration a distinct run, reproducible from the generator's own seed.
        stack: an already loaded :class:`layers.LayerStack`, to skip loading in sweeps.
        levers: objects with ``apply(model, effects)`` called at the start of each step; ``None``
            (the default) means the scenario's own levers, ``[]`` switches them off.
        **params: overrides of :class:`twin.engine.params.Params` by name.

    The arguments are checked before any work; a wrong type is a ``TypeError``, a value out of range a
    ``ValueError`` (parameters: :class:`layers.InputError`, a ``ValueError``), each naming the argument.

    Attributes:
        seed: the int seed the run used (given, drawn from ``rng``, or fresh).
        running: True until the month that ends the scenario's last year has been simulated (Mesa's
            ``run_model`` steps while it holds).
        steps: months simulated so far (Mesa's counter).
        rng: the seeded ``numpy.random.Generator`` of the synthesis and the policy levers (Mesa's).
        random: Mesa's seeded ``random.Random``; the model draws nothing from it.
        streams: the counter-based streams of every monthly draw (:class:`twin.engine.streams.Streams`).
        scenario: the resolved :class:`twin.policy.scenario.Scenario`.
        params: the run's :class:`twin.engine.params.Params` (the scenario's overrides, then ``**params``).
        layers: the :class:`layers.LayerStack` the city is built on.
        geo: the per-cell arrays the engine reads (:class:`twin.engine.geography.Geography`).
        start_year, end_year: the scenario's base year and last simulated year.
        levers: the levers applied each month, in order.
        lever_labels: each lever's label (twin.policy.hook.lever_labels), as metrics.csv names them.
        state: the agents and the city, as numpy columns (:class:`twin.engine.state.State`):
            ``state.firms`` and ``state.talent`` hold one row per firm and per person (``alive`` marks the
            live rows), ``state.compute`` the compute centres.
        datacollector: a ``mesa.DataCollector``: model reporters ``seed``, ``year`` and the headline
            figures (:data:`HEADLINE`), collected every month (so ``batch_run`` rows carry their seed),
            and the yearly tidy table ``"metrics"`` (the rows of metrics.csv).
        agents: Mesa's ``AgentSet``, which stays empty. The agents are rows of numpy columns, not
            ``mesa.Agent`` objects (a million Python objects would cost the engine its speed), so
            Mesa's agent tools (``agent_reporters``, ``agents_by_type``, the space drawers) see none.
            Read agents from ``state.firms`` and ``state.talent`` instead, e.g.
            ``pandas.DataFrame({f: model.state.firms[f][model.state.firms.alive] for f in model.state.firms.fields})``;
            :mod:`twin.simulation.reference` is the same model with one ``mesa.Agent`` per firm and person.
        year, calendar_year, source, figures: properties, documented below.
    """

    def __init__(
        self,
        scenario: str | os.PathLike[str] | scenarios.Scenario | None = None,
        seed: int | None = None,
        *,
        rng: int | np.random.Generator | None = None,
        stack: LayerStack | None = None,
        levers: Iterable[Lever] | None = None,
        **params: Any,
    ) -> None:
        chosen_levers = check_arguments(scenario, seed, rng, stack, levers)
        spec = scenario if isinstance(scenario, scenarios.Scenario) else scenarios.load(scenario or scenarios.BASELINE)
        self.seed = run_seed(seed, rng)
        super().__init__(seed=self.seed)
        self.streams = Streams(self.seed)
        self.scenario = spec
        self.params = spec.parameters(**params)
        check_resources(spec, self.params, chosen_levers)  # overrides and levers may ask more than the scenario did
        self.layers = stack if stack is not None else layers.load(**spec.layer_arguments())
        self.geo = Geography.from_layers(self.layers, self.params)
        self.start_year, self.end_year = spec.years.start, spec.years.end
        self.levers = list(spec.levers) if chosen_levers is None else chosen_levers
        self.lever_labels = lever_labels(self.levers)
        self._spend = dict.fromkeys(self.lever_labels, 0.0)  # CNY each lever spent in the year under way
        for i, lever in enumerate(self.levers):
            if hasattr(lever, "check"):
                lever.check(self, f"levers.{i}")
        self.state = synthesize(self.geo, self.params, float(self.start_year), self.rng, self.layers)
        self.state.talent.uid = np.arange(self.state.talent.n)  # base-year ids; newcomers get streams.newborn_ids
        self.state.year = self.start_year + 1.0  # the base year is complete; the first month simulated is January of the next
        update_compute(self.state, self.params, calibrate=True)
        self._homes = WeightedSampler(np.flatnonzero(self.geo.housing > 0), self.geo.housing[self.geo.housing > 0])
        self._capacity_seen: np.ndarray | None = None
        self.datacollector = mesa.DataCollector(
            model_reporters={"seed": "seed", **{name: (lambda m, n=name: m._collected[n]) for name in ("year", *HEADLINE)}},
            tables={"metrics": list(COLUMNS)},
        )
        self.running = self.end_year > self.start_year
        self._collect()
        self._record_year()

    @property
    def year(self) -> float:
        """The model's one clock: the decimal date at the start of the month simulated next (module docstring)."""
        return self.state.year

    @property
    def calendar_year(self) -> int:
        """The calendar year of the last month simulated (the base year before the first step); metrics use it."""
        return math.ceil(self.year - 1e-6) - 1

    @property
    def source(self) -> str:
        """The scenario file the run's levers came from ('' when none), for error messages."""
        return self.scenario.source

    @property
    def figures(self) -> dict[str, float]:
        """Headline figures of the current state, with the clock's ``year``."""
        return {"year": self.year, **headline(self.state, self.params)}

    def step(self) -> None:
        """Advance one month."""
        state, geo, params = self.state, self.geo, self.params
        draws = self.streams.month(round(state.year * 12))  # keyed by the calendar month simulated
        state.log = StepLog()
        effects = Effects.neutral(state.firms.n, len(geo.zone_ids))
        for label, lever in zip(self.lever_labels, self.levers):
            effects.lever = label
            lever.apply(self, effects)
        for label, cny in effects.spend.items():
            self._spend[label] += cny
        update_compute(state, params)
        per_worker = revenue_per_worker(state.firms.revenue, params)  # revenue changes first in grow_firms: one power a month
        step_talent(state, geo, params, effects, self._homes, draws, per_worker)
        fields = neighbourhood_fields(state, geo, params)
        cells = self._cell_sampler()
        grow_firms(state, geo, params, fields, effects, draws, per_worker)
        state.log.firm_exits = exit_firms(state, params, draws)
        release_workers_of_closed_firms(state)
        state.log.firm_births = found_firms(state, geo, params, fields, effects, cells, draws)
        state.log.relocations = relocate_firms(state, geo, params, fields, effects, cells, draws)
        update_land(state, geo, params)
        state.compact()
        state.year = self.start_year + 1.0 + self.steps / 12.0
        self._collect()
        if self.steps % 12 == 0:
            self._record_year()
        if self.year >= self.end_year + 1 - 1e-9:
            self.running = False

    def _collect(self) -> None:
        """Collect the monthly reporters from one computation of the headline figures (not one per reporter)."""
        self._collected = self.figures
        self.datacollector.collect(self)

    def _cell_sampler(self) -> WeightedSampler:
        """Candidate cells for firm location, by floor space; rebuilt only when capacity changes (parks)."""
        capacity = self.state.capacity_m2
        if self._capacity_seen is None or not np.array_equal(self._capacity_seen, capacity):
            self._capacity_seen = capacity.copy()
            self._cells = WeightedSampler(np.arange(len(capacity)), capacity)
        return self._cells

    def _record_year(self) -> None:
        """Add the tidy metrics rows of the year just completed, with each lever's spend; headline reporters are collected monthly."""
        year = self.calendar_year
        spend = [(year, "lever", "spend_cny", "", "", "", label, float(round(cny))) for label, cny in self._spend.items()] if self.steps else []
        for row in tidy_rows(year, self.state, self.geo, self.params) + spend:
            self.datacollector.add_table_row("metrics", dict(zip(COLUMNS, row)))
        self._spend = dict.fromkeys(self.lever_labels, 0.0)


def check_arguments(scenario: object, seed: object, rng: object, stack: object, levers: object) -> list[Lever] | None:
    """Refuse arguments of the wrong type or range before any work, naming the argument; the levers as a list.

    Seeds go through :func:`twin.engine.values.seed_problem`, the one rule for numbers a user gives: 1.5, 16.0
    and True are not seeds (``random.Random(1.5)`` would take it, and a bool would run as seed 1).
    """
    if scenario is not None and not isinstance(scenario, (str, os.PathLike, scenarios.Scenario)):
        raise TypeError(f"scenario must be a scenario file path or name, or a Scenario, got {_brief(scenario)}")
    for name, value in (("seed", seed), ("rng", rng)):
        if value is None or (name == "rng" and isinstance(value, np.random.Generator)):
            continue
        problem = seed_problem(value)
        if problem is not None:
            error = TypeError if number_problem(value, integer=True) else ValueError
            raise error(f"{name} {problem}" + (" (or a numpy.random.Generator)" if name == "rng" else ""))
    if stack is not None and not isinstance(stack, LayerStack):
        raise TypeError(f"stack must be a layers.LayerStack (layers.load()), got {_brief(stack)}")
    if levers is None:
        return None
    if isinstance(levers, (str, bytes)) or not isinstance(levers, Iterable):
        raise TypeError(f"levers must be a list of levers, objects with apply(model, effects), got {_brief(levers)}")
    chosen = list(levers)
    for i, lever in enumerate(chosen):
        if not callable(getattr(lever, "apply", None)):
            raise TypeError(f"levers[{i}] has no apply(model, effects) method: {_brief(lever)}")
    return chosen


def run_seed(seed: int | None, rng: int | np.random.Generator | None) -> int:
    """The run's int seed, following ``mesa.Model``: ``seed`` or ``rng``, not both; neither means a fresh one.

    A generator gives a fresh seed each call (Mesa draws ``integers(2**31 - 1)``
    from it too), which is how ``batch_run`` iterations sharing one generator
    become distinct, reproducible runs. With neither, the seed is drawn the
    same way from a generator on the operating system's entropy, so the model
    can record it (``model.seed``).
    """
    if seed is not None and rng is not None:
        raise ValueError("you have to pass either rng or seed, not both")
    if seed is not None:
        return int(seed)
    if isinstance(rng, int | np.integer):
        return int(rng)
    generator = np.random.default_rng() if rng is None else rng
    return int(generator.integers(np.iinfo(np.int32).max))


def _brief(value: object) -> str:
    """A value for a message: its type and a short repr."""
    return f"{type(value).__name__} {reprlib.repr(value)}"
