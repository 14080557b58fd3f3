"""The studio's runs: one at a time on a worker thread, a bounded queue, results cached by resolved scenario and seed.

Every run goes through :func:`twin.outputs.writer.run_and_write`, the command
line's own run path, into a folder of the studio's work area, so a run's
``metrics.csv`` and export are the bytes ``run_scenario.py`` writes for the same
scenario and seed. Each run is paired with the reference (the ``baseline``
scenario's levers on the run's own city: its years, grid and parameters) on the
same seed, which is run once per seed and kept; ``members`` > 1 adds that many
paired member seeds, drawn as ``--compare --ensemble`` draws them, for intervals.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..outputs.maps import write_map
from ..outputs.tables import comparison_table
from ..outputs.writer import run_and_write
from ..policy import scenario as scenarios
from ..policy.scenario import Scenario
from ..simulation.run import RunResult, simulate
from ..studies.compare import Comparison
from ..studies.seeds import MemberSpec, member_seeds
from .figures import figures

MAX_QUEUE = 4
"""Runs waiting at most; one more request is refused (HTTP 503) rather than piling up work. A session's new request
cancels its own waiting one (the page only wants the latest); a running run always finishes, and is cached."""

KEPT_RESULTS = 12
"""Simulated runs kept in memory (for difference maps and member tables); older ones are simulated again if needed."""


class Busy(Exception):
    """The queue is full: the request is refused, nothing is queued."""


@dataclass
class Job:
    """One request of one session: what to run, how far it is, and the figures when done."""

    id: str
    session: str
    spec: Scenario
    seed: int
    members: int
    yaml: str
    status: str = "queued"  # queued, running, done, failed, cancelled
    done: int = 0
    total: int = 1
    message: str = ""
    figures: dict | None = None
    folder: Path | None = None  # the scenario's run folder, as the command line writes it
    reference: Path | None = None  # the reference's run folder on the same seed
    difference: Path | None = None  # map.html of the scenario against the reference
    cached: bool = False
    order: int = field(default_factory=itertools.count().__next__)

    def view(self, ahead: int = 0) -> dict:
        """The job as the API reports it."""
        out = {"id": self.id, "status": self.status, "progress": round(self.done / max(self.total, 1), 4),
               "scenario": self.spec.name, "seed": self.seed, "members": self.members, "cached": self.cached}
        if self.status == "queued":
            out["message"] = f"queued behind {ahead} run{'s' if ahead != 1 else ''}: runs go one at a time, in order"
        elif self.message:
            out["message"] = self.message
        if self.figures is not None:
            out["figures"] = self.figures
        return out


@dataclass
class _Done:
    """A finished request's products, shared by every job with the same key."""

    figures: dict
    folder: Path
    reference: Path
    difference: Path


