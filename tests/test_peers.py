"""No code from a peer, Ctrl-C is one line, and the machine's locale and disk end cleanly (issue 27).

Real sockets, a real Dask scheduler and workers (tcp and TLS, with real
certificates), real signals to a real process group, a real Turkish locale and
a real full tmpfs.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import tiny_baseline

from layers import InputError
from twin.studies.scheduler import probe, scheduler_address

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The baseline's levers on a tiny city over two years (a member takes about a second)."""
    return tiny_baseline(tmp_path_factory.mktemp("scenario"), 0.004)


def cli(*args, env: dict | None = None, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_scenario.py"), *map(str, args)], cwd=cwd, env=env or ENV,
                          capture_output=True, text=True, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess, status: int, *says: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert all(s in lines[0] for s in says), lines[0]
    return lines[0]


# --- a hostile peer -----------------------------------------------------------------------------


class _Marker:
    """Unpickling this creates a folder: the proof that a peer's bytes ran as code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def dask_message(message: dict) -> bytes:
    """``message`` as distributed's TCP comm writes it: total size, frame count, frame sizes, frames."""
    from distributed.protocol.core import dumps

    frames = [bytes(f) for f in dumps(message)]
    prelude = struct.pack(f"Q{len(frames)}Q", len(frames), *map(len, frames))
    return struct.pack("Q", len(prelude) + sum(map(len, frames))) + prelude + b"".join(frames)


def hostile_handshake(marker: Path) -> bytes:
    """A handshake with Dask's keys, plus a pickled object that Dask's reader unpickles on arrival."""
    from distributed.protocol.serialize import ToPickle

    return dask_message({"compression": None, "python": (3, 11, 7), "pickle-protocol": 5, "op": ToPickle(_Marker(marker))})


def real_handshake() -> bytes:
    return dask_message({"compression": None, "python": tuple(sys.version_info[:3]), "pickle-protocol": 5})


class FakeScheduler:
    """A TCP server (on 127.0.0.1 unless told) that answers every connection with ``reply`` (or nothing) and keeps it open."""

    def __init__(self, reply: bytes | None, host: str = "127.0.0.1") -> None:
        self.reply, self.connections = reply, []
        self.server = socket.create_server((host, 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)
            if self.reply:
                conn.sendall(self.reply)

    def close(self) -> None:
        self.server.close()
        for conn in self.connections:
            conn.close()


def test_the_hostile_reply_would_run_in_dask_s_own_reader(tmp_path):
    """The test's weapon is real: distributed's reader, given these bytes, runs the pickle."""
    from distributed.protocol.core import loads
    from distributed.protocol.utils import unpack_frames

    marker = tmp_path / "pwned"
    wire = hostile_handshake(marker)
    loads(unpack_frames(wire[8:]))
    assert marker.is_dir()


def test_the_probe_reads_no_pickle_and_refuses_what_is_not_a_dask_handshake(tmp_path):
    marker = tmp_path / "pwned"
    import pickle

    nested = dask_message({"compression": None, "python": (3, 11, 7), "pickle-protocol": 5, "op": {"nested": [1]}})
    for reply, says in ((hostile_handshake(marker), "its first message has 2 parts"),
                        (nested, "not a Dask handshake of plain values"),
                        (pickle.dumps(_Marker(marker)), "claims"),
                        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "claims")):
        server = FakeScheduler(reply)
        try:
            with pytest.raises(InputError, match=f"is not a Dask scheduler: .*{says}"):
                probe(f"tcp://127.0.0.1:{server.port}", _security(), 5)
        finally:
            server.close()
        assert not marker.exists()


def test_the_probe_accepts_dask_s_handshake_from_this_user_and_gives_up_on_silence():
    server = FakeScheduler(real_handshake())
    try:
        assert probe(f"tcp://127.0.0.1:{server.port}", _security(), 5) is None  # loopback, this user: no warning
    finally:
        server.close()
    silent = FakeScheduler(None)
    started = time.monotonic()
    try:
        with pytest.raises(InputError, match=r"cannot reach a Dask scheduler at .* \(no answer within 1 s\)"):
            probe(f"tcp://127.0.0.1:{silent.port}", _security(), 1.0)
    finally:
        silent.close()
    assert time.monotonic() - started < 5


def _own_non_loopback_address() -> str | None:
    """An IPv4 address of this machine's own that is not loopback (no packet leaves the machine to reach it)."""
    for target in ("203.0.113.1", "10.254.254.254"):  # a UDP "connect" only picks a route and a source; nothing is sent
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.connect((target, 9))
            except OSError:
                continue
            address = udp.getsockname()[0]
            if not address.startswith("127.") and address != "0.0.0.0":
                return address
    return None


def test_plain_tcp_to_an_address_that_cannot_be_checked_warns_and_points_to_tls():
    host = _own_non_loopback_address()
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    server = FakeScheduler(real_handshake(), host=host)
    try:
        warning = probe(f"tcp://{host}:{server.port}", _security(), 5)
    finally:
        server.close()
    assert warning.startswith(f"--scheduler tcp://{host}:{server.port} is plain tcp:// and not verifiable")
    assert "can run code in this process" in warning and "use tls://" in warning and "\n" not in warning


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to listen as another user (nobody)")
def test_a_scheduler_of_another_local_user_is_refused(tmp_path):
    """Any local user can listen on a free port: a perfect Dask handshake from another uid is still refused."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other user: drop to nobody, then listen and answer like a real scheduler
        try:
            os.setgid(65534)
            os.setuid(65534)
            server = socket.create_server(("127.0.0.1", 0))
            os.write(write, str(server.getsockname()[1]).encode())
            conn, _ = server.accept()
            conn.sendall(real_handshake())
            time.sleep(5)
        finally:
            os._exit(0)
    try:
        port = int(os.read(read, 16))
        with pytest.raises(InputError, match=r"is served by another user \(uid 65534\), not by you"):
            probe(f"tcp://127.0.0.1:{port}", _security(), 5)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_a_fake_scheduler_answering_with_a_pickle_runs_nothing_and_ends_in_one_line(tiny, tmp_path):
    """The red team's case: --scheduler at a server whose reply Dask's client would unpickle."""
    marker = tmp_path / "pwned"
    server = FakeScheduler(hostile_handshake(marker))
    started = time.monotonic()
    try:
        proc = cli(tiny, "--ensemble", 2, "--scheduler", f"tcp://127.0.0.1:{server.port}", "--out", tmp_path / "o", "--quiet",
                   timeout=60)
    finally:
        server.close()
    assert time.monotonic() - started < 30
    one_line(proc, 2, "--scheduler", "is not a Dask scheduler")
    assert server.connections and not marker.exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("text", "says"), [
    ("inproc://10.0.0.1/1/2", "in-process address"),
    ("ucx://10.0.0.1:8786", "ucx:// protocol is not supported"),
    ("tcp://host:abc", "got 'abc'"), ("tcp://host:0", "got '0'"), ("tcp://host:65536", "got '65536'"),
    ("tcp://host:-1", "got '-1'"), ("tcp://host:８７８６", "got '８７８６'"),
    ("tcp://", "is not HOST:PORT"), ("tcp://host", "is not HOST:PORT"), ("", "is not HOST:PORT"),
    ("http://host:80", "unknown protocol 'http'"), ("tcp://ho st:1", "is not a host name"),
    ("tcp://a\nerror: forged:1", "is not a host name"), ("tcp://[zz::1]:1", "is not a host name"),
])
def test_scheduler_addresses_dask_cannot_use_name_the_option_and_the_problem(text, says):
    with pytest.raises(InputError) as info:
        scheduler_address(text)
    message = str(info.value)
    assert message.startswith("arguments: --scheduler: ") and says in message and "\n" not in message


def test_scheduler_addresses_that_dask_takes():
    assert scheduler_address("127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert scheduler_address(" TLS://scheduler.example.org:8786 ") == "tls://scheduler.example.org:8786"
    assert scheduler_address("tcp://[::1]:08786") == "tcp://[::1]:8786"


def _security(**tls):
    from distributed import Security

    return Security(**tls)


# --- TLS: an authenticated scheduler, from the command line ------------------------------------------


def _certificates(folder: Path) -> dict[str, Path]:
    """A CA, a scheduler/worker certificate and a client certificate signed by it, and a second, foreign CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def cert(name, public, issuer_name, issuer_key, ca):
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(issuer_name).public_key(public).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(
                __import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    paths = {}

    def write(name, obj):
        path = folder / name
        if hasattr(obj, "private_bytes"):
            path.write_bytes(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        else:
            path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
        paths[name] = path

    for prefix in ("", "foreign-"):
        ca_key = key()
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{prefix}test CA")])
        write(f"{prefix}ca.pem", cert(f"{prefix}test CA", ca_key.public_key(), ca_name, ca_key, True))
        for role in ("node", "client"):
            role_key = key()
            write(f"{prefix}{role}.key", role_key)
            write(f"{prefix}{role}.pem", cert(role, role_key.public_key(), ca_name, ca_key, False))
    return paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A real ``dask scheduler`` and ``dask worker`` that accept only peers with a certificate of the test CA."""
    folder = tmp_path_factory.mktemp("tls")
    certs = _certificates(folder)
    tls = ["--tls-ca-file", certs["ca.pem"], "--tls-cert", certs["node.pem"], "--tls-key", certs["node.key"]]
    address = f"tls://127.0.0.1:{_free_port()}"
    processes = []
    try:
        for module, args in (("distributed.cli.dask_scheduler", ["--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                                                 "--no-dashboard"]),
                             ("distributed.cli.dask_worker", [address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"])):
            log = open(folder / f"{module}.log", "w")
            processes.append(subprocess.Popen([sys.executable, "-m", module, *map(str, args), *map(str, tls)], cwd=ROOT, env=ENV,
                                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            if module.endswith("scheduler"):
                _wait_for(address)
        client_tls = {"DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(certs["ca.pem"]),
                      "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(certs["client.pem"]),
                      "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(certs["client.key"])}
        yield address, certs, client_tls
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_for(address: str) -> None:
    port = int(address.rsplit(":", 1)[1])
    deadline = time.monotonic() + 90
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the TLS scheduler did not start"
            time.sleep(0.3)


def test_the_probe_speaks_tls_and_refuses_a_scheduler_the_ca_did_not_sign(tls_cluster):
    address, certs, _ = tls_cluster
    ours = {"tls_ca_file": str(certs["ca.pem"]), "tls_client_cert": str(certs["client.pem"]),
            "tls_client_key": str(certs["client.key"])}
    assert probe(address, _security(**ours), 15) is None
    foreign = {"tls_ca_file": str(certs["foreign-ca.pem"]), "tls_client_cert": str(certs["foreign-client.pem"]),
               "tls_client_key": str(certs["foreign-client.key"])}
    with pytest.raises(InputError, match="cannot reach a Dask scheduler at tls://.*(CERTIFICATE_VERIFY_FAILED|certificate)"):
        probe(address, _security(**foreign), 15)
    with pytest.raises(InputError, match=r"needs Dask's TLS settings \(distributed\.comm\.tls\.ca-file"):
        probe(address, _security(), 15)


def test_an_ensemble_runs_on_a_tls_scheduler_from_the_command_line(tls_cluster, tiny, tmp_path):
    """Dask's TLS settings in the environment (or a Dask config file) and a tls:// address: no warning, a complete run."""
    address, _, client_tls = tls_cluster
    proc = cli(tiny, "--ensemble", 2, "--scheduler", address, "--out", tmp_path / "tls", "--quiet", env={**ENV, **client_tls},
               timeout=600)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]
    assert (tmp_path / "tls" / "manifest.json").exists()


# --- Ctrl-C -------------------------------------------------------------------------------------------


def _interrupt(args: list, ready, env: dict | None = None) -> subprocess.CompletedProcess:
    """Start ``run_scenario.py ARGS`` in its own process group, wait for ``ready(process)``, then Ctrl-C the group."""
    process = subprocess.Popen([sys.executable, str(ROOT / "run_scenario.py"), *map(str, args)], cwd=ROOT, env=env or ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not ready(process):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be interrupted"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _worker_processes(process: subprocess.Popen) -> int:
    import psutil

    found = 0
    for child in psutil.Process(process.pid).children():
        try:
            found += any("spawn_main" in part for part in child.cmdline())
        except psutil.Error:
            pass
    return found


def test_ctrl_c_during_an_ensemble_is_one_line(tiny, tmp_path):
    """SIGINT to the process group while members run: the workers say nothing, the tool says one line."""
    out = tmp_path / "e"
    proc = _interrupt([tiny, "--ensemble", 40, "--workers", 2, "--out", out, "--quiet"],
                      lambda p: len(list((out / "members").glob("p*_m*.npz"))) >= 2)
    one_line(proc, 1, "error: interrupted", "rerun with --resume")
    assert not (out / "manifest.json").exists()


def test_ctrl_c_while_the_workers_start_is_one_line(tiny, tmp_path):
    """SIGINT while the LocalCluster's worker processes boot: no worker traceback, no atexit traceback."""
    proc = _interrupt([tiny, "--ensemble", 4, "--workers", 2, "--out", tmp_path / "e", "--quiet"],
                      lambda p: _worker_processes(p) >= 2 and not time.sleep(0.5))
    one_line(proc, 1, "error: interrupted")


def test_ctrl_c_while_the_libraries_load_is_one_line(tmp_path):
    proc = _interrupt(["--quiet", "--out", tmp_path / "o"], lambda p: not time.sleep(0.3))
    one_line(proc, 1, "error: interrupted")


# --- the machine: a Turkish locale, a path too long, a full disk ----------------------------------


def _turkish_locale() -> str:
    """tr_TR.UTF-8, generated with localedef when the system has its source but not the compiled locale."""
    probe_locale = [sys.executable, "-c", "import locale; locale.setlocale(locale.LC_ALL, '')"]
    env = {**ENV, "LC_ALL": "tr_TR.UTF-8"}
    if subprocess.run(probe_locale, env=env, capture_output=True).returncode != 0:
        subprocess.run(["localedef", "-i", "tr_TR", "-f", "UTF-8", "tr_TR.UTF-8"], capture_output=True)
    if subprocess.run(probe_locale, env=env, capture_output=True).returncode != 0:
        pytest.skip("the tr_TR.UTF-8 locale is not installed and localedef cannot make it (no /usr/share/i18n/locales/tr_TR)")
    return "tr_TR.UTF-8"


def test_under_a_turkish_locale_gdal_is_quiet_and_chinese_text_prints(tmp_path):
    """GDAL's option table is sorted by strcasecmp, which follows LC_CTYPE: 'I' and 'i' differ in Turkish."""
    env = {**ENV, "LC_ALL": _turkish_locale()}
    check = ("import ctypes, ctypes.util\nlibc = ctypes.CDLL(ctypes.util.find_library('c'))\n"
             "before = libc.strcasecmp(b'I', b'i')\nimport layers, pyogrio, rasterio\nprint(before != 0, libc.strcasecmp(b'I', b'i'))")
    root_cause = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, cwd=ROOT)
    assert root_cause.stdout.split() == ["True", "0"] and root_cause.stderr == "", root_cause.stderr[-2000:]
    noisy = subprocess.run([sys.executable, "-c", "import pyogrio"], env=env, capture_output=True, text=True)
    assert "apszKnownConfigOptions" in noisy.stderr  # without the package's fix GDAL does complain

    small = tmp_path / "small.yaml"
    small.write_text("name: small\nyears: {start: 2023, end: 2024}\nparams: {scale: 0.002, anchors: 0}\n", encoding="utf-8")
    run = cli(small, "--out", tmp_path / "o", env=env)
    noise = [line for line in run.stderr.splitlines() if not line.lstrip()[:1].isdigit() or " s  " not in line]  # not progress
    assert run.returncode == 0 and noise == [], run.stderr[-2000:]
    assert "亿元" in run.stdout and "against the 2027 targets" in run.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nlayers: {anchors: missing.gpkg}\n", encoding="utf-8")
    one_line(cli(bad, "--out", tmp_path / "b", env=env), 2, "missing.gpkg: file: not found")


@pytest.fixture
def full_disk(tmp_path):
    """A 256 kB tmpfs: room for a small earlier output, not for a new run's map."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode() + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


def test_a_full_disk_keeps_the_old_output_and_ends_in_one_line(full_disk, tmp_path):
    """ENOSPC while writing: exit status 1 (the input was fine), one line, the earlier output byte for byte."""
    import json

    from twin.outputs.folder import TOOL

    out = full_disk / "run"
    out.mkdir()
    (out / "metrics.csv").write_text("scenario,seed\nsmall,1\n", encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps({"tool": TOOL, "files": ["manifest.json", "metrics.csv"]}), encoding="utf-8")
    before = _digest(full_disk)
    small = tmp_path / "small.yaml"
    small.write_text("name: small\nyears: {start: 2023, end: 2024}\nparams: {scale: 0.002, anchors: 0}\n", encoding="utf-8")
    proc = cli(small, "--out", out, "--quiet")
    one_line(proc, 1, f"error: {out}: No space left on device")
    assert _digest(full_disk) == before


def test_the_tool_s_own_cluster_admits_only_holders_of_its_throwaway_certificate():
    """The LocalCluster's scheduler runs in this process: a local user's client without the certificate gets nothing."""
    import ssl

    from twin.studies.cluster import dask_client

    with dask_client(1, None) as client:
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:") and sum(client.nthreads().values()) == 1
        port = int(address.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=3) as plain:  # Dask over plain tcp: no handshake
            with pytest.raises(TimeoutError):
                plain.recv(64)
        anyone = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        anyone.check_hostname, anyone.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # TLS without a client certificate
            try:
                with anyone.wrap_socket(raw) as conn:
                    answer = conn.recv(64)
            except (ssl.SSLError, ConnectionError):
                answer = b""
        assert answer == b""


def test_a_full_disk_during_an_ensemble_ends_in_one_line(full_disk, tiny):
    """ENOSPC in a Dask worker writing its member, or here writing the outputs: one line, exit 1, no traceback."""
    proc = cli(tiny, "--ensemble", 6, "--out", full_disk / "e", "--quiet", timeout=600)
    one_line(proc, 1, f"error: {full_disk / 'e'}", "No space left on device")
