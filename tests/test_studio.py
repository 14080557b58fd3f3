"""The studio's JSON API, driven over HTTP against a real ``run_scenario.py --studio`` process on a tiny city."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import urllib.request
import zipfile

import pandas as pd
import pytest
import yaml
from studio_helpers import REPO, Server, cli_metrics

from twin.engine.targets import TARGETS_2027
from twin.studio.inputs import MAX_BODY


def _without_vouchers(studio_folder) -> str:
    """The tiny city with the compute vouchers switched off (dropped from the levers)."""
    data = yaml.safe_load((studio_folder / "tiny.yaml").read_text(encoding="utf-8"))
    data["name"] = "tiny_no_vouchers"
    data["levers"] = [lever for lever in data["levers"] if lever["kind"] != "compute_vouchers"]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def test_a_bad_scenario_answers_400_with_the_command_lines_one_line(studio_server, studio_folder, tmp_path):
    text = "name: bad\nlevers:\n  - {kind: compute_vouchers, budget_cny_per_year: lots}\n"
    status, data = studio_server.json("/api/runs", {"scenario_yaml": text, "seed": 1, "members": 1})
    assert status == 400 and "\n" not in data["error"]
    (tmp_path / "studio.yaml").write_text(text, encoding="utf-8")
    cli = subprocess.run(check=False, args=[sys.executable, str(REPO / "run_scenario.py"), "studio.yaml"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert cli.returncode == 2 and cli.stderr == f"error: {data['error']}\n"
    assert data["error"].startswith("studio.yaml: levers.0.budget_cny_per_year: ")
    good = (studio_folder / "tiny.yaml").read_text(encoding="utf-8")
    for body, start in (({"scenario_yaml": good, "members": 9}, "arguments: members: must be a whole number from 1 to 8"),
                        ({"scenario_yaml": good, "seed": -1}, "arguments: seed: "),
                        ({"scenario_yaml": good.replace("grid:", "layers: {districts: /etc/passwd}\ngrid:")}, "studio.yaml: layers: "),
                        ({"scenario_yaml": "extends: ../../etc/passwd\nname: x\n"}, "studio.yaml: extends: must name a scenario")):
        status, data = studio_server.json("/api/check", body)
        assert status == 400 and data["error"].startswith(start), data


def test_an_oversized_body_is_refused_unread(studio_server):
    status, data = studio_server.json("/api/runs", b"x" * (MAX_BODY + 1), headers={"Content-Type": "application/json"})
    assert status == 413 and "at most" in data["error"]


def test_a_run_is_the_command_lines_run_paired_with_the_baseline_and_cached(studio_server, studio_folder):
    text = _without_vouchers(studio_folder)
    session = {"Cookie": "vv_session=first"}
    status, data = studio_server.json("/api/runs", {"scenario_yaml": text, "seed": 3, "members": 1}, headers=session)
    assert status == 202 and data["status"] in ("queued", "running")
    done = studio_server.finished(data["id"], headers=session)
    assert done["status"] == "done", done
    # metrics.csv: the very bytes run_scenario.py writes for that scenario and seed
    status, studio_bytes = studio_server.call(f"/api/runs/{data['id']}/metrics.csv", headers=session)
    (studio_folder / "no_vouchers.yaml").write_text(text, encoding="utf-8")
    assert status == 200 and studio_bytes == cli_metrics(studio_folder, studio_folder / "no_vouchers.yaml", 3)
    # the figures: the scenario's own final-year revenue, the baseline's on the same seed, and their difference
    metrics = pd.read_csv(io.BytesIO(studio_bytes), encoding="utf-8-sig")
    revenue = metrics[(metrics["level"] == "city") & (metrics["metric"] == "revenue_cny") & (metrics["year"] == 2024)]["value"].item()
    figures = done["figures"]
    head = {row["metric"]: row for row in figures["headline"]}
    assert head["revenue_cny"]["scenario"] == pytest.approx(revenue)
    assert head["revenue_cny"]["difference"] == pytest.approx(revenue - head["revenue_cny"]["baseline"])
    assert head["revenue_cny"]["ci90_low"] is None, "one seed has no interval"
    assert "compute_vouchers#0" not in {row["lever"] for row in figures["spend"]}
    assert figures["extra_spend_cny"] < 0, "switching the vouchers off spends less than the baseline"
    scale = yaml.safe_load(text)["params"]["scale"]  # a scaled city's gauges: full-city estimates against the absolute targets
    assert {g["metric"]: g["target"] for g in figures["targets"]} == {m: t for m, (t, _) in TARGETS_2027.items()}
    city = metrics[(metrics["level"] == "city") & (metrics["year"] == 2024)].set_index("metric")["value"]
    gauge = {g["metric"]: g["value"] for g in figures["targets"]}
    anchors = city["anchor_revenue_cny"]
    assert gauge["revenue_cny"] == pytest.approx(anchors + (revenue - anchors) / scale) and gauge["revenue_cny"] > revenue
    # the same request again is answered from the cache at once; another session cannot see the run
    started = time.monotonic()
    status, again = studio_server.json("/api/runs", {"scenario_yaml": text, "seed": 3, "members": 1}, headers=session)
    assert again["status"] == "done" and again["cached"] and again["figures"] == figures and time.monotonic() - started < 5
    assert studio_server.json(f"/api/runs/{data['id']}", headers={"Cookie": "vv_session=second"})[0] == 404
    # the export is the run studio_folder as the command line writes it
    status, raw = studio_server.call(f"/api/runs/{data['id']}/export.zip", headers=session)
    names = set(zipfile.ZipFile(io.BytesIO(raw)).namelist())
    assert {"metrics.csv", "firms.parquet", "density.tif", "map.html", "manifest.json"} <= names
    assert zipfile.ZipFile(io.BytesIO(raw)).read("metrics.csv") == studio_bytes


def test_a_scenario_with_the_baselines_levers_is_its_own_baseline_run_once(studio_server, studio_folder):
    status, data = studio_server.json("/api/runs", {"scenario_yaml": (studio_folder / "tiny.yaml").read_text(encoding="utf-8"), "seed": 5})
    assert status == 202
    done = studio_server.finished(data["id"])
    assert done["status"] == "done" and all(row["difference"] == 0 for row in done["figures"]["headline"])
    maps = [studio_server.call(f"/api/runs/{data['id']}/map/{view}.html")[1] for view in ("scenario", "baseline")]
    assert maps[0] == maps[1] and b"Content-Security-Policy" in maps[0], "one run, one studio_folder, shown as both"


def test_paired_members_give_intervals_around_the_difference(studio_server, studio_folder):
    text = _without_vouchers(studio_folder)
    status, data = studio_server.json("/api/runs", {"scenario_yaml": text, "seed": 3, "members": 2})
    assert status == 202
    done = studio_server.finished(data["id"])
    assert done["status"] == "done" and done["figures"]["members"] == 2
    head = {row["metric"]: row for row in done["figures"]["headline"]}["total_scale_cny"]
    assert head["ci90_low"] <= head["difference"] <= head["ci90_high"]
    assert head["ci90_low"] < head["ci90_high"], "two pairs that differ give an interval of some width"


def test_a_sessions_new_request_cancels_its_waiting_one_and_says_so(studio_server, studio_folder):
    text = (studio_folder / "tiny.yaml").read_text(encoding="utf-8")
    session = {"Cookie": "vv_session=impatient"}
    ids = [studio_server.json("/api/runs", {"scenario_yaml": text, "seed": seed}, headers=session)[1]["id"] for seed in (11, 12, 13)]
    last = studio_server.finished(ids[2], headers=session)
    assert last["status"] == "done" and last["seed"] == 13
    status, middle = studio_server.json(f"/api/runs/{ids[1]}", headers=session)
    assert status == 200 and middle["status"] == "cancelled" and "newer request" in middle["message"]
    assert studio_server.finished(ids[0], headers=session)["status"] in ("done", "cancelled")


def test_off_loopback_every_request_needs_the_printed_token(studio_folder):
    studio_server = Server(studio_folder, "tiny.yaml", "--host", "0.0.0.0")
    try:
        token = studio_server.lines[1].split()[-1]
        assert "not loopback" in studio_server.lines[1] and studio_server.url.endswith(f"?token={token}")
        assert studio_server.call("/")[0] == 403
        assert studio_server.call("/api/scenarios")[0] == 403
        assert studio_server.call("/api/scenarios", headers={"Authorization": "Bearer wrong"})[0] == 403
        assert studio_server.call("/api/scenarios", headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert studio_server.call(f"/?token={token}")[0] == 200
    finally:
        studio_server.stop()


@pytest.mark.parametrize("port", ["70000", "http"])
def test_a_bad_port_is_one_error_line_and_status_2(port):
    done = subprocess.run(check=False, args=[sys.executable, str(REPO / "run_scenario.py"), "--studio", "--port", port, "--no-browser"], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("error: arguments: "), done.stderr
    assert "--port" in done.stderr and not done.stdout


def test_studio_flags_go_with_studio_and_studio_goes_alone(tmp_path, capsys):
    from twin import cli

    assert cli.main(["--no-browser"]) == 2
    assert capsys.readouterr().err == "error: arguments: --port/--host/--no-browser: go with --studio\n"
    assert cli.main(["--studio", "--compare", "baseline"]) == 2
    assert capsys.readouterr().err.startswith("error: arguments: --studio: serves the studio alone")


def test_the_page_and_its_files_carry_the_content_security_policy(studio_server):
    for path in ("/", "/static/studio.js", "/api/scenarios"):
        request = urllib.request.Request(studio_server.base + path)
        with urllib.request.urlopen(request, timeout=60) as response:
            policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "http" not in policy
    assert studio_server.call("/static/../../pyproject.toml")[0] == 404
    assert studio_server.call("/api/scenarios", headers={"Host": "rebound.example:80"})[0] == 403, "DNS rebinding"
    assert studio_server.call("/api/scenarios", headers={"Host": "localhost"})[0] == 200
