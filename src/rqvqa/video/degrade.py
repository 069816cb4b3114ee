"""Re-encode a real video with controlled degradations (the degradation-consistency check of offline models).

Each version is encoded with libx264, one thread (bit-exact across runs), yuv420p, at the source's size and
frame rate; processing works on the decoded Y/U/V planes (no RGB round trip):

- `clean`: CRF 18 (the reference);
- `crf45`: CRF 45 (strong compression);
- `blur`: Gaussian blur, sigma 3 on luma (1.5 on the half-size chroma), then CRF 18;
- `noise`: temporal Gaussian noise on luma (sigma 12, a new field every frame, seeded), then CRF 18;
- `downup`: 4x down- then up-scaling of every plane (area down, bicubic up), then CRF 18.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from rqvqa.video.reader import decode_frames, probe

Planes = list[np.ndarray]


def _blur(planes: Planes, rng: np.random.Generator) -> Planes:
    return [
        cv2.GaussianBlur(p, (0, 0), 3.0 if i == 0 else 1.5, borderType=cv2.BORDER_REFLECT)
        for i, p in enumerate(planes)
    ]


def _noise(planes: Planes, rng: np.random.Generator) -> Planes:
    y = np.clip(np.round(planes[0].astype(np.float64) + rng.normal(0.0, 12.0, planes[0].shape)), 0, 255)
    return [y.astype(np.uint8), *planes[1:]]


def _downup(planes: Planes, rng: np.random.Generator) -> Planes:
    out = []
    for p in planes:
        h, w = p.shape
        small = cv2.resize(p, (max(w // 4, 1), max(h // 4, 1)), interpolation=cv2.INTER_AREA)
        out.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))
    return out


#: name -> (CRF, plane transform or None)
DEGRADATIONS: dict[str, tuple[int, Callable[[Planes, np.random.Generator], Planes] | None]] = {
    "clean": (18, None),
    "crf45": (45, None),
    "blur": (18, _blur),
    "noise": (18, _noise),
    "downup": (18, _downup),
}


def degrade_video(
    source: str | Path, out: str | Path, kind: str, *, max_frames: int | None = None, seed: int = 0
) -> Path:
    """Write `source` degraded by `kind` (a key of `DEGRADATIONS`) to `out` (.mp4) and return `out`."""
    crf, transform = DEGRADATIONS[kind]
    info = probe(source)
    width, height = info.width - info.width % 2, info.height - info.height % 2
    rng = np.random.default_rng(seed)
    out = Path(out)
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(info.frame_rate).limit_denominator(100000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": str(crf), "threads": "1", "preset": "medium"}
        for index, frame in decode_frames(source):
            if max_frames is not None and index >= max_frames:
                break
            if frame.format.name != "yuv420p":
                frame = frame.reformat(format="yuv420p")
            planes = [
                np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy()
                for p in frame.planes
            ]
            planes = [
                planes[0][:height, :width],
                planes[1][: height // 2, : width // 2],
                planes[2][: height // 2, : width // 2],
            ]
            if transform is not None:
                planes = transform(planes, rng)
            packed = np.concatenate([planes[0], planes[1].reshape(-1, width), planes[2].reshape(-1, width)])
            for packet in stream.encode(av.VideoFrame.from_ndarray(packed, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out
