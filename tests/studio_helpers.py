"""A real studio server in a subprocess, and urllib calls to it, for the studio's API and page tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from conftest import tiny_baseline

REPO = Path(__file__).resolve().parent.parent


def tiny_city(folder: Path) -> Path:
    """``folder/tiny.yaml``: the baseline's levers on a city of scale 0.003 over 2024 alone."""
    path = tiny_baseline(folder, 0.003)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["years"] = {"start": 2023, "end": 2024}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class Server:
    """``run_scenario.py --studio`` on a free port, in ``folder``; its first lines say where it listens."""

    def __init__(self, folder: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen([sys.executable, str(REPO / "run_scenario.py"), "--studio", *args, "--port", "0", "--no-browser"],
                                        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = [self.process.stdout.readline() for _ in range(2 if "--host" in args else 1)]
        assert self.lines[0].startswith("studio: http://"), self.lines + [self.process.stderr.read() if self.process.poll() is not None else ""]
        url = self.lines[0].split()[1]
        self.base = url[:url.index("/", len("http://"))]
        self.url = url

    def call(self, path: str, body: dict | bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        """(status, body) of a GET, or of a POST of ``body`` (JSON unless bytes)."""
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {}, method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
        """(status, JSON answer)."""
        status, raw = self.call(path, body, headers)
        return status, json.loads(raw)

    def finished(self, job_id: str, headers: dict | None = None, timeout: float = 600) -> dict:
        """The run's status once it is done (or failed, or cancelled)."""
        deadline = time.monotonic() + timeout
        while True:
            status, data = self.json(f"/api/runs/{job_id}", headers=headers)
            assert status == 200, data
            if data["status"] in ("done", "failed", "cancelled") or time.monotonic() > deadline:
                return data
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the server (it is ours) and wait for it."""
        self.process.terminate()
        self.process.communicate(timeout=30)


def cli_metrics(folder: Path, scenario: Path, seed: int | None) -> bytes:
    """``metrics.csv`` as ``run_scenario.py SCENARIO [--seed SEED]`` writes it."""
    out = folder / f"cli_{scenario.stem}_{seed}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seeded = ["--seed", str(seed)] if seed is not None else []
    done = subprocess.run(check=False, args=[sys.executable, str(REPO / "run_scenario.py"), str(scenario), *seeded, "--out", str(out), "--quiet"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return (out / "metrics.csv").read_bytes()
