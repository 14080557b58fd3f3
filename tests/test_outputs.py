"""One way to write each kind of output (issue 23) and no data lost or stuck (issue 27).

Every study runs once at a tiny scale (a scenario named ``-vv`` with a zone
called ``=HYPERLINK(1)``, both text a spreadsheet would run as a formula); the
tests then read what each wrote: every CSV has a BOM and no live formula,
every manifest has the tool's marker, versions, commit, command and per-run
record, and the files it lists are exactly the folder's. Structural checks
make sure no module writes around the shared writers.
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.outputs.folder import PARTIAL, atomic_file, write_file
from twin.outputs.tables import FORMULA_STARTS
from twin.studies.members import read_member
from twin.studies.seeds import member_seeds

ROOT = Path(__file__).resolve().parent.parent
ZONE = "=HYPERLINK(1)"
NAME = "-vv"
SEED = 3
CSV_WRITERS = {"twin/outputs/writer.py", "twin/studies/compare.py", "twin/studies/ensemble.py", "twin/studies/attribution.py",
               "twin/studies/seek.py", "twin/studies/validation.py", "twin/studies/sensitivity.py"}
"""Every module that writes a CSV (through write_csv); the studies below run each of them."""


def cli(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_scenario.py"), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    """A tiny scenario whose name and one zone id start like spreadsheet formulas."""
    folder = tmp_path_factory.mktemp("scenario")
    zones = pd.read_csv(ROOT / "gis_data" / "zones.csv", keep_default_na=False)
    zones.loc[zones["zone"] == "window", "zone"] = ZONE
    zones.loc[zones["file"] != "", "file"] = str(ROOT / "gis_data" / "window_park.geojson")
    zones.to_csv(folder / "zones.csv", index=False)
    path = folder / "f.yaml"
    path.write_text(f"name: {NAME}\nyears: {{start: 2023, end: 2024}}\nparams: {{scale: 0.002, anchors: 0}}\n"
                    "layers: {zones: zones.csv}\nlevers:\n  - {kind: talent}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def studies(scenario, tmp_path_factory) -> dict[str, Path]:
    """Every study of the command line, once; the ensemble is written into a copy of the single run's folder."""
    root = tmp_path_factory.mktemp("studies")
    out = {kind: root / kind for kind in ("run", "compare", "ensemble", "attribution", "seek")}
    commands = {
        "run": ["--seed", SEED],
        "compare": ["--compare", scenario, "--seed", SEED],
        "ensemble": ["--ensemble", 2, "--workers", 1, "--seed", SEED],
        "attribution": ["--attribute", "--ensemble", 1, "--workers", 1, "--seed", SEED],
        "seek": ["--seek", "--trials", 1, "--ensemble", 1, "--workers", 1, "--seed", SEED],
    }
    for kind, extra in commands.items():
        if kind == "ensemble":
            shutil.copytree(out["run"], out["ensemble"])  # an ensemble over an earlier single run's folder
        done = cli(scenario, *extra, "--quiet", "--out", out[kind])
        assert done.returncode == 0, f"{kind}: {done.stderr[-3000:]}"
    return out


# --- one atomic writer ------------------------------------------------------------------------


def test_atomic_file_replaces_whole_or_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("old")
    with pytest.raises(OSError), atomic_file(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv" and tmp.name.startswith(".table.tmp-")
        tmp.write_text("half of the new")
        raise OSError(28, "No space left on device")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
    write_file(path, "new ü")
    assert path.read_bytes() == "new ü".encode() and sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
import numpy as np
import layers
from twin.outputs.rasters import write_geotiff
grid = layers.load().grid
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))  # writes past 20 kB fail, as on a full disk
write_geotiff(grid, Path(sys.argv[1]) / "x.tif", {"a": np.random.default_rng(0).random(grid.shape, dtype=np.float32)})
"""


def test_a_geotiff_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """layers/grid.py's writer left ``.x.tif.tmp`` behind; the raster writer now goes through atomic_file."""
    (tmp_path / "x.tif").write_bytes(b"old raster")
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1 and "Write failed" in proc.stderr, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.tif"] and (tmp_path / "x.tif").read_bytes() == b"old raster"


WRITES = {"to_csv": "twin/outputs/tables.py", "to_parquet": "twin/outputs/tables.py", "savefig": "twin/outputs/charts.py",
          "write_text": None, "write_bytes": "twin/outputs/folder.py", "os.replace": "twin/outputs/folder.py",
          "os.rename": "twin/outputs/folder.py", "shutil.move": None, "json.dump": None, "savez": None, "to_file": None}
