"""Shared by the pipeline tests: the generated collection and CPU stages that are slow or crash on purpose.

The classes live in an importable module (not a test file) because engines pickle them into worker
processes and Ray workers, which import them by name.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from rqvqa.zoo import Predictor, create_predictor

N_GOOD = 10


def make_clips(root: Path) -> Path:
    """12 clips: 10 generated ones (different content and length, in nested folders) and 2 bad files."""
    from rqvqa.video.synth import make_video

    for i in range(N_GOOD):
        folder = root / ("a" if i % 2 else "b" / Path("deep"))
        folder.mkdir(parents=True, exist_ok=True)
        make_video(
            folder / f"clip{i:02d}.mp4", width=96, height=64, fps=10, n_frames=10 + 5 * (i % 3), seed=i
        )
    (root / "a" / "junk.mp4").write_bytes(b"not a video" * 40)
    (root / "b" / "empty.mov").write_bytes(b"")
    (root / "a" / "notes.txt").write_text("not listed: not a video extension")
    return root


def clean_rows(rows: list[dict]) -> list[dict]:
    """Rows without their timings (the only field that differs between engines), in path order."""
    return sorted(({k: v for k, v in r.items() if k != "timings"} for r in rows), key=lambda r: r["path"])


class SlowStage:
    """A CPU stage that takes a while (so a test can kill a worker mid-run) and records each start."""

    def __init__(self, inner, log: str, seconds: float = 0.3):
        self.inner, self.log, self.seconds = inner, log, seconds

    def __call__(self, path: str):
        with open(self.log, "a") as handle:
            handle.write(f"start {os.getpid()} {path}\n")
        time.sleep(self.seconds)
        result = self.inner(path)
        with open(self.log, "a") as handle:
            handle.write(f"end {os.getpid()} {path}\n")
        return result


def busy_workers(log: str) -> list[int]:
    """Pids of the workers inside a `SlowStage` call now (started, not ended), most recent last."""
    running: dict[int, str] = {}
    with open(log) as handle:
        for line in handle:
            event, pid, path = line.rstrip("\n").split(" ", 2)
            if event == "start":
                running[int(pid)] = path
            else:
                running.pop(int(pid), None)
    return list(running)


def starts(log: str) -> list[tuple[int, str]]:
    """(pid, path) of every `SlowStage` call started."""
    with open(log) as handle:
        return [
            (int(pid), path)
            for event, pid, path in (ln.rstrip("\n").split(" ", 2) for ln in handle)
            if event == "start"
        ]


class SlowLite(Predictor):
    name = "slow-lite"
    lower_better, score_range, scale = False, (1.0, 5.0), "test"

    def __init__(self, log: str, seconds: float = 0.3):
        super().__init__()
        self.lite, self.log, self.seconds = create_predictor("lite"), log, seconds

    def cpu_stage(self):
        return SlowStage(self.lite.predict, self.log, self.seconds)

    def predict(self, path):
        return self.lite.predict(path)


class Crasher:
    """A stage that kills its own worker on one video (a decoder segfault, say)."""

    def __init__(self, inner, poison: str):
        self.inner, self.poison = inner, poison

    def __call__(self, path: str):
        if path.endswith(self.poison):
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(path)


class CrashingLite(SlowLite):
    def cpu_stage(self):
        return Crasher(self.lite.predict, "clip03.mp4")
