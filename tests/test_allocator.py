"""The decode stage's allocator settings (`rqvqa.video.allocator`): once a video was decoded, freed
frame-sized arrays stay in the heap, so the next frame's arrays take no page faults; glibc only, and never
over the user's own malloc settings. Each case runs in a fresh process (the settings are per process)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from rqvqa.video.allocator import _USER_SETTINGS

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")

_PROBE = """
import json, resource, sys
import numpy as np
from rqvqa.video import allocator
from rqvqa.video.decode import decode

if sys.argv[1] == "decode":
    decode(sys.argv[2], {})  # no product: the video is opened, no frame decoded

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

rounds = []
for _ in range(4):
    before = faults()
    arrays = [np.ones(2_000_000) for _ in range(3)]  # three 16 MB arrays, every page written, then freed
    del arrays
    rounds.append(faults() - before)
print(json.dumps({"tuned": allocator.tune_allocator(), "rounds": rounds}))
"""


def _probe(what: str, video: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in _USER_SETTINGS}
    # 4 KiB pages: numpy would ask for huge pages for these arrays, which fault 512 times less often
    environment.update(NUMPY_MADVISE_HUGEPAGE="0", **env)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, what, video],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_after_a_decode_freed_frame_arrays_are_reused_without_page_faults(small_video):
    tuned = _probe("decode", str(small_video))
    assert tuned["tuned"] is True
    # the first round maps the pages (48 MB: about 11,700 faults); later rounds reuse them
    assert tuned["rounds"][0] > 5_000
    assert max(tuned["rounds"][1:]) < 200, tuned
    # the same probe in a process that never decoded: glibc's defaults give the memory back each round
    untouched = _probe("nothing", str(small_video))
    assert min(untouched["rounds"][1:]) > 2_000, untouched


def test_the_users_own_malloc_settings_are_left_alone(small_video):
    kept = _probe("decode", str(small_video), MALLOC_TRIM_THRESHOLD_="131072")
    assert kept["tuned"] is False
