"""Never lose a user's data, never hang, never crash on bad input (issue 15).

Real folders, files, symlinks, processes and signals: the output folder is the
tool's own, replacing it is atomic under SIGKILL, two runs never touch each
other's work, and resources, YAML, CSV and the scheduler are bounded.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from layers import InputError
from twin.outputs.folder import PARTIAL, TOOL, atomic_folder, check_target
from twin.outputs.tables import write_csv
from twin.policy import scenario as scenarios
from twin.policy.resources import check_resources

ROOT = Path(__file__).resolve().parent.parent
SMALL = "years: {start: 2023, end: 2024}\nparams: {scale: 0.002, anchors: 0}\n"


def tree_hash(path: Path) -> str:
    """A digest of a path as the user sees it: a link's target name, a file's bytes, a folder's names and bytes."""
    digest = hashlib.sha256()
    if path.is_symlink():
        digest.update(b"link:" + os.readlink(path).encode())
    elif path.is_file():
        digest.update(path.read_bytes())
    elif path.is_dir():
        for item in sorted(path.rglob("*")):
            digest.update(str(item.relative_to(path)).encode())
            if item.is_file() and not item.is_symlink():
                digest.update(item.read_bytes())
    else:
        digest.update(b"missing")
    return digest.hexdigest()


def cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_scenario.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess, pattern: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert pattern in lines[0], lines[0]


def own_output(folder: Path, text: str) -> None:
    """Fill ``folder`` as the tool would: some file and a manifest carrying the tool's marker."""
    (folder / "metrics.csv").write_text(text)
    (folder / "manifest.json").write_text(json.dumps({"tool": TOOL, "files": ["manifest.json", "metrics.csv"]}))


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text("name: small\n" + SMALL)
    return path


# --- the output folder is the tool's own -------------------------------------------------------


def _user_targets(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.docx").write_bytes(b"years of work")
    file = tmp_path / "notes.txt"
    file.write_text("notes")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.csv").write_text("a,b\n")
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    empty_link = tmp_path / "empty_link"
    (tmp_path / "empty").mkdir()
    empty_link.symlink_to(tmp_path / "empty")
    return {"folder": folder, "file": file, "symlink": link, "symlink to an empty folder": empty_link}


@pytest.mark.parametrize("kind", ["folder", "file", "symlink", "symlink to an empty folder"])
def test_a_users_folder_file_or_symlink_as_out_is_never_changed(tmp_path: Path, scenario: Path, kind: str) -> None:
    targets = _user_targets(tmp_path)
    before = {p: tree_hash(p) for p in tmp_path.rglob("*")}
    proc = cli(str(scenario), "--out", str(targets[kind]), "--quiet")
    one_error_line(proc, "--out")
    assert {p: tree_hash(p) for p in tmp_path.rglob("*")} == before  # nothing changed, nothing hidden beside it


@pytest.mark.parametrize("out", ["", ".", "work/.."])
def test_empty_dot_and_working_folder_are_refused(tmp_path: Path, scenario: Path, out: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "x.txt").write_text("x")
    before = tree_hash(tmp_path)
    proc = cli(str(scenario), "--out", out, "--quiet", cwd=work if out == "." or out == "" else tmp_path)
    one_error_line(proc, "--out")
    assert tree_hash(tmp_path) == before


def test_the_repos_own_folders_are_refused() -> None:
    before = tree_hash(ROOT / "scenarios")
    proc = cli(str(ROOT / "scenarios" / "baseline.yaml"), "--out", str(ROOT / "scenarios"), "--quiet", timeout=120)
    one_error_line(proc, "not an output of this tool")
    assert tree_hash(ROOT / "scenarios") == before


def test_ensemble_out_that_is_a_file_is_refused(tmp_path: Path, scenario: Path) -> None:
    file = tmp_path / "f.txt"
    file.write_text("x")
    proc = cli(str(scenario), "--ensemble", "2", "--workers", "1", "--out", str(file), "--quiet")
    one_error_line(proc, "is not a folder")
    assert file.read_text() == "x"


def test_read_only_folder_is_refused(tmp_path: Path, scenario: Path) -> None:
    """A 0555 folder is read-only to a user; root may write there, so as root use a read-only mount (sysfs)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    parent = Path("/sys/fs") if os.geteuid() == 0 else ro
    if os.geteuid() == 0 and not Path("/sys/fs").is_dir():
        pytest.skip("no sysfs to stand for a read-only folder")
    before = sorted(p.name for p in parent.iterdir())
    proc = cli(str(scenario), "--out", str(parent / f"vvt-out-{os.getpid()}"), "--quiet")
    one_error_line(proc, "read-only")
    assert sorted(p.name for p in parent.iterdir()) == before


def test_previous_output_is_replaced_with_no_hidden_leftovers(tmp_path: Path, scenario: Path) -> None:
    out = tmp_path / "out"
    first = cli(str(scenario), "--out", str(out), "--quiet")
    assert first.returncode == 0, first.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tool"] == TOOL
    second = cli(str(scenario), "--out", str(out), "--quiet", "--seed", "7")
    assert second.returncode == 0 and second.stderr == "", second.stderr
    assert json.loads((out / "manifest.json").read_text())["runs"][0]["seed"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "small.yaml"]
    assert not (out / PARTIAL).exists()


def test_check_target_accepts_new_empty_and_own_output_only(tmp_path: Path) -> None:
    assert check_target(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    check_target(tmp_path / "empty")
    (tmp_path / "ours").mkdir()
    own_output(tmp_path / "ours", "old")
    check_target(tmp_path / "ours")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "manifest.json").write_text('{"tool": "someone else"}')
    with pytest.raises(InputError, match="not an output of this tool"):
        check_target(tmp_path / "fake")


# --- atomic replacement under SIGKILL, and leftovers ------------------------------------------

_WRITER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from twin.outputs.folder import TOOL, atomic_folder
    with atomic_folder(Path(sys.argv[1])) as tmp:
        (tmp / "metrics.csv").write_text(sys.argv[2])
        print("writing", flush=True)
        time.sleep(float(sys.argv[3]))
        (tmp / "manifest.json").write_text(json.dumps({"tool": TOOL, "files": ["manifest.json", "metrics.csv"]}))
    print("done", flush=True)
""")