"""Calls that write a file, and the one module allowed each (None: nowhere; the shared writers cover it)."""


def writes_around_the_shared_writers(source: str, module: str) -> list[str]:
    """The calls in ``source`` that write a file outside the module that owns that kind of write."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            call = next((c for c in (f"{owner}.{node.func.attr}", node.func.attr) if c in WRITES), None)
            if call is not None and WRITES[call] != module:
                found.append(f"{module}:{node.lineno}: {call}(")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            mode = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else "r"
            if any(c in mode for c in "wax+") and not (module == "twin/studies/resume.py" and mode == "a+"):  # the lock file
                found.append(f"{module}:{node.lineno}: open(..., {mode!r})")
    return found


def test_no_module_writes_around_the_atomic_and_csv_writers() -> None:
    found = []
    for package in ("twin", "layers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = path.relative_to(ROOT).as_posix()
            found += writes_around_the_shared_writers(path.read_text(encoding="utf-8"), module)
    assert found == []
    # The check has teeth: the raw writes issue 23 found are reported.
    assert writes_around_the_shared_writers("table.to_csv(staging / 'attribution.csv')\nos.replace(tmp, path)\n",
                                            "twin/studies/attribution.py") == [
        "twin/studies/attribution.py:1: to_csv(", "twin/studies/attribution.py:2: os.replace("]


# --- one CSV writer ---------------------------------------------------------------------------


def test_every_csv_writer_is_run_by_these_tests() -> None:
    """A new CSV writer must join the list (and so the checks below)."""
    callers = set()
    for package in ("twin", "layers"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == "write_csv" for n in ast.walk(tree)):
                callers.add(path.relative_to(ROOT).as_posix())
    assert callers == CSV_WRITERS


def _check_csv(path: Path) -> pd.DataFrame:
    """A BOM, and no cell that a spreadsheet would run: text starting like a formula is quoted, numbers are numbers."""
    assert path.read_bytes().startswith(codecs.BOM_UTF8), f"{path.name} has no BOM"
    table = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False, dtype=str)
    for column in table.columns:
        assert not str(column).startswith(FORMULA_STARTS), (path.name, column)
        for cell in table[column]:
            if cell.startswith(FORMULA_STARTS):
                float(cell)  # a negative number, or a live formula (ValueError)
    return table


def test_every_csv_of_every_study_has_a_bom_and_no_live_formula(studies, tmp_path, monkeypatch) -> None:
    found = {kind: sorted(folder.rglob("*.csv")) for kind, folder in studies.items()}
    found["validate"], found["sensitivity"] = [_run_validate(tmp_path, monkeypatch)], [_run_sensitivity(tmp_path, monkeypatch)]
    names = {path.name for paths in found.values() for path in paths}
    assert names == {"metrics.csv", "comparison.csv", "ensemble_metrics.csv", "attribution.csv", "pareto.csv",
                     "validation.csv", "sensitivity.csv"}
    for paths in found.values():
        for path in paths:
            table = _check_csv(path)
            if "zone" in table.columns and path.name != "pareto.csv":
                assert f"'{ZONE}" in set(table["zone"]), path
            if "scenario" in table.columns:
                assert set(table["scenario"]) == {f"'{NAME}"}, path
    assert "'=1+1" in set(pd.read_csv(found["validate"][0], encoding="utf-8-sig")["figure"])


def _run_validate(tmp_path: Path, monkeypatch) -> Path:
    """python -m twin.studies.validation's writer, with the hindcast replaced by a one-row table."""
    import twin.studies.validation as validation

    table = pd.DataFrame({"figure": ["=1+1"], "year": [2021], "published": [1.0], "model": [1.0], "model_sd": [0.0],
                          "rel_error": [0.0], "within": [True]})
    table.attrs["params"] = {}
    monkeypatch.setattr(validation, "validate", lambda seeds, scale, calibration=None: table)
    monkeypatch.setattr(validation, "leader_growth", lambda seeds, scale: [0.1])
    validation.main(["--seeds", "1", "--out", str(tmp_path / "validation.csv")])
    return tmp_path / "validation.csv"


