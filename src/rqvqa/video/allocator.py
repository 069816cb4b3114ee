"""glibc's memory allocator, set once per process for the decode stage's pattern of allocation.

The frame work allocates and frees arrays of 1-32 MiB many times a frame (a 1080p float64 plane is 16 MiB, a
480p map 3.3 MiB). With glibc's defaults such a block is mapped from the kernel and unmapped when freed (above
a threshold that only adapts after the first frees), and the heap is trimmed as soon as twice that threshold
lies free at its top: the next frame's arrays then fault their pages in again, one by one, and the kernel
zeroes each. Three 8-s 1080p clips of `lite` took about 480,000 minor page faults and 2 s of system time that
way (docs/videval.md, "Fifth round").

`tune_allocator` keeps freed blocks in the heap instead: blocks up to 32 MiB (glibc's own ceiling for the
adaptive threshold) come from the heap, and the heap returns memory to the kernel once more than 256 MiB lies
free at its top. Larger blocks (8K frames) are still mapped and unmapped as before, so the bound on memory per
video does not change; a process keeps at most 256 MiB of freed memory at its heap's top for the next video.

Only on glibc, and never over the user's own choice: a process started with `MALLOC_MMAP_THRESHOLD_`,
`MALLOC_TRIM_THRESHOLD_` or glibc tunables (`GLIBC_TUNABLES`) set keeps them.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

#: blocks above this many bytes are mapped from the kernel and unmapped when freed (glibc's largest adaptive
#: threshold on 64-bit systems: the most `mallopt` accepts)
MMAP_THRESHOLD = 32 * 1024 * 1024
#: the heap gives memory back to the kernel once more than this many bytes lie free at its top
TRIM_THRESHOLD = 256 * 1024 * 1024
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
# mallopt's parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

_lock = threading.Lock()
_done: bool | None = None


def tune_allocator() -> bool:
    """Set glibc's thresholds (see the module docstring) once per process; later calls do nothing. True when
    this process runs with them (set now or before), False where they do not apply (another C library, or
    the user's own malloc settings)."""
    global _done
    with _lock:
        if _done is None:
            _done = _apply()
        return _done


def _apply() -> bool:
    if any(os.environ.get(name) for name in _USER_SETTINGS):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # each call answers 1 on success; setting either threshold stops glibc adapting both
    mmap_set = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim_set = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(mmap_set and trim_set)
