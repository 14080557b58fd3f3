"""The studio's HTTP server: the page, its static files, and the JSON API the page (and scripts) use.

Standard-library ``http.server`` only: the API is a handful of routes, and the
map is the project's own self-contained offline page, so no web framework earns
its place. Safe by default: it binds to loopback; on any other address every
request needs the access token printed at start (a ``token`` query parameter
once, then the cookie it sets, or an ``Authorization: Bearer`` header). Bodies
are bounded (:data:`twin.studio.inputs.MAX_BODY`), no path is taken from a request (files
are looked up by run id and a fixed set of names), and every page carries a
Content-Security-Policy that admits only the studio's own files.

API (README "The studio"):

- ``POST /api/runs`` ``{"scenario_yaml", "seed", "members"}`` -> ``{"id"}``; bad input: 400 ``{"error": "<one line>"}``
- ``POST /api/check`` the same body -> ``{"ok": true}`` or the same 400, running nothing
- ``GET /api/runs/{id}`` -> status, progress and, when done, the figures against the baseline
- ``GET /api/runs/{id}/metrics.csv``, ``/export.zip``, ``/scenario.yaml``, ``/map/{scenario|baseline|difference}.html``
- ``GET /api/scenarios``, ``GET /api/schema``
"""

from __future__ import annotations

import hmac
import http.cookies
import io
import ipaddress
import json
import re
import secrets
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from layers import InputError

from .inputs import MAX_BODY, known_scenarios, read_body, scenario_of
from .jobs import Busy, Studio
from .schema import schema

STATIC = {"studio.js": "text/javascript", "studio.css": "text/css", "studio.html": "text/html"}
"""The only files served from the package's static folder."""

PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
            "frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""The page's policy: its own script, style, API and map frames, nothing else."""

_RUN = re.compile(r"^/api/runs/([A-Za-z0-9_-]{1,40})(?:/(metrics\.csv|export\.zip|scenario\.yaml|map/(scenario|baseline|difference)\.html))?$")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StudioServer(ThreadingHTTPServer):
    """The HTTP server with its studio and, off loopback, its access token."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], studio: Studio, token: str | None, start: dict) -> None:
        super().__init__(address, Handler)
        self.studio = studio
        self.token = token
        self.start = start  # the scenario the studio was started with, as the page edits it


class Handler(BaseHTTPRequestHandler):
    """One request: check the token, route, answer JSON or a file."""

    server: StudioServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:
        """Quiet: the terminal shows the URL and errors, not every request."""

    def do_GET(self) -> None:
        """Pages, static files, run status and run files."""
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            return self._static("studio.html", cookie=True)
        if path.startswith("/static/") and path[len("/static/"):] in STATIC:
            return self._static(path[len("/static/"):])
        if path == "/favicon.ico":
            return self._send(204, b"", "image/x-icon")
        if path == "/api/scenarios":
            return self._json(200, {"start": self.server.start, "scenarios": known_scenarios()})
        if path == "/api/schema":
            return self._json(200, schema())
        match = _RUN.match(path)
        job = self.server.studio.get(match.group(1), self._session()) if match else None
        if job is None:
            return self._json(404, {"error": "no such run in this session"})
        if match.group(2) is None:
            return self._json(200, job.view(self.server.studio.ahead(job)))
        if job.status != "done":
            return self._json(409, {"error": f"the run is {job.status}"})
        name = match.group(2)
        if name == "scenario.yaml":
            return self._send(200, job.yaml.encode("utf-8"), "application/yaml; charset=utf-8", download=f"{job.spec.name}.yaml")
        if name == "metrics.csv":
            return self._send(200, (job.folder / "metrics.csv").read_bytes(), "text/csv; charset=utf-8", download="metrics.csv")
        if name == "export.zip":
            return self._send(200, _zipped(job.folder), "application/zip", download=f"{job.spec.name}_seed{job.seed}.zip")
        view = {"scenario": job.folder / "map.html", "baseline": job.reference / "map.html", "difference": job.difference}
        return self._send(200, view[match.group(3)].read_bytes(), "text/html; charset=utf-8", csp=False)  # the map's own, inside

    def do_POST(self) -> None:
        """Check or queue a run."""
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        if path not in ("/api/runs", "/api/check"):
            return self._json(404, {"error": "no such route"})
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_BODY:
            self.close_connection = True
            return self._json(413, {"error": f"request: body: is {size:,} bytes; the studio takes at most {MAX_BODY:,}"})
        studio = self.server.studio
        try:
            spec, seed, members, text = scenario_of(read_body(self.rfile.read(size)), studio.workdir)
        except InputError as exc:
            return self._json(400, {"error": str(exc)})
        if path == "/api/check":
            return self._json(200, {"ok": True})
        try:
            job = studio.submit(spec, seed, members, text, self._session())
        except Busy as exc:
            return self._json(503, {"error": str(exc)})
        return self._json(202, {"id": job.id} | job.view(studio.ahead(job)))

    def _allowed(self) -> bool:
        """True when no token is needed or the request carries it; else answer 403."""
        token = self.server.token
        if token is None:
            host = urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
            if is_loopback(host):
                return True
            self._json(403, {"error": "this studio answers only requests addressed to 127.0.0.1 or localhost"})
            return False  # a page elsewhere cannot reach it through a name that resolves to loopback (DNS rebinding)
        given = [parse_qs(urlsplit(self.path).query).get("token", [""])[0], self._cookie("vv_token"),
                 self.headers.get("Authorization", "").removeprefix("Bearer ")]
        if any(hmac.compare_digest(value.encode(), token.encode()) for value in given if value):
            return True
        self._json(403, {"error": "this studio needs its access token (printed when it started): add ?token=... to the URL"})
        return False

    def _cookie(self, name: str) -> str:
        """A cookie of the request, or ''."""
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except http.cookies.CookieError:
            return ""
        return jar[name].value if name in jar else ""

    def _session(self) -> str:
        """The browser session (its cookie), or '' for a script without one: each session sees only its own runs."""
        return self._cookie("vv_session")

    def _static(self, name: str, cookie: bool = False) -> None:
        """A file of the package's static folder; the page also gets a session cookie (and the token's)."""
        body = resources.files(__package__).joinpath("static", name).read_bytes()
        headers = []
        if cookie:
            if not self._session():
                headers.append(f"vv_session={secrets.token_urlsafe(16)}; Path=/; HttpOnly; SameSite=Strict")
            if self.server.token is not None:
                headers.append(f"vv_token={self.server.token}; Path=/; HttpOnly; SameSite=Strict")
        self._send(200, body, STATIC[name] + "; charset=utf-8", cookies=headers)

    def _json(self, status: int, data: dict) -> None:
        """A JSON answer."""
        self._send(status, json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8"), "application/json; charset=utf-8")

    def _send(self, status: int, body: bytes, kind: str, *, download: str | None = None, cookies: list[str] = (),
              csp: bool = True) -> None:
        """An answer with the studio's security headers (a map page carries its own, stricter policy)."""
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if csp:
            self.send_header("Content-Security-Policy", PAGE_CSP)
        if download:
            self.send_header("Content-Disposition", f'attachment; filename="{download}"')
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)


def _zipped(folder: Path) -> bytes:
    """The run folder as the command line writes it, zipped under its own name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()
