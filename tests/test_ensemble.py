"""Ensembles on Dask: real LocalClusters, a real ``dask scheduler`` and ``dask worker``, SIGKILL and resume.

Every run is a tiny city (scale 0.005, no anchors, 2023-2025), so a member
takes about a second. The reference ensemble is run once; the other
executions (one worker, an existing cluster, killed and resumed) must give
byte-identical ``ensemble_metrics.csv``, ``targets.json`` and ``probability.tif``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_baseline
import rasterio
import yaml

from twin.engine.metrics import KEYS
from twin.engine.targets import TARGETS_2027
from twin.outputs.charts import FAN_METRICS
from twin.policy import scenario
from twin.simulation.run import simulate
from twin.studies.members import read_member, run_member
from twin.studies.seeds import MemberSpec, member_seeds, point_label

REPO = Path(__file__).resolve().parent.parent
N = 8
SEED = 11
COMPARED = ("ensemble_metrics.csv", "targets.json", "probability.tif", "map.html")
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
}
CLUSTER_ENV = dict(ENV)
ENV["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = "3s"  # the CLI gives up on an unreachable scheduler fast


def cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python run_scenario.py ...`` from the repository root."""
    return subprocess.run([sys.executable, "run_scenario.py", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def same_outputs(a: Path, b: Path) -> None:
    for name in COMPARED:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between {a} and {b}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The baseline's levers on a tiny city over two years."""
    return tiny_baseline(tmp_path_factory.mktemp("scenario"), 0.005)


@pytest.fixture(scope="module")
def one_year(tiny) -> Path:
    """The tiny scenario over one year, for the memory test's 50 members."""
    data = yaml.safe_load(tiny.read_text(encoding="utf-8")) | {"name": "tiny_one_year", "years": {"start": 2023, "end": 2024}}
    path = tiny.with_name("tiny_one_year.yaml")
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> Path:
    """The reference ensemble: N members, 2 local workers."""
    out = tmp_path_factory.mktemp("reference") / "out"
    run = cli(tiny, "--ensemble", N, "--workers", 2, "--seed", SEED, "--quiet", "--out", out)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == "", "--quiet prints nothing"
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Terminate a process group started with start_new_session, then kill what is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=15)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real ``dask scheduler`` and one ``dask worker`` (1 process, 1 thread) on 127.0.0.1."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask-logs")
    address = f"tcp://127.0.0.1:{_free_port()}"
    processes: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        log = open(logs / f"{name}.log", "w")
        process = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=CLUSTER_ENV, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        processes.append(process)
        return process

    try:
        start("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
              "--no-dashboard")
        _wait_for_port(address, processes[0])
        start("worker", "distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard")
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=120)
            assert sum(client.nthreads().values()) == 1
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)


def _wait_for_port(address: str, process: subprocess.Popen) -> None:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "the dask scheduler exited"
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.2)


# --- the outputs ----------------------------------------------------------------------


