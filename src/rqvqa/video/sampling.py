"""Samplers fed from one streaming decode: key frames (Eq. 1), chunks (Eq. 2), FAST-VQA fragments.

(Implementation in progress: the `VideoSample` container below is the contract the feature sources read.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rqvqa.video.reader import VideoInfo


@dataclass
class VideoSample:
    """Everything the models read from one video, produced by a single decode pass.

    Products not requested are None. All arrays are uint8 RGB, channels last.
    """

    info: VideoInfo
    #: decoded frame index of each key frame row (official mode repeats the last one up to 8)
    keyframe_indices: list[int]
    #: key frames at native resolution, each (H, W, 3) (LIQE, Q-Align)
    keyframes: list[np.ndarray] | None = None
    #: key frames resized so the short side is 384 (cv2-style bilinear, no antialias), each (h, w, 3)
    keyframes_384: list[np.ndarray] | None = None
    #: (start, stop) frame ranges of each chunk, stop exclusive before padding
    chunk_ranges: list[tuple[int, int]] = field(default_factory=list)
    #: chunks of 32 frames resized to 224x224, shape (n_chunks, 32, 224, 224, 3)
    chunks: np.ndarray | None = None
    #: FAST-VQA fragments, shape (n_clips, T, 224, 224, 3) (FAST-VQA-B: 4 clips, T = 32)
    fragments: np.ndarray | None = None