def _run_sensitivity(tmp_path: Path, monkeypatch) -> Path:
    """python -m twin.studies.sensitivity's writer, with the Morris screening replaced by a two-row table."""
    import twin.studies.cluster
    import twin.studies.sensitivity as sensitivity

    table = pd.DataFrame({"output": ["=cmd", "x"], "parameter": ["a", "b"], "mu_star": [1.0, 2.0], "mu": [1.0, -2.0],
                          "sigma": [0.1, 0.2], "mu_star_rel": [0.1, 0.2], "rank": [2, 1]})
    monkeypatch.setattr(twin.studies.cluster, "dask_client", lambda *a: contextlib.nullcontext())
    monkeypatch.setattr(sensitivity, "morris", lambda client, r, scale, progress, calibration=None, **_: table)
    assert sensitivity.main(["--trajectories", "2", "--out", str(tmp_path / "docs")]) == 0
    return tmp_path / "docs" / "sensitivity.csv"


# --- one manifest builder ---------------------------------------------------------------------


def test_every_study_has_the_same_manifest_core_listing_exactly_its_files(studies) -> None:
    kinds = {"run": "run", "compare": "compare", "ensemble": "ensemble", "attribution": "attribution", "seek": "seek"}
    for study, folder in studies.items():
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["tool"] == "vision-valley-twin" and manifest["kind"] == kinds[study], study
        assert manifest["versions"]["numpy"] and manifest["versions"]["python"] and "git_commit" in manifest, study
        assert manifest["command"][0].endswith("run_scenario.py") and "--quiet" in manifest["command"], study
        for run in manifest["runs"]:
            assert run["scenario"]["name"] == NAME and isinstance(run["seed"], int), study
            assert run["inputs_sha256"]["scenario"] and run["inputs_sha256"]["zones"], study
        on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.is_relative_to(folder / "members"))
        assert manifest["files"] == on_disk, study
    assert [run["seed"] for run in json.loads((studies["compare"] / "manifest.json").read_text())["runs"]] == [SEED, SEED]


def test_an_ensemble_over_a_single_runs_folder_leaves_none_of_its_files(studies) -> None:
    names = {p.name for p in studies["ensemble"].iterdir()}
    assert not names & {"metrics.csv", "firms.parquet", "density.tif"}
    assert {"ensemble_metrics.csv", "targets.json", "probability.tif", "map.html", "manifest.json", "members"} <= names
    assert not [p for p in studies["ensemble"].parent.iterdir() if p.name.startswith(".")]  # no temporary folders beside it


# --- user files, links and killed writes ------------------------------------------------------


@pytest.mark.parametrize("added", ["my_analysis.xlsx", "notes/n.txt", "-vv_a/mine.txt", "members/notes.txt"])
def test_a_rerun_refuses_a_folder_holding_a_users_file_and_keeps_it(studies, scenario, tmp_path, added) -> None:
    """The contract chosen: refuse before any work (one line, status 2); the user's file is never touched."""
    kind = "compare" if added.startswith("-vv_a") else "ensemble" if added.startswith("members") else "run"
    out = tmp_path / kind
    shutil.copytree(studies[kind], out)
    (out / added).parent.mkdir(exist_ok=True)
    (out / added).write_bytes(b"a user's work")
    before = sorted((p.relative_to(out).as_posix(), p.read_bytes()) for p in out.rglob("*") if p.is_file())
    extra = {"run": [], "compare": ["--compare", scenario], "ensemble": ["--ensemble", 2, "--workers", 1]}[kind]
    started = time.monotonic()
    proc = cli(scenario, *extra, "--seed", SEED, "--quiet", "--out", out)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: ") and added.split("/")[0] in proc.stderr and "did not write" in proc.stderr
    assert time.monotonic() - started < 60  # refused before any work
    assert sorted((p.relative_to(out).as_posix(), p.read_bytes()) for p in out.rglob("*") if p.is_file()) == before
    if added == "my_analysis.xlsx":  # moved out, the same rerun goes ahead
        (out / added).rename(tmp_path / added)
        assert cli(scenario, *extra, "--seed", SEED, "--quiet", "--out", out).returncode == 0
        assert (tmp_path / added).read_bytes() == b"a user's work"


def test_an_output_of_an_earlier_version_without_a_file_list_is_refused_not_guessed(tmp_path) -> None:
    from layers import InputError
    from twin.outputs.folder import check_target

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.csv").write_text("old")
    (tmp_path / "old" / "manifest.json").write_text('{"tool": "vision-valley-twin"}')
    with pytest.raises(InputError, match="earlier version of this tool"):
        check_target(tmp_path / "old")
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["manifest.json", "metrics.csv"]


