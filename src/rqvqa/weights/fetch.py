"""Downloading checkpoints into the cache, resumably and checked.

Downloads go to ``<cache>/<subdir>/<filename>.part`` first and are resumed with an HTTP Range request when a
transfer breaks (in the same call, up to `RETRIES` times, or in a later call). Only a complete file whose
size and sha256 match (where known) is renamed to its final name, so a final name in the cache never holds a
half-written file. A ``.part`` left by an interrupted run is a resume point, never a usable file: the next
download continues it, and it is deleted when the finished file fails its checks (and the transfer is then
restarted once from scratch, in case the ``.part`` was stale).

Files hosted on the Hugging Face Hub (`WeightsEntry.hf_repo`: one-align, the LIQE mix weights) are fetched
with ``huggingface_hub`` into the standard HF cache (its etag / sha256 checks apply). The other hosts (GitHub
releases, Dropbox, fbaipublicfiles) go through the standard library's HTTP client with Range resumption; a URL
that answers with a web page instead of the file (Google Drive confirmation pages and the like) is rejected,
and so is a redirect from https to plain http.

A ``.part`` is promoted only when its expected length is known (registry size, or the length the server
announced) and met, or a known sha256 matches.
"""

from __future__ import annotations

import contextlib
import os
import re
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rqvqa.errors import WeightsError
from rqvqa.extras import require
from rqvqa.registry import MODELS_EXTRA, WeightsEntry
from rqvqa.version import __version__
from rqvqa.weights.cache import ENV_WEIGHTS_DIR, cache_dir, find, get_entry, locate, missing_message
from rqvqa.weights.pins import check_pinned, expected_sha256, sha256_file

TIMEOUT_S = 60.0
#: resumed attempts per URL after a transfer breaks mid-way
RETRIES = 3
#: seconds to wait before resume attempt k (k * RETRY_DELAY_S)
RETRY_DELAY_S = 2.0
_CHUNK = 1 << 20


def resolve(
    name: str, weights_dir: str | Path | None = None, download: bool = False, progress: bool = True
) -> Path:
    """Path of the checkpoint `name`, downloading it into the cache when allowed and missing.

    Files found on disk get a size check when the size is known and are checked against the published or
    pinned sha256 (`check_pinned`; hashed once per path, size and mtime, so an unchanged file costs nothing).
    """
    if not download or find(name, weights_dir) is not None:
        return locate(name, weights_dir)
    return _download(get_entry(name), progress=progress, restart=False, weights_dir=weights_dir)


class _TransferBroken(Exception):
    """The connection ended before the announced length: resume from what the .part holds."""


class _StalePart(Exception):
    """The server says the .part is longer than the file, or cannot be continued: start over."""


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
        raise WeightsError(missing_message(entry, None))
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
    require(MODELS_EXTRA, f"downloading {entry.name} from the Hugging Face Hub", "huggingface_hub")
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