@dataclass
class Studio:
    """The run queue and caches of one studio process."""

    workdir: Path
    reference_levers: list = field(default_factory=lambda: scenarios.load("baseline").levers)
    jobs: dict[str, Job] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[Job] = deque()
        self._wake = threading.Condition(self._lock)
        self._done: dict[str, _Done] = {}
        self._folders: dict[str, Path] = {}
        self._cities: dict[str, str] = {}  # a run's key without its name, title and description -> its key
        self._results: OrderedDict[str, RunResult] = OrderedDict()
        self.warming = True
        threading.Thread(target=self._work, name="studio-runs", daemon=True).start()

    def submit(self, spec: Scenario, seed: int, members: int, yaml: str, session: str) -> Job:
        """Queue a checked scenario (or answer at once from the cache); raise :class:`Busy` when the queue is full."""
        job = Job(secrets.token_urlsafe(12), session, spec, seed, members, yaml)
        with self._lock:
            done = self._done.get(self._key(job))
            if done is not None:
                job.status, job.done, job.cached = "done", job.total, True
                job.figures, job.folder, job.reference, job.difference = done.figures, done.folder, done.reference, done.difference
            else:
                for older in [older for older in self._pending if older.session == session]:  # a newer request replaces it
                    older.status, older.message = "cancelled", "cancelled: a newer request of this session replaced it"
                    self._pending.remove(older)
                if len(self._pending) >= MAX_QUEUE:
                    raise Busy(f"{MAX_QUEUE} runs are already waiting; try again when one has finished")
                self._pending.append(job)
                self._wake.notify()
            self.jobs[job.id] = job
        return job

    def get(self, job_id: str, session: str) -> Job | None:
        """A job of this session (another session's job is as good as missing)."""
        job = self.jobs.get(job_id)
        return job if job is not None and job.session == session else None

    def ahead(self, job: Job) -> int:
        """Runs before ``job`` in the queue, the running one included."""
        with self._lock:
            return sum(1 for other in self.jobs.values() if other.status in ("queued", "running")
                       and other.order < job.order) if job.status == "queued" else 0

    def reference(self, spec: Scenario) -> Scenario:
        """The reference of a run: the baseline's levers on the run's own city (years, grid, layers, parameters)."""
        return spec.model_copy(update={"name": "baseline", "levers": self.reference_levers,
                                       "title": scenarios.Title(zh="基准情景", en="Baseline")})

    @staticmethod
    def _key(job: Job) -> str:
        """The cache key: the resolved scenario, the seed and the members."""
        return _hash(job.spec, job.seed, job.members)

    def _work(self) -> None:
        """The worker: one job at a time, in the order they came."""
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                job = self._pending.popleft()
                job.status = "running"
            status = "failed"
            try:
                self._run(job)
                status = "done"
            except Exception as exc:  # noqa: BLE001 -- a failed run is reported on its job; the studio keeps serving
                job.message = f"{type(exc).__name__}: {exc}"
            finally:
                self.warming = False
                job.done = job.total
                job.status = status  # last: a poller that sees "done" sees the figures and full progress

    def _run(self, job: Job) -> None:
        """Run (or take from the cache) the scenario and its reference on the seed, and the member pairs."""
        key = self._key(job)
        if key in self._done:  # queued twice before the first finished
            done = self._done[key]
            job.figures, job.folder, job.reference, job.difference, job.cached = (done.figures, done.folder, done.reference,
                                                                                  done.difference, True)
            return
        reference = self.reference(job.spec)
        months = (job.spec.years.end - job.spec.years.start) * 12
        job.total = months * (2 + 2 * (job.members if job.members > 1 else 0))
        job.message = "warming the compiled kernels (first run only)" if self.warming else ""
        scenario_run, folder = self._written(job, job.spec)
        reference_run, reference_folder = self._written(job, reference, same_city=True)
        difference = self.workdir / "maps" / f"{key}.html"
        difference.parent.mkdir(parents=True, exist_ok=True)
        write_map(difference, scenario_run, reference_run)
        if job.members > 1:
            member = MemberSpec(posterior=True)
            seeds = member_seeds(job.seed, job.members)
            a = [self._simulated(job, member.run_spec(reference, s), s) for s in seeds]
            b = [self._simulated(job, member.run_spec(job.spec, s), s) for s in seeds]
        else:
            a, b = [reference_run], [scenario_run]
        done = _Done(figures(Comparison(a, b, comparison_table(a, b)), scenario_run), folder, reference_folder, difference)
        with self._lock:
            self._done[key] = done
        job.figures, job.folder, job.reference, job.difference = done.figures, done.folder, done.reference, done.difference
        job.message = ""

    def _written(self, job: Job, spec: Scenario, *, same_city: bool = False) -> tuple[RunResult, Path]:
        """A run and its folder, written through the command line's path into the work area once per resolved
        scenario and seed. With ``same_city`` (the reference) a kept run that differs only in its name, title and
        description serves instead: the start scenario with the baseline's levers is its own reference, run once."""
        key = _hash(spec, job.seed)
        twin = self._cities.get(_hash(_unnamed(spec), job.seed)) if same_city else None
        key = twin if twin in self._results and twin in self._folders else key
        if key in self._results and key in self._folders:
            job.done += (spec.years.end - spec.years.start) * 12
            self._results.move_to_end(key)
            return self._results[key], self._folders[key]
        folder = self.workdir / "runs" / key
        start = job.done
        result = run_and_write(spec, job.seed, folder, on_month=lambda done, total: setattr(job, "done", start + done))
        self._folders[key] = folder
        self._cities[_hash(_unnamed(spec), job.seed)] = key
        return self._keep(key, result), folder

    def _simulated(self, job: Job, spec: Scenario, seed: int) -> RunResult:
        """A member run, simulated once per resolved scenario and seed and kept without its snapshots."""
        key = _hash(spec, seed)
        if key in self._results:
            job.done += (spec.years.end - spec.years.start) * 12
            return self._results[key]
        start = job.done
        result = simulate(spec, seed, progress=lambda done, total: setattr(job, "done", start + done))
        return self._keep(key, replace(result, years=result.years[-1:]))

    def _keep(self, key: str, result: RunResult) -> RunResult:
        """Keep a result in the bounded memory cache."""
        self._results[key] = result
        while len(self._results) > KEPT_RESULTS:
            self._results.popitem(last=False)
        return result


def _unnamed(spec: Scenario) -> Scenario:
    """The scenario without what only labels it (name, title, description): what its figures depend on."""
    return spec.model_copy(update={"name": "_", "title": scenarios.Title(), "description": ""})


def _hash(spec: Scenario, *more: object) -> str:
    """A short stable key of a resolved scenario (its schema dump; the file it came from does not count) and more."""
    text = json.dumps([spec.model_dump(mode="json"), *more], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]

