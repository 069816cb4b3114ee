"""Registry, cache and downloader of every checkpoint rqvqa knows.

Where a file is looked for, in order (the first hit wins):

1. the folder passed as ``weights_dir`` (CLI ``--weights-dir``),
2. the folders in ``$RQVQA_WEIGHTS_DIR`` (``os.pathsep``-separated), for files obtained by hand,
3. the download cache ``$RQVQA_HOME/weights`` (default ``~/.cache/rqvqa/weights``, or
   ``$XDG_CACHE_HOME/rqvqa/weights``).

Inside a folder a file is found under its cache path (``subdir/filename``), its bare file name, or, for a
file that ships inside an archive, its path in that archive (e.g. ``ckpts/<name>.pth``).

Downloads go to ``<cache>/<subdir>/<filename>.part`` first and are resumed with an HTTP Range request when a
transfer breaks (in the same call, up to `RETRIES` times, or in a later call). Only a complete file whose
size and sha256 match (where the registry knows them) is renamed atomically to its final name, so a final
name in the cache never holds a half-written file. A ``.part`` left by an interrupted run is a resume point,
never a usable file: the next download continues it, and it is deleted when the finished file fails its
checks (and the transfer is then restarted once from scratch, in case the ``.part`` was stale).

Files hosted on the Hugging Face Hub (`WeightsEntry.hf_repo`: one-align, the LIQE mix weights) are fetched
with ``huggingface_hub`` into the standard HF cache, which is also searched (after the folders above), so a
user who already has ``q-future/one-align`` is served at once and the hub client's etag / sha256 checks apply.
The other hosts (GitHub releases, Dropbox, fbaipublicfiles) go through the standard library's HTTP client with
Range resumption; a URL that answers with a web page instead of the file (Google Drive confirmation pages and
the like) is rejected, and so is a redirect from https to plain http.

Verification: a ``.part`` is promoted only when its expected length is known (registry size, or the length
the server announced) and met, or a known sha256 matches. No official file has a published sha256, so
trust-on-first-use applies: the size and sha256 of the first file used under a name (downloaded or found)
are recorded in ``$RQVQA_HOME/weights.lock.json``; every later use is checked against that record (the hash
of a file is cached by path, size and mtime, so unchanged files are hashed once), and
``rqvqa weights verify`` reports both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rqvqa import __version__
from rqvqa.errors import ConfigError, WeightsError

ENV_HOME = "RQVQA_HOME"
ENV_WEIGHTS_DIR = "RQVQA_WEIGHTS_DIR"
TIMEOUT_S = 60.0
#: resumed attempts per URL after a transfer breaks mid-way
RETRIES = 3
#: seconds to wait before resume attempt k (k * RETRY_DELAY_S)
RETRY_DELAY_S = 2.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsEntry:
    """One checkpoint file. `size`/`sha256` are None unless published or measured on the real file."""

    name: str
    filename: str
    description: str
    #: direct-download URLs, tried in order
    urls: tuple[str, ...] = ()
    #: pages where a person can fetch the file (Google Drive, Baidu, OneDrive, Dropbox viewer)
    pages: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    #: approximate size for display only (never checked)
    size_hint: str = ""
    licence: str = "unknown"
    #: sources / predictors / models that read this file
    used_by: tuple[str, ...] = ()
    #: folder inside the cache (to keep generic names such as HF shard names apart)
    subdir: str = ""
    #: registry name of the archive that holds this file, and the file's path inside it
    archive: str | None = None
    member: str | None = None
    #: Hugging Face Hub repository and path inside it: fetched with huggingface_hub into the HF cache
    hf_repo: str | None = None
    hf_filename: str | None = None

    @property
    def relpath(self) -> Path:
        return Path(self.subdir) / self.filename

    @property
    def downloadable(self) -> bool:
        return bool(self.urls) or self.archive is not None or self.hf_repo is not None

    def where_from(self) -> str:
        """Human-readable origin, for error messages."""
        if self.archive is not None:
            return f"the archive {self.archive!r} (member {self.member})"
        if self.hf_repo is not None:
            return f"the Hugging Face Hub ({self.hf_repo}, {self.hf_filename or self.filename})"
        return " or ".join(self.urls + self.pages) or "no known URL"


_REGISTRY: dict[str, WeightsEntry] = {}


def register_weights(entry: WeightsEntry, *, replace: bool = False) -> WeightsEntry:
    """Add an entry (tests and plug-ins use this); a second entry under the same name needs ``replace``."""
    if entry.name in _REGISTRY and not replace and _REGISTRY[entry.name] != entry:
        raise ConfigError(f"weights {entry.name!r} registered twice")
    if entry.archive is not None and entry.member is None:
        raise ConfigError(f"weights {entry.name!r}: an archive member needs its path inside the archive")
    _REGISTRY[entry.name] = entry
    return entry


def unregister_weights(name: str) -> None:
    _REGISTRY.pop(name, None)


def list_weights() -> list[WeightsEntry]:
    return list(_REGISTRY.values())


#: names that stand for several files a model needs together (`rqvqa weights download qalign`)
GROUPS: dict[str, tuple[str, ...]] = {}


def expand(name: str) -> list[str]:
    """The entry names behind `name`: a group's members, or the name itself."""
    if name in GROUPS:
        return list(GROUPS[name])
    get_entry(name)
    return [name]


