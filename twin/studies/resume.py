"""Fingerprints, resume and the folder lock: an ensemble continues only its own members, one run at a time."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import layers
from layers import InputError

from ..outputs.manifest import input_hashes
from ..policy.scenario import Scenario
from ..outputs.folder import write_file
from .members import FINGERPRINT, FORMAT

MODEL_PACKAGES = ("layers", "twin/engine", "twin/policy", "twin/simulation")
"""The source folders whose code decides a member's result (part of the fingerprint)."""

def make_fingerprint(spec: Scenario, seed: int, members: int, sweep: dict, shape: tuple, stack: layers.LayerStack,
                     draws: dict[str, bool]) -> dict[str, Any]:
    """What the members belong to (``draws``: ``MemberSpec.as_dict()``); its token is stamped into every member file."""
    body = {
        "format": FORMAT,
        "scenario": spec.model_dump(mode="json"),
        "seed": seed,
        "members": members,
        "draws": draws,
        "sweep": sweep,
        "grid_shape": list(shape),
        "code_sha256": code_hash(),
        "inputs_sha256": input_hashes(stack, spec, scenario_files=False),  # the resolved scenario is above
    }
    token = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
    return {**body, "token": token}


def code_hash() -> str:
    """SHA-256 over the source files a member's result depends on: ``layers`` and the model's stages.

    Outputs, studies and the command line only write or orchestrate, so
    changing them does not invalidate finished members.
    """
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[2]
    for package in MODEL_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            digest.update(f"{package}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def check_resume(members_dir: Path, fingerprint: dict[str, Any], out: Path) -> None:
    """Refuse to resume over members of a different scenario, seed, N, sweep, code or inputs."""
    path = members_dir / FINGERPRINT
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # unreadable: its members will not validate either and are run again
    if old.get("token") == fingerprint["token"]:
        return
    differ = [key for key in fingerprint if key != "token" and old.get(key) != fingerprint[key]] or ["format"]
    raise InputError(out, "--resume", f"the members there belong to another run (different {', '.join(differ)}); "
                     "run without --resume to start afresh, or choose another --out")


def prepare_members(members_dir: Path, fingerprint: dict[str, Any], resume: bool, quiet: bool) -> None:
    """Create the members folder, drop temporaries of killed runs (and old members unless resuming), write the fingerprint."""
    members_dir.mkdir(parents=True, exist_ok=True)
    for stale in members_dir.glob(".*.tmp-*"):
        stale.unlink(missing_ok=True)
    if not resume:
        old = sorted(members_dir.glob("p*_m*.npz"))
        if old and not quiet:
            print(f"note: starting afresh; removing {len(old)} member files of an earlier run from {members_dir} "
                  "(use --resume to continue it)", file=sys.stderr)
        for path in old:
            path.unlink(missing_ok=True)
    write_file(members_dir / FINGERPRINT, json.dumps(fingerprint, ensure_ascii=False, indent=2, sort_keys=True))


def refuse_links(out: Path, members_dir: Path) -> None:
    """Refuse a member store that is, or lies in, a symbolic link: its files would land in, and its cleanup
    delete from, whatever folder the link points to."""
    path = members_dir
    while path != out.parent and path != path.parent:
        if path.is_symlink() or (path / ".lock").is_symlink() or (path / FINGERPRINT).is_symlink():
            raise InputError(out, "--out", f"{path.relative_to(out.parent)} is a symbolic link; the tool never writes "
                                           "through one (nothing was changed)")
        path = path.parent


class OutputLock:
    """An exclusive lock on the output folder, so two runs never write the same members."""

    def __init__(self, out: Path, members_dir: Path) -> None:
        self.out, self.members_dir, self.handle = out, members_dir, None

    def __enter__(self) -> "OutputLock":
        refuse_links(self.out, self.members_dir)
        self.members_dir.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.members_dir / ".lock", "a+")
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock
            return self
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise InputError(self.out, "--out", "another ensemble run is writing to this folder") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()
