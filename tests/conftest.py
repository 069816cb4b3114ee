"""Shared test helpers: where the golden fixtures and the shared data live, and generated videos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RQVQA_SHARED", REPO.parent / "shared"))


def fixtures_dir() -> Path:
    """The golden-fixture folder: $RQVQA_FIXTURES, default ../shared/reference/fixtures."""
    return Path(os.environ.get("RQVQA_FIXTURES", SHARED / "reference" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures() -> Path:
    path = fixtures_dir()
    if not path.is_dir():
        pytest.skip(f"golden fixtures not found at {path} (set RQVQA_FIXTURES)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (the project alone has no human-rated data)")
    return path


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    path = SHARED / "reference"
    if not path.is_dir():
        pytest.skip(f"shared reference not found at {path}")
    return path


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def small_video(video_dir) -> Path:
    """A 2.5-s 320x240 30-fps H.264 clip."""
    from rqvqa.video.synth import make_video

    return make_video(video_dir / "small.mp4", width=320, height=240, fps=30, n_frames=75)


@pytest.fixture(scope="session", autouse=True)
def isolated_rqvqa_home(tmp_path_factory):
    """Every test session gets its own $RQVQA_HOME (download cache, first-use weight pins, hash and prompt
    caches), so tests never read or pin files in the user's real cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RQVQA_HOME", str(tmp_path_factory.mktemp("rqvqa_home")))
        yield