def test_a_members_folder_that_is_a_symbolic_link_is_refused_and_never_followed(studies, scenario, tmp_path) -> None:
    users = tmp_path / "users_folder"
    users.mkdir()
    (users / "p0000_m000000.npz").write_bytes(b"the user's own file")
    (users / "fingerprint.json").write_text("{}")
    for resume in ([], ["--resume"]):
        out = tmp_path / f"ens{len(resume)}"
        shutil.copytree(studies["ensemble"], out, ignore=shutil.ignore_patterns("members"))
        (out / "members").symlink_to(users)
        proc = cli(scenario, "--ensemble", 2, "--workers", 1, "--seed", SEED, *resume, "--quiet", "--out", out)
        assert proc.returncode == 2 and "symbolic link" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert sorted(p.name for p in users.iterdir()) == ["fingerprint.json", "p0000_m000000.npz"]
        assert (users / "p0000_m000000.npz").read_bytes() == b"the user's own file" and (users / "fingerprint.json").read_text() == "{}"


def test_the_member_store_refuses_a_link_from_the_python_api(tmp_path) -> None:
    from layers import InputError
    from twin.studies.resume import OutputLock

    (tmp_path / "users").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "members").symlink_to(tmp_path / "users")
    with pytest.raises(InputError, match="symbolic link"), OutputLock(tmp_path / "out", tmp_path / "out" / "members"):
        pass
    assert list((tmp_path / "users").iterdir()) == []


def test_an_ensemble_killed_while_writing_keeps_the_old_output_and_resumes(studies, scenario, tmp_path) -> None:
    out = tmp_path / "ens"
    shutil.copytree(studies["ensemble"], out)
    old = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_scenario.py"), str(scenario), "--ensemble", "2", "--workers", "1",
                             "--seed", str(SEED), "--resume", "--quiet", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not [p for p in tmp_path.glob(".ens.tmp-*") if (p / PARTIAL).exists()]:  # writing its outputs aside
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the ensemble never started writing"
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == old  # the old output, whole
    resumed = cli(scenario, "--ensemble", 2, "--workers", 1, "--seed", SEED, "--resume", "--quiet", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    execution = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["execution"]
    assert execution["resumed_members"] == 2 and execution["run_members"] == 0  # the members were kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens"]


# --- member checksums -------------------------------------------------------------------------


def _rewrite(path: Path, change) -> None:
    """Load a member file's arrays, let ``change`` edit them (meta as an object), save them back as the tool would."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta = change(arrays, meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(path, **arrays)


def _times_1000(arrays, meta):
    arrays["value"] = arrays["value"] * 1000
    return meta


TAMPERING = {
    "values x1000, valid token": _times_1000,
    "seconds null": lambda arrays, meta: meta | {"seconds": None},
    "meta a list": lambda arrays, meta: list(meta.items()),
    "string years": lambda arrays, meta: (arrays.update(year=arrays["year"].astype(str), grid_years=arrays["grid_years"].astype(str))
                                          or meta | {"target_year": str(meta["target_year"])}),
    "target year a boolean": lambda arrays, meta: meta | {"target_year": True},
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_a_tampered_member_is_rejected(studies, tmp_path, case) -> None:
    member = tmp_path / "p0000_m000000.npz"
    shutil.copy(studies["ensemble"] / "members" / member.name, member)
    fingerprint = json.loads((studies["ensemble"] / "members" / "fingerprint.json").read_text())
    expected = {"token": fingerprint["token"], "point": 0, "member": 0, "seed": member_seeds(SEED, 2)[0],
                "shape": tuple(fingerprint["grid_shape"]), "years": [2023, 2024]}
    assert read_member(member, **expected).values.size  # the untouched file is accepted
    _rewrite(member, TAMPERING[case])
    with pytest.raises(ValueError):
        read_member(member, **expected)


def test_resume_runs_a_tampered_member_again_and_gives_the_same_bytes(studies, scenario, tmp_path) -> None:
    out = tmp_path / "ens"
    shutil.copytree(studies["ensemble"], out)
    _rewrite(out / "members" / "p0000_m000001.npz", _times_1000)
    resumed = cli(scenario, "--ensemble", 2, "--workers", 1, "--seed", SEED, "--resume", "--quiet", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    execution = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["execution"]
    assert execution["resumed_members"] == 1 and execution["run_members"] == 1
    for name in ("ensemble_metrics.csv", "targets.json", "probability.tif"):
        assert (out / name).read_bytes() == (studies["ensemble"] / name).read_bytes(), name
