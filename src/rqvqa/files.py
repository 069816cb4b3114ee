"""Files written whole or not at all: the content goes to a hidden temporary file next to the target
(``.<name>.<random>.tmp``), which is flushed to disk and then renamed into place, so a kill at any moment
leaves the old file or the new one, never half of one. Readers and cleaners skip the ``.*.tmp`` names.

Every module that writes a file others rely on (result parts, reports, the feature store, checkpoints, the
weights records, prompt caches) writes it through here. The finished file gets the usual permissions (0666
less the umask), not the 0600 of a temporary file.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMP_GLOB = ".*.tmp"
#: where rqvqa keeps its caches and records (weights, hashes, pins, prompt features)
ENV_HOME = "RQVQA_HOME"


def rqvqa_home() -> Path:
    """``$RQVQA_HOME``, else the user cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, Windows
    ``%LOCALAPPDATA%``) + ``rqvqa``."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "rqvqa"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "rqvqa"


def _umask() -> int:
    """The process umask, read without changing it (Linux exposes it; elsewhere set-and-restore)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f"{suffix}.tmp")
    os.close(fd)
    return Path(tmp)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], Any], *, suffix: str = "") -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then move it to `path` (see the module docstring).
    `suffix` goes before ``.tmp`` for writers that pick the format from the name (``.parquet``)."""
    path = Path(path)
    tmp = _temporary(path, suffix)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_folder(path: str | os.PathLike[str], fill: Callable[[Path], Any]) -> Path:
    """Call ``fill(tmp_dir)`` to fill a temporary folder, then move it to `path`. When `path` appeared
    meanwhile (a concurrent writer finished first), its complete copy is kept and ours is dropped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        fill(tmp)
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


_TEMP_NAME = re.compile(r"^\..+\.tmp$")


def is_temporary(path: Path) -> bool:
    """A leftover of `atomic_write` / `atomic_folder` (readers ignore these names)."""
    return bool(_TEMP_NAME.match(path.name))