def group_folder(group: str, weights_dir: str | Path | None = None) -> Path | None:
    """The one folder holding every file of `group` (e.g. the 10 KVQ models), or None when some are missing
    or they are spread over several folders."""
    found = [find(name, weights_dir) for name in GROUPS[group]]
    folders = {p.parent for p in found if p is not None}
    return folders.pop() if None not in found and len(folders) == 1 else None


def get_entry(name: str) -> WeightsEntry:
    if name not in _REGISTRY:
        groups = f"; groups: {', '.join(GROUPS)}" if GROUPS else ""
        raise ConfigError(f"unknown weights {name!r}; known: {', '.join(_REGISTRY)}{groups}")
    return _REGISTRY[name]


# --------------------------------------------------------------------------------------------------- places


def rqvqa_home() -> Path:
    """``$RQVQA_HOME``, else the user cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, Windows
    ``%LOCALAPPDATA%``) + ``rqvqa``."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "rqvqa"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "rqvqa"


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
    """The file in the standard Hugging Face cache (``$HF_HUB_CACHE``), if a hub download put it there."""
    if entry.hf_repo is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(entry.hf_repo, entry.hf_filename or entry.filename)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def _check_size(entry: WeightsEntry, path: Path) -> None:
    if entry.size is not None and (actual := path.stat().st_size) != entry.size:
        raise WeightsError(
            f"{actual} bytes, expected {entry.size} for {entry.name} (incomplete or a different file)", path
        )


def _missing_message(entry: WeightsEntry, weights_dir: str | Path | None) -> str:
    looked = ", ".join(str(d) for d in search_dirs(weights_dir))
    if entry.hf_repo is not None:
        looked += ", the Hugging Face cache"
    group = next((g for g, names in GROUPS.items() if entry.name in names), None)
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


def resolve(
    name: str, weights_dir: str | Path | None = None, download: bool = False, progress: bool = True
) -> Path:
    """Path of the checkpoint `name`, downloading it into the cache when allowed and missing.

    Files found on disk get a size check when the size is known and are checked against the published or
    pinned sha256 (`check_pinned`; hashed once per path, size and mtime, so an unchanged file costs nothing).
    """
    entry = get_entry(name)
    path = find(name, weights_dir)
    if path is None:
        if not download:
            raise WeightsError(_missing_message(entry, weights_dir))
        return _download(entry, progress=progress, restart=False, weights_dir=weights_dir)
    _check_size(entry, path)
    check_pinned(entry, path)
    return path


# ----------------------------------------------------------------------------------------------- download


class _TransferBroken(Exception):
    """The connection ended before the announced length: resume from what the .part holds."""


class _StalePart(Exception):
    """The server says the .part is longer than the file, or cannot be continued: start over."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------ content hashes and first-use pins


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False))
    os.replace(tmp, path)  # atomic: readers see the old or the new record