def _writer(out: Path, text: str, pause: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(out), text, str(pause)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_while_replacing_keeps_the_old_output_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    own_output(out, "old")
    proc = _writer(out, "new", 30)
    assert proc.stdout.readline().strip() == "writing"
    assert [p.name for p in tmp_path.glob(".out.tmp-*")]  # the new output is being written aside
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "metrics.csv").read_text() == "old"  # the old output is whole
    leftovers = list(tmp_path.glob(".out.*"))
    assert leftovers
    finish = _writer(out, "newer", 0)
    assert finish.wait(60) == 0, finish.stderr.read()
    assert (out / "metrics.csv").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the killed run's folder is gone


def test_old_or_new_output_is_complete_at_every_instant(tmp_path: Path) -> None:
    """Watch the folder while runs replace it: every look finds a manifest and the matching file."""
    out = tmp_path / "out"
    out.mkdir()
    own_output(out, "v0")
    seen, stop = [], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.append(((out / "metrics.csv").read_text(), (out / "manifest.json").exists()))
            except FileNotFoundError:
                seen.append((None, False))

    watcher = threading.Thread(target=watch)
    watcher.start()
    for i in range(1, 6):
        assert _writer(out, f"v{i}", 0).wait(60) == 0
    stop.set()
    watcher.join()
    assert seen and all(text is not None and has_manifest for text, has_manifest in seen)
    assert (out / "metrics.csv").read_text() == "v5"


def test_leftovers_not_marked_as_ours_are_never_deleted(tmp_path: Path) -> None:
    mine = tmp_path / ".out.tmp-123"
    mine.mkdir()
    (mine / "important.txt").write_text("user's")  # named like ours, but no marker inside
    with atomic_folder(tmp_path / "out") as tmp:
        own_output(tmp, "new")
    assert (mine / "important.txt").read_text() == "user's"


