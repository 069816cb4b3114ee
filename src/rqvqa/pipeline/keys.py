"""Content keys: which bytes a row scored (the `content_key` column), computed in the decode stage's worker.

A file up to `WHOLE_LIMIT` bytes is hashed whole (BLAKE2b-128, about 1 GB/s on one core, far cheaper than
decoding it); a larger one by `SAMPLES` blocks of `BLOCK` bytes spread evenly over it, with its size, so the
key of any file costs at most 64 MiB of reading (a 1 TB sparse file: under a second, not 20 minutes). The
prefix says which: `blake2b128:` (whole) or `blake2b128-sampled:`.
"""

from __future__ import annotations

import hashlib
import os
import stat

KEY_PREFIX = "blake2b128:"
SAMPLED_PREFIX = "blake2b128-sampled:"
#: files up to this size are hashed whole
WHOLE_LIMIT = 256 * 2**20
#: larger files: this many blocks of this size, evenly spread (the first at 0, the last at the end)
SAMPLES = 64
BLOCK = 2**20


def content_key(path: str | os.PathLike[str]) -> tuple[int, str]:
    """(size in bytes, key) of the file (see the module docstring). Raises OSError when the file cannot be
    read."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size <= WHOLE_LIMIT:
            digest = hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16))
            return handle.tell(), KEY_PREFIX + digest.hexdigest()
        sampled = hashlib.blake2b(str(size).encode(), digest_size=16)
        for k in range(SAMPLES):
            handle.seek((size - BLOCK) * k // (SAMPLES - 1))
            sampled.update(handle.read(BLOCK))
    return size, SAMPLED_PREFIX + sampled.hexdigest()


def file_key(path: str) -> tuple[int | None, str | None]:
    """(size, key) of a regular file; (None, None) for anything else (a FIFO would block, a folder has no
    content) or a file that cannot be read: its row gets the reader's own reason from the decode stage."""
    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            return content_key(path)
    except (OSError, ValueError):  # ValueError: a NUL byte in the name
        pass
    return None, None