def content_sha256(path: str | Path) -> str:
    """sha256 of a file's content, computed once per (absolute path, size, mtime) and remembered in
    ``$RQVQA_HOME/sha256-cache.json`` (multi-GB checkpoints are hashed once, not on every load)."""
    path = Path(path).resolve()
    stat = path.stat()
    cache_file = rqvqa_home() / "sha256-cache.json"
    hit = _read_json(cache_file).get(str(path))
    if isinstance(hit, dict) and (hit.get("size"), hit.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns):
        return str(hit["sha256"])
    digest = sha256_file(path)
    cache = _read_json(cache_file)  # re-read: another process may have added entries meanwhile
    cache[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    _write_json(cache_file, cache)
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
    _write_json(lock_file(), records)


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


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Keep two processes from appending to the same .part (POSIX advisory lock; freed when a process
    dies, so a crash leaves no stale lock)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent downloads of one file are not guarded
        yield
        return
    with lock_path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise WeightsError("another rqvqa process is downloading this file", lock_path) from exc
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _progress_bar(total: int | None, initial: int, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=not enabled,
        leave=False,
    )


class _NoDowngradeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, except from https to anything else (a downgrade would expose the transfer)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 (urllib's signature)
        old = urllib.parse.urlsplit(req.full_url).scheme
        new = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme
        if old == "https" and new != "https":
            raise urllib.error.URLError(f"refused a redirect from https to {new}: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_NoDowngradeRedirects)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")


def _fetch(url: str, part: Path, label: str, progress: bool) -> int | None:
    """Append the rest of `url` to `part` (Range request from its current size).

    Returns the total size the server announced (None if it did not). Raises urllib errors when the request
    fails and `_TransferBroken` when the body ends early.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"rqvqa/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = _OPENER.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing after `offset`: complete if the size matches, else stale
            match = _UNSATISFIED_RANGE.fullmatch(exc.headers.get("Content-Range", ""))
            if match is not None and int(match.group(1)) == offset:
                return offset
            raise _StalePart(f"{url} cannot continue a {offset}-byte .part") from exc
        raise
    with response:
        if response.headers.get_content_type() == "text/html":
            raise WeightsError(f"{url} answered with a web page, not the file (the link needs a browser)")
        total: int | None
        if response.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != offset:
                raise _StalePart(f"{url} answered a resume request with an unusable Content-Range")
            total = None if match.group(3) == "*" else int(match.group(3))
        else:  # the server ignored the Range header: start over
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
        with part.open("ab" if offset else "wb") as fh, _progress_bar(total, offset, label, progress) as bar:
            try:
                while block := response.read(_CHUNK):
                    fh.write(block)
                    bar.update(len(block))
            except (OSError, ValueError) as exc:  # reset, timeout, truncated chunked body...
                raise _TransferBroken(str(exc) or type(exc).__name__) from exc
    received = part.stat().st_size
    if total is not None and received < total:
        raise _TransferBroken(f"connection closed after {received} of {total} bytes")
    return total


def _check_complete(entry: WeightsEntry, part: Path, total: int | None) -> str | None:
    """Why the finished `part` is not the expected file, or None if it passes.

    A file passes when its expected length is known (registry size or the server's announced length) and
    met, and it matches the published or pinned sha256 where one exists; a body of unknown length passes only
    through a known sha256 (a connection that drops cleanly would otherwise look like a complete file)."""
    size = part.stat().st_size
    if entry.size is not None and size != entry.size:
        return f"got {size} bytes, expected {entry.size}"
    if total is not None and size != total:
        return f"got {size} bytes, the server announced {total}"
    expected, kind = expected_sha256(entry)
    if expected is not None and (digest := sha256_file(part)) != expected:
        return f"sha256 mismatch: got {digest}, expected the {kind} {expected}"
    if expected is None and entry.size is None and total is None:
        return (
            "the length is unknown (no registry size, no length from the server): cannot tell it from a "
            "truncated file"
        )
    return None


def _download_url(entry: WeightsEntry, url: str, part: Path, progress: bool) -> str | None:
    """Fetch `url` into `part` until complete and checked; returns None on success, else the reason."""
    restarted = False
    attempt = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        resumed = before > 0
        try:
            total = _fetch(url, part, entry.filename, progress)
        except _TransferBroken as exc:
            attempt += 1
            if attempt > RETRIES:
                return f"transfer from {url} kept breaking ({exc}); run the download again to resume"
            time.sleep(RETRY_DELAY_S * attempt)
            continue
        except _StalePart as exc:
            if restarted:
                return str(exc)
            restarted = True
            part.unlink(missing_ok=True)
            continue
        except (urllib.error.URLError, OSError) as exc:
            return f"{url}: {getattr(exc, 'reason', None) or exc}"
        if resumed and not restarted and part.stat().st_size == before and expected_sha256(entry)[0] is None:
            # a .part that was already full length comes from an earlier run, maybe of another version of the
            # file; with no sha256 to check it against, its length alone is no proof: fetch it again
            restarted = True
            part.unlink(missing_ok=True)
            continue
        problem = _check_complete(entry, part, total)
        if problem is None:
            return None
        part.unlink(missing_ok=True)
        if resumed and not restarted:  # the old .part may have been stale: one fresh try
            restarted = True
            continue
        return f"{url}: {problem}"


def _extract_member(entry: WeightsEntry, archive: Path, part: Path) -> str | None:
    try:
        with tarfile.open(archive) as tar:
            try:
                info = tar.getmember(str(entry.member))
            except KeyError:
                return f"{archive} has no member {entry.member}"
            # a link member would make extractfile follow it inside the archive (KeyError when its target
            # is absent) or hand out another member's bytes: only regular files are taken
            source = tar.extractfile(info) if info.isfile() else None
            if source is None:
                return f"{archive}: member {entry.member} is not a regular file (a link or a folder)"
            with source, part.open("wb") as fh:
                _copy(source, fh)
            size = info.size
    except (tarfile.TarError, OSError) as exc:
        return f"cannot read {archive} ({exc})"
    problem = _check_complete(entry, part, size)
    if problem is not None:
        part.unlink(missing_ok=True)
    return problem


def _copy(source: IO[bytes], target: IO[bytes]) -> None:
    while block := source.read(_CHUNK):
        target.write(block)


def download(name: str, progress: bool = True, restart: bool = False) -> Path:
    """Download `name` into the cache (no-op if a checked file is already there) and return its path.

    ``restart`` discards a ``.part`` left by an earlier run instead of resuming it.
    """
    return _download(get_entry(name), progress=progress, restart=restart)


def _download(
    entry: WeightsEntry, progress: bool, restart: bool, weights_dir: str | Path | None = None
) -> Path:
    if entry.hf_repo is not None:
        return _hf_download(entry, progress)
    dest = cache_dir() / entry.relpath
    if dest.is_file() and (entry.size is None or dest.stat().st_size == entry.size):
        check_pinned(entry, dest)
        return dest
    if not entry.downloadable:
        raise WeightsError(_missing_message(entry, None))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with _exclusive(dest.with_name(dest.name + ".lock")):
        if restart:
            part.unlink(missing_ok=True)
        failures = _obtain(entry, part, progress, weights_dir)
        if failures:
            where = f" from {' or '.join(entry.urls + entry.pages)}" if entry.urls or entry.pages else ""
            raise WeightsError(
                f"could not download {entry.filename} ({'; '.join(failures)}); download it by hand{where}"
                f" and put it here, or in a folder given with --weights-dir or ${ENV_WEIGHTS_DIR}",
                dest,
            )
        os.replace(part, dest)
    check_pinned(entry, dest, origin=f"downloaded from {entry.where_from()}")
    return dest


def _hf_download(entry: WeightsEntry, progress: bool) -> Path:
    """Fetch a hub file into the standard HF cache (shared with every HF tool; etag and sha256 checked by the
    hub client), then pin it like any other file."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = Path(hf_hub_download(entry.hf_repo, entry.hf_filename or entry.filename))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(
            f"could not download {entry.filename} from the Hugging Face Hub ({entry.hf_repo}): {reason}; "
            f"download it by hand from {' or '.join(entry.urls) or entry.hf_repo} and put it in a folder "
            f"given with --weights-dir or ${ENV_WEIGHTS_DIR}"
        ) from None
    check_pinned(entry, path, origin=f"Hugging Face Hub {entry.hf_repo}")
    return path


def _obtain(entry: WeightsEntry, part: Path, progress: bool, weights_dir: str | Path | None) -> list[str]:
    """Fill `part` with the checked file; returns the failure reasons (empty on success)."""
    if entry.archive is not None:  # the archive may sit in a hand-made folder too
        archive = resolve(entry.archive, weights_dir, download=True, progress=progress)
        problem = _extract_member(entry, archive, part)
        return [] if problem is None else [problem]
    failures = []
    for url in entry.urls:
        problem = _download_url(entry, url, part, progress)
        if problem is None:
            return []
        failures.append(problem)
    return failures


# -------------------------------------------------------------------------------------------------- verify


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


# ------------------------------------------------------------------------------------------------ registry
# Sources: shared/reference rqvqa.md §4, liqe.md §6, fastvqa.md §9, slowfast.md §1, qalign.md §1. No official
# file has been inspected, so no exact size or sha256 is known yet: fill them in from the real files.

_RQVQA_LICENCE = "no LICENSE file (RQ-VQA README badge: Apache-2.0)"
_KVQ_ARCHIVE = "rqvqa-kvq-ckpts"
# (split v, 1-based epoch, validation SRCC) of the 10 released KVQ models, in test.py order
_KVQ_MODELS = [
    (0, 9, "0.885692"),
    (1, 22, "0.894115"),
    (2, 25, "0.913571"),
    (3, 16, "0.901800"),
    (4, 6, "0.905095"),
    (0, 4, "0.905999"),
    (1, 19, "0.923127"),
    (2, 21, "0.924423"),
    (3, 8, "0.896798"),
    (4, 14, "0.904949"),
]
_ONE_ALIGN = "https://huggingface.co/q-future/one-align/resolve/main/"
_FASTVQA_RELEASES = (
    "https://github.com/VQAssessment/FAST-VQA-and-FasterVQA/releases/download/v2.0.0/",
    "https://github.com/TimothyHTimothy/FAST-VQA/releases/download/v2.0.0/",
)


def _builtin_entries() -> list[WeightsEntry]:
    entries = [
        WeightsEntry(
            name="rqvqa-lsvq-base",
            filename="Swin_b_384_in22k_SlowFast_Fast_LSVQ.pth",
            description="RQ-VQA base: Swin-B 384 (in22k) + SlowFast fast feature, trained on LSVQ (366 keys)",
            pages=("https://drive.google.com/file/d/1jgzVV0sil0kGhhHIV0RLr6YoDZNp7LNi",),
            size_hint="~362 MB (estimated)",
            licence=_RQVQA_LICENCE,
            used_by=("rqvqa model (initialisation)",),
            subdir="rqvqa",
        ),
        WeightsEntry(
            name=_KVQ_ARCHIVE,
            filename="ckpts.tar",
            description="RQ-VQA KVQ ensemble archive (10 models under ckpts/)",
            urls=(
                "https://www.dropbox.com/scl/fi/b551w7pha3wni0i4do143/ckpts.tar"
                "?rlkey=5w9folofqalnoi8lspqw7og3r&dl=1",
            ),
            pages=(
                "https://www.dropbox.com/scl/fi/b551w7pha3wni0i4do143/ckpts.tar?rlkey=5w9folofqalnoi8lspqw7og3r",
                "https://drive.google.com/file/d/1mcJdgYZPybUvLfWTUtZOhktsSsPlekgv",
            ),
            size_hint="~3.8 GB (estimated)",
            licence=_RQVQA_LICENCE,
            used_by=("rqvqa-kvq predictor",),
            subdir="rqvqa",
        ),
    ]
    for k, (split, epoch, srcc) in enumerate(_KVQ_MODELS, start=1):
        filename = (
            "Swin_b_384_in22k_SlowFast_Fast_LLM_LIQE_FASTVQA_BoT_NTIREVideo_plcc_NR_"
            f"v{split}_epoch_{epoch}_SRCC_{srcc}.pth"
        )
        entries.append(
            WeightsEntry(
                name=f"rqvqa-kvq-{k}",
                filename=filename,
                description=f"RQ-VQA KVQ ensemble model {k}/10 (split v{split}, val SRCC {srcc})",
                size_hint="~379 MB (estimated)",
                licence=_RQVQA_LICENCE,
                used_by=("rqvqa-kvq predictor",),
                subdir="rqvqa/ckpts",
                archive=_KVQ_ARCHIVE,
                member=f"ckpts/{filename}",
            )
        )
    entries += [
        WeightsEntry(
            name="liqe",
            filename="LIQE.pt",
            description="LIQE CLIP ViT-B/32 (official, bare OpenAI-layout state dict, 302 keys)",
            pages=(
                "https://drive.google.com/file/d/1GoKwUKNR-rvX11QbKRN8MuBZw2hXKHGh/view?usp=sharing",
                "https://pan.baidu.com/s/1KHjj7T8y2H_eKE6w7HnWJA (code 2b8v)",
            ),
            size_hint="300-600 MB (estimated)",
            licence="MIT (LIQE repository)",
            used_by=("liqe source", "liqe predictor"),
            subdir="liqe",
        ),
        WeightsEntry(
            name="liqe-mix",
            filename="liqe_mix.pt",
            description="LIQE mix-set weights as re-hosted by pyiqa ({'params': {'clip_model.*'}})",
            urls=(
                "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/liqe_mix.pt",
                "https://github.com/zwx8981/IQA-PyTorch/releases/download/Weights/liqe_mix.pt",
            ),
            licence="CC BY-NC-SA 4.0 (pyiqa weights repository)",
            used_by=("liqe source (weights='liqe-mix')", "liqe predictor"),
            subdir="liqe",
            hf_repo="chaofengc/IQA-PyTorch-Weights",
        ),
        WeightsEntry(
            name="fastvqa-b",
            filename="FAST_VQA_B_1_4.pth",
            description="FAST-VQA-B ({'state_dict': 197 keys})",
            urls=tuple(base + "FAST_VQA_B_1_4.pth" for base in _FASTVQA_RELEASES),
            pages=("https://1drv.ms/u/s!AsQt2I-RXJHQjoN0b_-BsMm-VHSGNw?e=PMKNTh",),
            size_hint="~127 MB (estimated)",
            licence="MIT (FAST-VQA repository)",
            used_by=("fastvqa source", "fastvqa predictor"),
            subdir="fastvqa",
        ),
        WeightsEntry(
            name="slowfast-r50",
            filename="SLOWFAST_8x8_R50.pyth",
            description="pytorchvideo SlowFast R50 8x8, Kinetics-400 ({'model_state': 662 keys})",
            urls=("https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/SLOWFAST_8x8_R50.pyth",),
            size_hint="~138 MB (estimated)",
            licence="Apache-2.0 (pytorchvideo model zoo)",
            used_by=("slowfast source",),
            subdir="slowfast",
        ),
    ]
    one_align = [
        ("pytorch_model-00001-of-00002.bin", "shard 1/2 (bfloat16)", "~9.99 GB"),
        ("pytorch_model-00002-of-00002.bin", "shard 2/2 (bfloat16)", "~6.42 GB"),
        ("config.json", "model configuration", ""),
        ("tokenizer.model", "LLaMA sentencepiece tokenizer", ""),
    ]
    for k, (filename, what, size_hint) in enumerate(one_align, start=1):
        entries.append(
            WeightsEntry(
                name=f"qalign-one-align-{k}" if k <= 2 else f"qalign-one-align-{Path(filename).stem}",
                filename=filename,
                description=f"Q-Align q-future/one-align (mPLUG-Owl2): {what}",
                urls=(_ONE_ALIGN + filename,),
                size_hint=size_hint,
                licence="MIT (model card); LLaMA 2 licence applies",
                used_by=("qalign source",),
                subdir="one-align",
                hf_repo="q-future/one-align",
            )
        )
    return entries


for _entry in _builtin_entries():
    register_weights(_entry)
GROUPS.update(
    {
        "qalign": tuple(e.name for e in list_weights() if e.hf_repo == "q-future/one-align"),
        "rqvqa-kvq": tuple(e.name for e in list_weights() if re.fullmatch(r"rqvqa-kvq-\d+", e.name)),
    }
)
