"""Content hashes and trust on first use.

No official checkpoint has a published sha256, so the size and sha256 of the first file used under a name
(downloaded or found) are recorded in ``$RQVQA_HOME/weights.lock.json``; every later use is checked against
that record. The hash of a file is cached by path, size, mtime, inode and ctime (multi-GB checkpoints are
hashed once, not on every load): restoring a tampered file's mtime cannot fool it, since the ctime changes
with any write or `utime` and cannot be set back; ``rqvqa weights verify`` always reads the whole file.
Recording (the hash cache, a first-use pin) is best effort: a read-only ``$RQVQA_HOME`` never blocks a valid
checkpoint, it only loses the record (a warning says so).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from rqvqa.errors import WeightsError
from rqvqa.files import atomic_write_text, rqvqa_home
from rqvqa.registry import WeightsEntry

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, allow_nan=False))


def _record(path: Path, data: dict, what: str) -> None:
    """Write a record, best effort (see the module docstring)."""
    try:
        _write_json(path, data)
    except OSError as exc:
        warnings.warn(f"rqvqa could not record {what} in {path} ({exc.strerror or exc})", stacklevel=3)


def _identity(stat) -> dict[str, int]:
    """What the hash cache matches a file on: any write changes one of them (ctime cannot be set back)."""
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino,
        "ctime_ns": stat.st_ctime_ns,
    }


def content_sha256(path: str | Path) -> str:
    """sha256 of a file's content, computed once per (absolute path, size, mtime, inode, ctime) and
    remembered in ``$RQVQA_HOME/sha256-cache.json`` (multi-GB checkpoints are hashed once, not on every
    load)."""
    path = Path(path).resolve()
    identity = _identity(path.stat())
    cache_file = rqvqa_home() / "sha256-cache.json"
    hit = _read_json(cache_file).get(str(path))
    if isinstance(hit, dict) and all(hit.get(k) == v for k, v in identity.items()):
        return str(hit["sha256"])
    digest = sha256_file(path)
    cache = _read_json(cache_file)  # re-read: another process may have added entries meanwhile
    cache[str(path)] = {**identity, "sha256": digest}
    _record(cache_file, cache, "a checkpoint's hash")
    return digest


def lock_file() -> Path:
    """The trust-on-first-use record: name -> size and sha256 of the first file used under that name."""
    return rqvqa_home() / "weights.lock.json"


def pinned(name: str) -> dict | None:
    record = _read_json(lock_file()).get(name)
    return record if isinstance(record, dict) and "sha256" in record else None


def pin(entry: WeightsEntry, path: Path, digest: str, origin: str) -> None:
    records = _read_json(lock_file())
    records[entry.name] = {
        "filename": entry.filename,
        "size": path.stat().st_size,
        "sha256": digest,
        "origin": origin,
        "pinned": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _record(lock_file(), records, f"the first-use sha256 of {entry.name}")


def unpin(name: str) -> None:
    records = _read_json(lock_file())
    if records.pop(name, None) is not None:
        _write_json(lock_file(), records)


def expected_sha256(entry: WeightsEntry) -> tuple[str | None, str]:
    """(sha256, where it comes from: "published" or "pinned") or (None, "")."""
    if entry.sha256 is not None:
        return entry.sha256.lower(), "published"
    record = pinned(entry.name)
    return (str(record["sha256"]), "pinned") if record else (None, "")


def check_pinned(entry: WeightsEntry, path: Path, origin: str | None = None) -> None:
    """Refuse `path` when it differs from the published or pinned sha256; pin it when neither exists."""
    digest = content_sha256(path)
    expected, kind = expected_sha256(entry)
    if expected is None:
        pin(entry, path, digest, origin or f"found at {path}")
    elif digest != expected:
        raise WeightsError(
            f"sha256 {digest[:16]}... differs from the {kind} {expected[:16]}... of {entry.name} (a "
            f"different or damaged file); if it replaces the old file on purpose, run "
            f"`rqvqa weights verify --repin {entry.name}`",
            path,
        )


@dataclass(frozen=True)
class Verification:
    name: str
    #: "ok" (matches the published sha256), "pinned" (matches the sha256 pinned on first use), "pinned-now"
    #: (no sha256 known: this file's is recorded), "missing", "bad-size", "bad-sha256"
    status: str
    path: Path | None
    sha256: str | None = None
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("bad-size", "bad-sha256")
