"""Shared by the pipeline tests: the generated collection and decode stages that are slow or crash on purpose.

The classes live in an importable module (not a test file) because engines pickle them into worker
processes and Ray workers, which import them by name.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

from rqvqa.api import create_predictor
from rqvqa.predictor import Predictor

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


def wait_for_busy_worker(log: str, timeout: float = 30.0) -> int | None:
    """Pid of a worker inside a `SlowStage` call, waiting up to `timeout` s for one (None if none came).
    When a row arrives, its worker may not have taken its next video yet and another may have just ended
    one: the queued videos keep the workers busy within moments."""
    deadline = time.monotonic() + timeout
    while not (busy := busy_workers(log)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return busy[-1] if busy else None


def starts(log: str) -> list[tuple[int, str]]:
    """(pid, path) of every `SlowStage` call started."""
    with open(log) as handle:
        return [
            (int(pid), path)
            for event, pid, path in (ln.rstrip("\n").split(" ", 2) for ln in handle)
            if event == "start"
        ]


class SlowLite(Predictor):
    """`lite` whose decode stage is slow on purpose."""

    name = "slow-lite"

    def __init__(self, log: str, seconds: float = 0.3):
        self.lite, self.log, self.seconds = create_predictor("lite"), log, seconds
        self.card = dataclasses.replace(self.lite.card, name="slow-lite")

    def products(self):
        return self.lite.products()

    def decoder(self):
        return SlowStage(self.lite.decoder(), self.log, self.seconds)

    def setup(self):
        self.lite.setup()

    def score(self, batch):
        return self.lite.score(batch)


class Crasher:
    """A stage that kills its own worker on one video (a decoder segfault, say)."""

    def __init__(self, inner, poison: str):
        self.inner, self.poison = inner, poison

    def __call__(self, path: str):
        if path.endswith(self.poison):
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(path)


class CrashingLite(SlowLite):
    def decoder(self):
        return Crasher(self.lite.decoder(), "clip03.mp4")


class LoggedDecoder:
    """A decode stage that notes which process ran it."""

    def __init__(self, inner, log: str):
        self.inner, self.log = inner, log

    def __call__(self, path: str):
        with open(self.log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        return self.inner(path)


class Logged(Predictor):
    """Any predictor, its decode stage logged (`LoggedDecoder`)."""

    def __init__(self, inner: Predictor, log: str):
        self.inner, self.log, self.card = inner, log, inner.card

    def products(self):
        return self.inner.products()

    def decoder(self):
        return LoggedDecoder(self.inner.decoder(), self.log)

    def setup(self):
        self.inner.setup()

    def score(self, batch):
        return self.inner.score(batch)

    def resources(self):
        return self.inner.resources()


def decode_pids(log: str) -> set[int]:
    with open(log) as handle:
        return {int(line) for line in handle if line.strip()}