def test_outputs_are_complete_and_consistent_with_the_members(reference, tiny, stack):
    table = pd.read_csv(reference / "ensemble_metrics.csv", encoding="utf-8-sig", keep_default_na=False)
    assert list(table.columns) == ["scenario", "seed", "members", *KEYS, "mean", "p5", "p50", "p95"]
    assert (table["scenario"] == "tiny").all() and (table["seed"] == SEED).all() and (table["members"] == N).all()
    assert not table.duplicated(list(KEYS)).any()
    assert sorted(table["year"].unique()) == [2023, 2024, 2025]
    assert {"revenue_cny", "total_scale_cny", "firms", "talent", "leaders_100bn", "compute_pflops"} <= set(table["metric"])
    assert (table["p5"] <= table["p50"]).all() and (table["p50"] <= table["p95"]).all()

    # The member files, read independently, give the same statistics and probabilities.
    spec = scenario.load(tiny)
    seeds = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(SEED).spawn(N)]
    files = sorted((reference / "members").glob("p0000_m*.npz"))
    assert len(files) == N
    values, grown = [], []
    for i, path in enumerate(files):
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            assert meta["member"] == i and meta["seed"] == seeds[i]
            city = (data["metric"] == "revenue_cny") & (data["level"] == "city")
            values.append(data["value"][city & (data["year"] == 2025)][0])
            grown.append(np.unpackbits(data["grown"], axis=1, count=stack.grid.size).reshape(-1, *stack.grid.shape))
    row = table[(table["year"] == 2025) & (table["metric"] == "revenue_cny") & (table["level"] == "city")]
    assert row["mean"].item() == pytest.approx(np.mean(values), rel=1e-12)
    assert row["p50"].item() == pytest.approx(np.median(values), rel=1e-12)

    # Member 0 is exactly simulate() with its seed and its parameters drawn from the posterior.
    direct = simulate(MemberSpec().run_spec(spec, seeds[0]), seeds[0], stack=stack, firm_years=())
    city = direct.metrics[(direct.metrics["metric"] == "revenue_cny") & (direct.metrics["level"] == "city") & (direct.metrics["year"] == 2025)]
    assert city["value"].item() == values[0]
    # Its growth bits say, per year, where revenue exceeds the base year's: none in the base year itself.
    for y, snap in enumerate(direct.years):
        np.testing.assert_array_equal(grown[0][y], snap.revenue > direct.years[0].revenue)
    assert not grown[0][0].any() and grown[0][-1].any()

    with rasterio.open(reference / "probability.tif") as src:
        assert src.count == 3 and list(src.descriptions) == ["2023", "2024", "2025"]
        assert src.crs == stack.grid.crs and (src.height, src.width) == stack.grid.shape
        last = src.read(3)
    np.testing.assert_allclose(last, np.mean([g[-1] for g in grown], axis=0), atol=1e-7)
    assert last.min() >= 0 and last.max() <= 1 and last.max() > 0

    targets = json.loads((reference / "targets.json").read_text(encoding="utf-8"))
    assert targets["members"] == N and targets["seed"] == SEED and targets["year"] == 2025
    assert set(targets["targets"]) == {*TARGETS_2027, "all"}
    for metric, report in targets["targets"].items():
        assert isinstance(report["met"], int) and 0 <= report["met"] <= N
        assert report["probability"] == report["met"] / N
    assert "scale" in targets["points"][0]["note"]  # a scaled-down city is not compared silently

    manifest = json.loads((reference / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["members"] == N and manifest["seed"] == SEED and manifest["member_seeds"] == seeds
    assert manifest["execution"]["scheduler"] == "LocalCluster" and manifest["execution"]["worker_threads"] == 2
    for key in ("dask", "distributed", "numpy", "matplotlib"):
        assert manifest["versions"][key]
    for metric in FAN_METRICS:
        assert (reference / f"fan_{metric}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(reference.glob(".staging-*")) and not list((reference / "members").glob(".*.tmp-*"))

    # The P(growth) map: the years after the base year, N and seed, and the first point's target chances.
    html = (reference / "map.html").read_text(encoding="utf-8")
    data = json.loads(html.split('<script type="application/json" id="vv-data">', 1)[1].split("</script>", 1)[0])
    assert data["mode"] == "probability" and data["years"] == [2024, 2025]
    assert data["ensemble"]["members"] == N and data["ensemble"]["seed"] == SEED
    assert data["chances"]["year"] == 2025
    assert data["chances"]["targets"]["all"]["probability"] == targets["targets"]["all"]["probability"]
    assert max(data["probability"]["values"][-1]) > 0
    assert "map*.html" in manifest["outputs"]


def test_member_seeds_are_spawned_and_stable():
    seeds = member_seeds(SEED, 10)
    assert seeds == [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(SEED).spawn(10)]
    assert member_seeds(SEED, 3) == seeds[:3]
    assert len(set(seeds)) == 10


# --- execution does not change results ------------------------------------------------


def test_number_of_workers_does_not_matter(reference, tiny, tmp_path):
    run = cli(tiny, "--ensemble", N, "--workers", 1, "--seed", SEED, "--out", tmp_path / "one")
    assert run.returncode == 0, run.stderr
    same_outputs(reference, tmp_path / "one")
    assert "tiny ensemble" in run.stdout and "P(met)" in run.stdout
    assert f"tiny: {N}/{N} members done" in run.stderr and "\r" not in run.stderr  # a log gets lines, not a bar
    assert run.stdout.splitlines()[-1] == f"open {tmp_path / 'one' / 'map.html'}"


def test_existing_dask_cluster_gives_identical_results(reference, tiny, tmp_path, dask_cluster):
    run = cli(tiny, "--ensemble", N, "--scheduler", dask_cluster, "--seed", SEED, "--quiet", "--out", tmp_path / "dist")
    assert run.returncode == 0, run.stderr
    same_outputs(reference, tmp_path / "dist")
    manifest = json.loads((tmp_path / "dist" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["execution"]["scheduler"] == dask_cluster and manifest["execution"]["worker_threads"] == 1


def test_killed_run_resumes_to_identical_results(reference, tiny, tmp_path):
    out = tmp_path / "killed"
    members = out / "members"
    process = subprocess.Popen([sys.executable, "run_scenario.py", str(tiny), "--ensemble", str(N), "--workers", "1",
                                "--seed", str(SEED), "--quiet", "--out", str(out)],
                               cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(members.glob("p*_m*.npz"))) < 2:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no member finished in time"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # the CLI, its scheduler and its worker processes
        process.wait(timeout=30)
    finally:
        _stop(process)
    _wait_for_group_to_die(process.pid)
    done = sorted(members.glob("p*_m*.npz"))
    assert 2 <= len(done) < N, f"{len(done)} members finished before the kill"
    assert not (out / "manifest.json").exists() and not (out / "ensemble_metrics.csv").exists()
    done[0].write_bytes(done[0].read_bytes()[:100])  # a damaged member file is run again, not trusted

    resumed = cli(tiny, "--ensemble", N, "--workers", 2, "--seed", SEED, "--resume", "--quiet", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    same_outputs(reference, out)
    execution = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["execution"]
    assert execution["resumed_members"] == len(done) - 1 and execution["run_members"] == N - len(done) + 1

    again = cli(tiny, "--ensemble", N, "--seed", SEED, "--resume", "--quiet", "--out", out)  # nothing left: no cluster
    assert again.returncode == 0, again.stderr
    same_outputs(reference, out)
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["execution"]["run_members"] == 0


def _wait_for_group_to_die(pgid: int) -> None:
    import psutil

    deadline = time.monotonic() + 30
    while True:
        alive = []
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc.pid)
            except (OSError, psutil.Error):
                continue
        if not alive:
            return
        assert time.monotonic() < deadline, f"processes of the killed run survive: {alive}"
        time.sleep(0.1)


def test_fresh_run_never_mixes_in_other_members(reference, tiny, tmp_path):
    out = tmp_path / "reused"
    shutil.copytree(reference, out)
    other = cli(tiny, "--ensemble", N, "--workers", 2, "--seed", SEED + 1, "--resume", "--quiet", "--out", out)
    assert other.returncode == 2 and other.stderr.startswith("error: ") and len(other.stderr.splitlines()) == 1
    assert "seed" in other.stderr and "members" in other.stderr
    same_outputs(reference, out)  # refused before touching anything

    fresh = cli(tiny, "--ensemble", 3, "--workers", 2, "--seed", SEED + 1, "--out", out)
    assert fresh.returncode == 0, fresh.stderr
    assert "removing 8 member files" in fresh.stderr
    files = sorted((out / "members").glob("p*_m*.npz"))
    assert len(files) == 3
    seeds = member_seeds(SEED + 1, 3)
    for i, path in enumerate(files):
        with np.load(path, allow_pickle=False) as data:
            assert json.loads(str(data["meta"]))["seed"] == seeds[i]
    assert json.loads((out / "targets.json").read_text(encoding="utf-8"))["members"] == 3


# --- memory ------------------------------------------------------------------------------

DRIVER = """
import resource, sys
sys.path.insert(0, {repo!r})
from twin.policy import scenario
from twin.studies.ensemble import run_ensemble

if __name__ == "__main__":
    spec = scenario.load(sys.argv[1])
    run_ensemble(spec, int(sys.argv[2]), sys.argv[3], workers=2, quiet=True, seed=5)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_aggregating_process_memory_stays_flat(one_year, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO)))
    peaks = {}
    for members in (10, 40):
        run = subprocess.run([sys.executable, str(driver), str(one_year), str(members), str(tmp_path / f"n{members}")],
                             cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        peaks[members] = int(run.stdout.split()[-1]) / 1024  # MiB
    assert peaks[40] <= 1.1 * peaks[10] + 32, f"peak RSS of the aggregating process: {peaks} MiB"


# --- sweeps --------------------------------------------------------------------------------


def test_sweep_writes_one_tidy_table_and_per_point_targets(tiny, tmp_path):
    out = tmp_path / "sweep"
    run = cli(tiny, "--ensemble", 2, "--seed", SEED, "--sweep", "growth_mu=0.0,0.3", "--sweep", "growth_sigma=0.1,0.3",
              "--quiet", "--out", out)
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out / "ensemble_metrics.csv", encoding="utf-8-sig", keep_default_na=False)
    assert list(table.columns[:5]) == ["scenario", "seed", "members", "growth_mu", "growth_sigma"]
    points = table[["growth_mu", "growth_sigma"]].drop_duplicates()
    assert sorted(map(tuple, points.to_numpy())) == [(0.0, 0.1), (0.0, 0.3), (0.3, 0.1), (0.3, 0.3)]
    sizes = table.groupby(["growth_mu", "growth_sigma"]).size()
    assert sizes.nunique() == 1
    revenue = table[(table["metric"] == "revenue_cny") & (table["year"] == 2025) & (table["zone"] == "") & (table["district"] == "") & (table["track"] == "")]
    by_mu = revenue.groupby("growth_mu")["p50"].mean()
    assert by_mu[0.3] > by_mu[0.0]
    targets = json.loads((out / "targets.json").read_text(encoding="utf-8"))
    assert [p["params"] for p in targets["points"]] == [{"growth_mu": 0.0, "growth_sigma": 0.1}, {"growth_mu": 0.0, "growth_sigma": 0.3},
                                                        {"growth_mu": 0.3, "growth_sigma": 0.1}, {"growth_mu": 0.3, "growth_sigma": 0.3}]
    for point in targets["points"]:
        assert (out / point["probability_tif"]).exists() and set(point["targets"]) == {*TARGETS_2027, "all"}
    assert not (out / "probability.tif").exists()
    assert sorted(p.name for p in out.glob("map*.html")) == sorted(
        f"map_{point_label(point['params'])}.html" for point in targets["points"])
    # The same member seeds at every point.
    metas = []
    for path in sorted((out / "members").glob("p*_m*.npz")):
        with np.load(path, allow_pickle=False) as data:
            metas.append(json.loads(str(data["meta"])))
    assert len(metas) == 8 and {m["seed"] for m in metas} == set(member_seeds(SEED, 2))


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--sweep", "growth_muu=0.1,0.2"], "did you mean growth_mu"),
        (["--sweep", "growth_mu=0.1,5"], "out of range"),
        (["--sweep", "growth_mu=0.1,0.1"], "repeated"),
        (["--scheduler", "tcp://127.0.0.1:{port}"], "cannot reach a Dask scheduler"),
    ],
)
def test_bad_input_is_one_error_line_and_no_output(tiny, tmp_path, args, says):
    args = [a.format(port=_free_port()) for a in args]
    out = tmp_path / "bad"
    run = cli(tiny, "--ensemble", 2, *args, "--out", out, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: ") and len(run.stderr.splitlines()) == 1, run.stderr
    assert says in run.stderr
    assert not out.exists()


def test_member_comes_back_through_dask_without_a_shared_folder(tiny, stack, tmp_path):
    """A worker that cannot see the output folder returns the member's bytes instead of writing them."""
    spec = scenario.load(tiny)
    seed = member_seeds(SEED, 1)[0]
    result = run_member(spec, 0, 0, seed, str(tmp_path / "elsewhere"), "token")
    assert "path" not in result and not (tmp_path / "elsewhere").exists()
    member = read_member(result["payload"], token="token", point=0, member=0, seed=seed,
                                  shape=stack.grid.shape, years=[2023, 2024, 2025])
    assert member.values.size == len(member.keys) > 0
    with pytest.raises(ValueError, match="token"):
        read_member(result["payload"], token="other", point=0, member=0, seed=seed,
                             shape=stack.grid.shape, years=[2023, 2024, 2025])
    with pytest.raises(ValueError):
        read_member(result["payload"][:-50], token="token", point=0, member=0, seed=seed,
                             shape=stack.grid.shape, years=[2023, 2024, 2025])
    assert io.BytesIO(result["payload"]).read(2) == b"PK"


def test_fan_charts_are_bilingual_with_integer_counts_and_distinct_sweep_medians(tmp_path):
    from twin.outputs import charts

    spec = scenario.load(scenario.BASELINE)
    points = [{"scale": 0.01}, {"scale": 0.02}]
    rows = [{"level": "city", "metric": "firms", "year": year, "scale": s, "p5": 2.0 + k, "p50": 3.0 + k, "p95": 4.5 + k, "mean": 3.1 + k}
            for s in (0.01, 0.02) for k, year in enumerate(range(2023, 2026))]
    fig = charts._fan(pd.DataFrame(rows), "firms", spec, 7, 4, points)
    ax = fig.axes[0]
    assert "企业数" in ax.get_ylabel() and "Firms" in ax.get_ylabel() and "年份 Year" == ax.get_xlabel()
    assert spec.title.zh in ax.get_title() and spec.title.en in ax.get_title() and "firms" not in ax.get_title().split("\n")[0]
    fig.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_yticks()), ax.get_yticks()
    medians = [line for line in ax.get_lines() if line.get_label().startswith("中位数 median")]
    assert len(medians) == 2
    assert medians[0].get_linestyle() != medians[1].get_linestyle() and medians[0].get_marker() != medians[1].get_marker()
    assert charts.write_fan_charts(pd.DataFrame(rows), tmp_path, spec, 7, 4, points) == ["fan_firms.png"]
    assert (tmp_path / "fan_firms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
