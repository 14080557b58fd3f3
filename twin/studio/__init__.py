"""The what-if studio: ``python run_scenario.py --studio [SCENARIO]`` serves a local, offline page to change levers
and see the city answer against the baseline, on the command line's own run path (README "The studio")."""

from __future__ import annotations

import secrets
import sys
import tempfile
import webbrowser
from pathlib import Path

from layers import InputError

from ..policy import scenario as scenarios
from ..policy.resources import check_resources
from .inputs import offered
from .jobs import Studio
from .server import StudioServer, is_loopback


def serve(scenario: str | None, host: str, port: int, open_browser: bool) -> int:
    """Serve the studio until Ctrl-C; off loopback every request needs the token printed here."""
    if not 0 <= port <= 65535:
        raise InputError("arguments", "--port", f"must be from 0 to 65535, got {port}")
    start = scenarios.load(scenario or "baseline")
    check_resources(start)
    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="vv-studio-") as work:
        try:
            server = StudioServer((host, port), Studio(Path(work)), token, offered(start))
        except OSError as exc:
            raise InputError("arguments", "--host/--port", f"cannot listen on {host}:{port} ({exc.strerror})") from None
        name = f"{'[' + host + ']' if ':' in host else host}:{server.server_address[1]}"
        url = f"http://{name}/" + (f"?token={token}" if token else "")
        print(f"studio: {url}", flush=True)
        if token:
            print(f"studio: listening on {host}, not loopback: every request needs the token {token}", flush=True)
        print("studio: the first run warms the compiled kernels (a minute or two in a fresh install); Ctrl-C stops", flush=True)
        if open_browser:
            webbrowser.open(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("studio: stopped", file=sys.stderr)
        finally:
            server.server_close()
    return 0