def test_second_run_waits_and_never_deletes_the_first_runs_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _writer(out, "first", 4)
    assert first.stdout.readline().strip() == "writing"
    tmp_first = next(tmp_path.glob(".out.tmp-*"))
    second = _writer(out, "second", 0)
    time.sleep(2)
    assert tmp_first.exists() and (tmp_first / "metrics.csv").read_text() == "first"  # untouched while it runs
    assert second.poll() is None  # waiting for the lock
    assert first.wait(60) == 0, first.stderr.read()
    assert second.wait(60) == 0, second.stderr.read()
    assert (out / "metrics.csv").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_ensemble_never_deletes_or_overwrites_user_files(tmp_path: Path, scenario: Path) -> None:
    out = tmp_path / "ens"
    out.mkdir()
    (out / "map_holiday.html").write_text("<p>mine</p>")
    (out / "manifest.json").write_text('{"mine": true}')
    before = tree_hash(out)
    proc = cli(str(scenario), "--ensemble", "2", "--workers", "1", "--out", str(out), "--quiet")
    one_error_line(proc, "not an output of this tool")
    assert tree_hash(out) == before


# --- bounded work -----------------------------------------------------------------------------


def _spec(tmp_path: Path, text: str) -> scenarios.Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return scenarios.load(path)


def test_peak_population_over_the_years_is_bounded(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "name: a\nyears: {start: 2023, end: 2024}\nparams: {scale: 1}\n")
    check_resources(spec, memory_bytes=8 << 30)  # fits at the base year and the peak
    long = _spec(tmp_path, "name: a\nyears: {start: 2000, end: 2100}\nparams: {scale: 1}\n")
    with pytest.raises(InputError, match="growing to about"):
        check_resources(long, memory_bytes=8 << 30)


def test_tiny_fund_tickets_are_refused_before_the_run(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "name: a\nlevers:\n  - {kind: vision_fund, ticket_cny: 0.01}\n")
    with pytest.raises(InputError, match=r"levers\.0\.ticket_cny: .* tickets a month"):
        check_resources(spec)
    check_resources(_spec(tmp_path, "name: a\nlevers:\n  - {kind: vision_fund}\n"))


def test_workers_are_bounded_by_cores_and_memory(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "name: a\nparams: {scale: 0.01}\n")
    check_resources(spec, workers=2, cores=2, memory_bytes=8 << 30)
    with pytest.raises(InputError, match="more than this machine's 2 cores"):
        check_resources(spec, workers=3, cores=2, memory_bytes=8 << 30)
    with pytest.raises(InputError, match="GiB at the peak"):
        check_resources(_spec(tmp_path, "name: a\nparams: {scale: 1}\n"), workers=64, cores=64, memory_bytes=8 << 30)


