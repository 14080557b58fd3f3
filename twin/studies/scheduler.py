"""Which Dask scheduler this tool will talk to: the address checked, and the peer probed without unpickling.

Dask's wire protocol trusts its peers: a scheduler's messages are unpickled,
so a scheduler, and every worker that joins it, can run code in this process.
Before an address is handed to ``distributed.Client``, :func:`probe` therefore
connects on its own, reads the peer's first message as raw bytes and accepts
it only when it is a Dask handshake made of plain values (no pickle is ever
loaded), and it judges whether the peer can be trusted:

- ``tls://``: the peer proves itself with a certificate signed by the CA in
  Dask's TLS settings (``distributed.comm.tls.*``), checked before any byte
  of it is read;
- ``tcp://`` on this machine (loopback): the listening socket must belong to
  this user, which Linux reports in ``/proc/net/tcp``; a server of another
  user is refused, since any local user can listen on a free port;
- ``tcp://`` to another host cannot be checked: a ``warning:`` line says so
  and points to TLS.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
import time
from pathlib import Path

from layers import InputError

FLAG = "--scheduler"
SCHEMES = ("tcp", "tls")
HANDSHAKE_MAX_BYTES = 4096
"""A Dask handshake is under 100 bytes; anything larger is not one, and is not read."""

TLS_SETTINGS = "Dask's TLS settings (distributed.comm.tls.ca-file, .client.cert, .client.key; see README, Ensembles)"


def scheduler_address(text: str) -> str:
    """``text`` as ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (a bare ``HOST:PORT`` is tcp, as in Dask).

    Every other form is one :class:`InputError` naming what is wrong, before any work.
    """
    shown = repr(text[:80] + ("..." if len(text) > 80 else ""))  # repr: a newline or escape code is echoed inert
    scheme, sep, rest = text.strip().partition("://")
    if not sep:
        scheme, rest = "tcp", text.strip()
    scheme = scheme.lower()
    if scheme == "inproc":
        raise InputError("arguments", FLAG, f"{shown} is an in-process address, which exists only inside one Python "
                                            "process; give the tcp:// or tls:// address of a running Dask scheduler")
    if scheme == "ucx":
        raise InputError("arguments", FLAG, f"{shown}: the ucx:// protocol is not supported by this tool; "
                                            "give a tcp:// or tls:// address")
    if scheme not in SCHEMES:
        raise InputError("arguments", FLAG, f"{shown}: unknown protocol {scheme[:20]!r}; give tcp://HOST:PORT or tls://HOST:PORT")
    host, colon, port = rest.rpartition(":")
    if not colon or not host:
        raise InputError("arguments", FLAG, f"{shown} is not HOST:PORT; give e.g. {scheme}://127.0.0.1:8786")
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise InputError("arguments", FLAG, f"{shown}: the port must be a whole number from 1 to 65535, got {port[:20]!r}")
    if not _valid_host(host):
        raise InputError("arguments", FLAG, f"{shown}: {host[:60]!r} is not a host name or IP address")
    return f"{scheme}://{host}:{int(port)}"


def _valid_host(host: str) -> bool:
    """A host name (letters, digits, '-', '.', '_'), an IPv4 address or a bracketed IPv6 address."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.ip_address(host[1:-1]).version == 6
        except ValueError:
            return False
    labels = host.split(".")
    return len(host) <= 253 and all(label and label.isascii() and label.replace("-", "").replace("_", "").isalnum()
                                    for label in labels)


