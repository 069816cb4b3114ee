"""Where checkpoint files are looked for, and the files found there.

In order (the first hit wins):

1. the folder passed as ``weights_dir`` (CLI ``--weights-dir``),
2. the folders in ``$RQVQA_WEIGHTS_DIR`` (``os.pathsep``-separated), for files obtained by hand,
3. the download cache ``$RQVQA_HOME/weights`` (default ``~/.cache/rqvqa/weights``, or
   ``$XDG_CACHE_HOME/rqvqa/weights``),
4. for files hosted on the Hugging Face Hub, the standard Hugging Face cache.

Inside a folder a file is found under its cache path (``subdir/filename``), its bare file name, or, for a
file that ships inside an archive, its path in that archive (e.g. ``ckpts/<name>.pth``). The entries
themselves are declared by the model families (`rqvqa.registry.WeightsEntry`).
"""

from __future__ import annotations

import os
from pathlib import Path

from rqvqa.errors import ConfigError, WeightsError
from rqvqa.extras import installed
from rqvqa.files import rqvqa_home
from rqvqa.registry import REGISTRY, RegistryError, WeightsEntry
from rqvqa.weights.pins import (
    Verification,
    check_pinned,
    expected_sha256,
    lock_file,
    pin,
    pinned,
    sha256_file,
    unpin,
)

ENV_WEIGHTS_DIR = "RQVQA_WEIGHTS_DIR"


def get_entry(name: str) -> WeightsEntry:
    try:
        return REGISTRY.weights(name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None


def list_weights() -> list[WeightsEntry]:
    return REGISTRY.weights_entries()


def groups() -> dict[str, tuple[str, ...]]:
    """Names that stand for several files a model needs together (`rqvqa weights download qalign`)."""
    return REGISTRY.groups()


def expand(name: str) -> list[str]:
    """The entry names behind `name`: a group's members, or the name itself."""
    try:
        return REGISTRY.expand(name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None


def group_folder(group: str, weights_dir: str | Path | None = None) -> Path | None:
    """The one folder holding every file of `group` (e.g. the 10 KVQ models), or None when some are missing
    or they are spread over several folders."""
    found = [find(name, weights_dir) for name in groups()[group]]
    folders = {p.parent for p in found if p is not None}
    return folders.pop() if None not in found and len(folders) == 1 else None


def cache_dir() -> Path:
    return rqvqa_home() / "weights"


def cache_path(name: str) -> Path:
    """Where `download` puts the file (whether or not it is there)."""
    return cache_dir() / get_entry(name).relpath


def search_dirs(weights_dir: str | Path | None = None) -> list[Path]:
    dirs = [Path(weights_dir).expanduser()] if weights_dir else []
    dirs += [Path(p).expanduser() for p in os.environ.get(ENV_WEIGHTS_DIR, "").split(os.pathsep) if p]
    dirs.append(cache_dir())
    return dirs


def _candidates(entry: WeightsEntry, folder: Path) -> list[Path]:
    paths = [folder / entry.relpath, folder / entry.filename]
    if entry.member is not None:
        paths.append(folder / entry.member)
    return list(dict.fromkeys(paths))


def find(name: str, weights_dir: str | Path | None = None) -> Path | None:
    """The first existing file for `name` in the search folders, or None."""
    entry = get_entry(name)
    for folder in search_dirs(weights_dir):
        for path in _candidates(entry, folder):
            if path.is_file():
                return path
    return _hf_cached(entry)


def _hf_cached(entry: WeightsEntry) -> Path | None:
    """The file in the standard Hugging Face cache (``$HF_HUB_CACHE``), if a hub download put it there (never
    without the `models` extra, which brings the hub client: nothing can have used the file then)."""
    if entry.hf_repo is None or not installed("huggingface_hub"):
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(entry.hf_repo, entry.hf_filename or entry.filename)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def check_size(entry: WeightsEntry, path: Path) -> None:
    if entry.size is not None and (actual := path.stat().st_size) != entry.size:
        raise WeightsError(
            f"{actual} bytes, expected {entry.size} for {entry.name} (incomplete or a different file)", path
        )


def missing_message(entry: WeightsEntry, weights_dir: str | Path | None) -> str:
    looked = ", ".join(str(d) for d in search_dirs(weights_dir))
    if entry.hf_repo is not None:
        looked += ", the Hugging Face cache"
    group = next((g for g, names in groups().items() if entry.name in names), None)
    if entry.downloadable and group is not None:
        hint = f"run `rqvqa weights download {group}` (all files of {group})"
    elif entry.downloadable:
        hint = f"run `rqvqa weights download {entry.name}`, or fetch it from {entry.where_from()}"
    else:
        hint = f"no direct download exists: fetch it by hand from {entry.where_from()}"
    return (
        f"{entry.filename} ({entry.name}) not found (looked in {looked}); {hint} and put it in "
        f"{cache_dir() / entry.subdir} or in a folder given with --weights-dir or ${ENV_WEIGHTS_DIR}"
    )


def locate(name: str, weights_dir: str | Path | None = None) -> Path:
    """Path of the checkpoint `name` on disk (no download), checked: size where known, and the published or
    pinned sha256 (`check_pinned`). Raises `WeightsError` naming where to get it when it is missing."""
    entry = get_entry(name)
    path = find(name, weights_dir)
    if path is None:
        raise WeightsError(missing_message(entry, weights_dir))
    check_size(entry, path)
    check_pinned(entry, path)
    return path


def verify(name: str, weights_dir: str | Path | None = None, repin: bool = False) -> Verification:
    """Hash the file `resolve` would use and compare size and sha256 with the registry or the first-use pin.

    ``repin`` forgets the pin first (the user replaced the file on purpose) and records the present file."""
    entry = get_entry(name)
    path = find(name, weights_dir)
    if path is None:
        return Verification(
            name, "missing", None, detail=f"not in {', '.join(map(str, search_dirs(weights_dir)))}"
        )
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return Verification(name, "bad-size", path, detail=f"{size} bytes, expected {entry.size}")
    if repin:
        unpin(name)
    digest = sha256_file(path)  # verify always reads the file, whatever the hash cache holds
    expected, kind = expected_sha256(entry)
    if expected is None:
        pin(entry, path, digest, f"found at {path}")
        return Verification(
            name, "pinned-now", path, digest, f"no published sha256: pinned on first use in {lock_file()}"
        )
    if digest != expected:
        hint = "" if kind == "published" else f" (replaced on purpose? `rqvqa weights verify --repin {name}`)"
        return Verification(name, "bad-sha256", path, digest, f"expected the {kind} {expected}{hint}")
    pinned_at = (pinned(name) or {}).get("pinned", "")
    detail = "matches the published sha256" if kind == "published" else f"matches the pin of {pinned_at}"
    return Verification(name, "ok" if kind == "published" else "pinned", path, digest, detail)