def test_cli_refuses_tiny_tickets_and_many_workers_quickly(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: a\nyears: {start: 2023, end: 2024}\nparams: {anchors: 0}\nlevers:\n  - {kind: vision_fund, ticket_cny: 0.01}\n")
    started = time.monotonic()
    one_error_line(cli(str(path), "--out", str(tmp_path / "o")), "tickets a month")
    path.write_text("name: a\n" + SMALL)
    one_error_line(cli(str(path), "--ensemble", "2", "--workers", "1000", "--out", str(tmp_path / "o")), "--workers")
    assert time.monotonic() - started < 120
    assert not (tmp_path / "o").exists()


def test_billion_laughs_is_refused_without_expanding(tmp_path: Path) -> None:
    rows = ["  a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("x:\n" + "\n".join(rows) + "\nname: a\nparams: {scale: *a8}\n")
    started = time.monotonic()
    with pytest.raises(InputError, match="aliases"):
        scenarios.load(path)
    assert time.monotonic() - started < 5


def test_duplicate_keys_and_yaml_12_numbers(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: a\nlevers:\n  - {kind: talent}\nlevers:\n  - {kind: parks}\n")
    with pytest.raises(InputError, match="line 4, column 1: duplicate key levers"):
        scenarios.load(path)
    assert _spec(tmp_path, "name: a\nparams: {scale: 1e-2}\n").params["scale"] == 0.01


def test_error_messages_never_repr_huge_values(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: a\nparams: {scale: [" + ", ".join(["123456789"] * 20000) + "]}\n")
    with pytest.raises(InputError) as info:
        scenarios.load(path)
    assert len(str(info.value)) < 300


def test_a_scheduler_that_never_answers_ends_with_one_line(tmp_path: Path, scenario: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    threading.Thread(target=lambda: [accepted.append(server.accept()) for _ in range(50)], daemon=True).start()
    try:
        proc = cli(str(scenario), "--ensemble", "2", "--scheduler", f"tcp://127.0.0.1:{server.getsockname()[1]}",
                   "--out", str(tmp_path / "o"), "--quiet", timeout=120)
    finally:
        server.close()
    one_error_line(proc, "cannot reach a Dask scheduler")
    assert accepted  # it did connect, and then gave up on the silence
    assert not (tmp_path / "o").exists()


def test_a_fifo_layer_file_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "water.geojson")
    path = tmp_path / "s.yaml"
    path.write_text("name: a\n" + SMALL + "layers: {water: water.geojson}\n")
    one_error_line(cli(str(path), "--out", str(tmp_path / "o"), timeout=120), "pipe (FIFO)")


# --- CSV safety -------------------------------------------------------------------------------


def test_formula_text_in_csv_is_neutralised(tmp_path: Path) -> None:
    table = pd.DataFrame({"zone": ["=HYPERLINK(\"http://x\")", "+1", "-cmd", "@SUM(A1)", "\tx", "core", None],
                          "value": [-1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    write_csv(table, tmp_path / "m.csv")
    back = pd.read_csv(tmp_path / "m.csv", encoding="utf-8-sig", keep_default_na=False)
    assert list(back["zone"][:5]) == ["'=HYPERLINK(\"http://x\")", "'+1", "'-cmd", "'@SUM(A1)", "'\tx"]
    assert back["zone"][5] == "core" and back["value"][0] == -1.0  # numbers are left as numbers


# --- geography sanity -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def window():
    import layers

    return layers.load().zones.geometry.iloc[0]


def _zone_file(tmp_path: Path, geom) -> Path:
    import geopandas as gpd

    path = tmp_path / "zone.geojson"
    gpd.GeoDataFrame({"name": ["z"]}, geometry=[geom], crs="EPSG:4326").to_file(path)
    return path


def test_zone_in_gcj02_labelled_wgs84_is_a_warning_in_the_stack(tmp_path: Path, window) -> None:
    import numpy as np

    import layers
    from layers.gcj02 import geometry_wgs84_to_gcj02

    shifted = geometry_wgs84_to_gcj02(np.array([window], dtype=object))[0]
    stack = layers.load(zone_files={"window": _zone_file(tmp_path, shifted)})
    assert len(stack.warnings) == 1 and "GCJ-02" in stack.warnings[0]
    assert layers.load(zone_files={"window": _zone_file(tmp_path, window)}).warnings == []


@pytest.mark.parametrize("case, move, message", [
    ("beijing", lambda g: __import__("shapely").affinity.translate(g, -3.8, 9.7), "outside Hangzhou"),
    ("swapped", lambda g: __import__("shapely").transform(g, lambda c: c[:, ::-1]), "look swapped"),
    ("latitude 95", lambda g: __import__("shapely").affinity.translate(g, 0, 65), "beyond the range"),
    ("no cell", lambda g: g.representative_point().buffer(0.0002), "covers no 250 m cell"),
])
def test_zone_files_in_the_wrong_place_are_errors(tmp_path: Path, window, case, move, message) -> None:
    import layers

    with pytest.raises(InputError, match=message):
        layers.load(zone_files={"window": _zone_file(tmp_path, move(window))})


def test_shipped_and_user_zones_obey_one_rule_on_cells(tmp_path: Path, window) -> None:
    """The shipped window park at 5 km cells is refused as a user's copy of it is, with the same message."""
    import layers

    with pytest.raises(InputError) as shipped:
        layers.load(cell_m=5000)
    with pytest.raises(InputError) as user:
        layers.load(cell_m=5000, zone_files={"window": _zone_file(tmp_path, window)})
    assert shipped.value.where == user.value.where == "extent"
    assert shipped.value.what == user.value.what == "zone window covers no 5000 m cell of the city (grid.cell_m); a lever on it would act on nothing"
    assert shipped.value.file.endswith("window_park.geojson") and user.value.file.endswith("zone.geojson")
    assert layers.load(cell_m=2000).zones["zone"].tolist() == ["window", "core", "four", "wide"]  # a window cell exists at 2 km


def test_a_nul_byte_in_any_layer_path_is_an_input_error() -> None:
    import layers

    for key in ("districts", "land", "water"):
        with pytest.raises(InputError, match="the path holds a NUL byte") as caught:
            layers.load(**{key: f"gis_data/{key}\0.geojson"})
        assert "\0" not in str(caught.value) and "\\x00" in str(caught.value)


# --- silent coercions and silent wrong answers --------------------------------------------------


def test_parameter_overrides_take_numbers_by_the_one_rule() -> None:
    """Python API and scenario alike: a count is an int, a number is not a bool or text, and both are finite."""
    from twin.engine.params import Params

    params = Params()
    for name, value, message in (("candidates", 16.0, "must be a whole number written without a decimal point, got 16.0"),
                                 ("candidates", True, "must be a whole number, got True"),
                                 ("growth_mu", False, "must be a number, got False"),
                                 ("scale", "0.01", "must be a number, got '0.01'"),
                                 ("scale", float("inf"), "must be a finite number, got inf")):
        with pytest.raises(InputError) as caught:
            params.with_overrides({name: value})
        assert (caught.value.where, caught.value.what) == (name, message)
    assert params.with_overrides({"candidates": 32, "scale": 1}).candidates == 32


def test_neighbourhood_must_be_a_whole_number_of_cells() -> None:
    from twin.engine.params import Params

    assert Params(neighbourhood_m=1000.0).coarse_factor(250.0) == 4 and Params(neighbourhood_m=500.0).coarse_factor(500.0) == 1
    for neighbourhood, cell in ((100.0, 250.0), (1000.0, 300.0), (1000.0, 5000.0)):
        with pytest.raises(InputError, match="is not a whole multiple of the"):
            Params(neighbourhood_m=neighbourhood).coarse_factor(cell)


def test_a_one_year_fund_from_the_base_year_invests_its_whole_total(stack) -> None:
    """deploy_years 1 from 2023 (the base year) is carried into 2024: the whole fund is spent, as docs/levers.md says."""
    import numpy as np

    from twin.policy.levers import VisionFund
    from twin.simulation.run import simulate

    fund = VisionFund(kind="vision_fund", start_year=2023, deploy_years=1, total_cny=3e9)
    tranches = [fund.tranche(year, first=2024) for year in range(2020, 2031)]
    assert tranches == [0.0] * 4 + [3e9] + [0.0] * 6
    two = VisionFund(kind="vision_fund", start_year=2023, deploy_years=2, total_cny=3e9)
    assert two.tranche(2024, first=2024) == 3e9 and two.tranche(2025, first=2024) == 0.0
    later = VisionFund(kind="vision_fund", start_year=2025, deploy_years=1, total_cny=3e9)
    assert later.tranche(2024, first=2024) == 0.0 and later.tranche(2025, first=2024) == 3e9
    spec = scenarios.Scenario(name="fund", years={"start": 2023, "end": 2024}, params={"scale": 0.003, "anchors": 0, "fund_deployment_share": 1.0},  # the plan in full
                              levers=[{"kind": "vision_fund", "deploy_years": 1, "ticket_cny": 1e5, "credit_ratio": 0}])
    metrics = simulate(spec, 5, stack=stack).metrics
    spent = metrics.query("level == 'lever' and metric == 'spend_cny'")["value"].sum()
    expected = 3e9 * 0.003  # about 90 tickets of 1e5 (Poisson: sd about 10 %)
    assert 0.6 * expected < spent < 1.4 * expected, spent
    assert np.isfinite(spent)


def test_a_title_with_dollars_is_drawn_as_written() -> None:
    """A title like "$5 bn \\frac{fund}" is text, not mathtext: the fan chart saves and shows the dollars literally."""
    import io

    import pandas as pd

    from twin.outputs.charts import _fan

    title = "$5 bn $\\frac{fund"
    spec = scenarios.Scenario(name="dollars", title={"zh": title, "en": title})
    rows = pd.DataFrame({"year": [2024, 2025], "level": "city", "metric": "firms", "mean": [10.0, 12.0],
                         "p5": [8.0, 9.0], "p50": [10.0, 12.0], "p95": [12.0, 15.0]})
    fig = _fan(rows, "firms", spec, 1, 2, [{}])
    fig.savefig(io.BytesIO(), format="png")
    text = fig.axes[0].title
    shown, is_math = text._preprocess_math(text.get_text())
    assert not is_math and shown.startswith(f"{title} · {title}\n")