def probe(address: str, security, timeout: float) -> str | None:
    """Check the scheduler at ``address`` (from :func:`scheduler_address`) before Dask talks to it.

    Returns a warning for the user, or None; raises :class:`InputError` when the
    peer cannot be reached within ``timeout`` seconds, is not a Dask scheduler,
    fails TLS, or belongs to another user. ``security`` is a
    ``distributed.Security``. Nothing the peer sends is unpickled.
    """
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    context = security.get_connection_args("client").get("ssl_context") if scheme == "tls" else None
    if scheme == "tls" and context is None:
        raise InputError("arguments", FLAG, f"{address} needs {TLS_SETTINGS}")
    deadline = time.monotonic() + timeout
    try:
        raw = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as exc:
        raise _unreachable(address, exc, timeout) from None
    with raw:
        loopback = ipaddress.ip_address(raw.getpeername()[0].split("%")[0]).is_loopback
        owner = _listener_owner(raw) if loopback and scheme == "tcp" else None
        if owner is not None and owner != os.geteuid():
            raise InputError("arguments", FLAG, f"{address} is served by another user (uid {owner}), not by you; a Dask "
                                                "scheduler can run code in this process, so this tool does not connect to it")
        try:
            conn = context.wrap_socket(raw, server_hostname=host if context.check_hostname else None) if context else raw
            with conn:
                _read_handshake(conn, address, deadline)
                conn.sendall(_frame(_handshake_bytes()))  # answer in kind, so the scheduler sees a polite goodbye
        except OSError as exc:  # ssl.SSLError is an OSError: a certificate not signed by the configured CA
            raise _unreachable(address, exc, timeout) from None
    if scheme == "tcp" and owner is None:
        return (f"{FLAG} {address} is plain tcp:// and not verifiable: whoever answers there can run code in this process; "
                "on a shared network use tls:// (README, Ensembles)")
    return None


def _read_handshake(conn: socket.socket, address: str, deadline: float) -> None:
    """Read the peer's first message as bytes and accept only a Dask handshake of plain values."""
    import msgpack

    (size,) = struct.unpack("=Q", _read(conn, 8, address, deadline))
    if not 16 < size <= HANDSHAKE_MAX_BYTES:
        raise _not_dask(address, f"its first message claims {size} bytes")
    body = _read(conn, size, address, deadline)
    count, length = struct.unpack_from("=QQ", body)
    if count != 1 or 16 + length != size:
        raise _not_dask(address, f"its first message has {count} parts")
    try:
        info = msgpack.unpackb(body[16:], raw=False, strict_map_key=True, use_list=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise _not_dask(address, f"its first message is not MessagePack ({type(exc).__name__})") from None
    plain = (type(None), bool, int, float, str)
    if not (isinstance(info, dict) and {"python", "pickle-protocol", "compression"} <= info.keys()
            and all(isinstance(v, plain) or isinstance(v, tuple) and all(isinstance(x, plain) for x in v)
                    for v in info.values())):
        raise _not_dask(address, "its first message is not a Dask handshake of plain values")


def _read(conn: socket.socket, n: int, address: str, deadline: float) -> bytes:
    """Exactly ``n`` bytes, or an InputError when the peer closes or the time is up."""
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        conn.settimeout(left)
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise _not_dask(address, "it closed the connection without the Dask handshake")
        data += chunk
    return data


def _handshake_bytes() -> bytes:
    """This process's Dask handshake, as MessagePack (what distributed sends, without pickle)."""
    import msgpack

    return msgpack.packb({"compression": None, "python": tuple(sys.version_info[:3]), "pickle-protocol": 5})


def _frame(payload: bytes) -> bytes:
    """One message in Dask's framing: total size, frame count, frame sizes, frames (native-order uint64, as distributed writes them)."""
    return struct.pack("=QQQ", 16 + len(payload), 1, len(payload)) + payload


def _listener_owner(conn: socket.socket) -> int | None:
    """The uid owning the server side of a loopback TCP connection, from /proc/net/tcp{,6}; None where unknown."""
    family = "tcp6" if conn.family == socket.AF_INET6 else "tcp"
    ours, theirs = conn.getsockname(), conn.getpeername()
    server_side = (_proc_address(conn.family, theirs), _proc_address(conn.family, ours))
    try:
        table = Path(f"/proc/net/{family}").read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return None
    for line in table:
        fields = line.split()
        if len(fields) > 7 and (fields[1], fields[2]) == server_side:
            return int(fields[7])
    return None


def _proc_address(family: int, address: tuple) -> str:
    """An (ip, port) as /proc/net/tcp writes it: the address as 32-bit words in host order, in hex, then the port."""
    packed = socket.inet_pton(family, address[0])
    words = "".join(f"{word:08X}" for word in struct.unpack(f"={len(packed) // 4}I", packed))
    return f"{words}:{address[1]:04X}"


def _unreachable(address: str, exc: OSError, timeout: float) -> InputError:
    reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else (str(exc).splitlines() or [""])[0]
    return InputError("arguments", FLAG, f"cannot reach a Dask scheduler at {address} ({reason[:200]})")


def _not_dask(address: str, why: str) -> InputError:
    return InputError("arguments", FLAG, f"{address} is not a Dask scheduler: {why}; nothing it sent was run")
