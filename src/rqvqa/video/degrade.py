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


# ------------------------------------------------------------------ graded degradations (rqvqa.diagnosis)
#
# Each kind at three severities, for calibrating and testing the artifact diagnosis (`docs/diagnosis.md`).
# Encoded like the versions above (libx264, one thread, yuv420p, preset medium) plus `mbtree=0`, without which
# identical input frames can encode differently from one process to the next (`rqvqa.video.synth`); every
# kind but `crf` is encoded at CRF 18 with x264's defaults. Pixel operations work on the decoded planes of
# limited-range video (16-235 luma).

#: kind -> its severities, mildest first (the units are those of each kind, see `grade_video`)
GRADED: dict[str, tuple[float, ...]] = {
    # x264 CRF with the in-loop deblocking filter off (blocking left visible)
    "crf": (32.0, 40.0, 48.0),
    # Gaussian blur sigma in pixels on luma (half on the half-size chroma)
    "blur": (1.0, 2.0, 4.0),
    # Gaussian noise sigma in grey levels on luma, a new field every frame
    "noise": (10.0, 20.0, 40.0),
    # luma quantised to steps of this many grey levels (each level shown at its step's middle)
    "banding": (8.0, 16.0, 32.0),
    # share of every second during which the picture is frozen (the first frame of the second held)
    "freeze": (0.1, 0.25, 0.5),
    # exposure change in stops, applied in linear light (BT.1886 gamma 2.4), clipped at white
    "underexpose": (-1.0, -2.0, -3.0),
    "overexpose": (1.0, 2.0, 3.0),
    # display gamma applied to normalised luma: > 1 darkens the mid-tones, < 1 brightens them
    "gamma_dark": (1.5, 2.0, 3.0),
    "gamma_bright": (1 / 1.5, 1 / 2.0, 1 / 3.0),
}


def _norm(y: np.ndarray) -> np.ndarray:
    return np.clip((y.astype(np.float64) - 16.0) / 219.0, 0.0, 1.0)


def _denorm(yn: np.ndarray) -> np.ndarray:
    return np.clip(np.round(16.0 + 219.0 * yn), 0, 255).astype(np.uint8)


def _graded_planes(kind: str, severity: float, planes: Planes, rng: np.random.Generator) -> Planes:
    y = planes[0]
    if kind == "blur":
        return [
            cv2.GaussianBlur(p, (0, 0), severity if i == 0 else severity / 2, borderType=cv2.BORDER_REFLECT)
            for i, p in enumerate(planes)
        ]
    if kind == "noise":
        noisy = np.clip(np.round(y.astype(np.float64) + rng.normal(0.0, severity, y.shape)), 0, 255)
        return [noisy.astype(np.uint8), *planes[1:]]
    if kind == "banding":
        step = int(severity)
        banded = np.clip((y.astype(np.int32) // step) * step + step // 2, 0, 255).astype(np.uint8)
        return [banded, *planes[1:]]
    if kind in ("underexpose", "overexpose"):
        linear = _norm(y) ** 2.4 * 2.0**severity
        return [_denorm(np.clip(linear, 0.0, 1.0) ** (1 / 2.4)), *planes[1:]]
    if kind in ("gamma_dark", "gamma_bright"):
        return [_denorm(_norm(y) ** severity), *planes[1:]]
    return planes


def _yuv420p_frame(planes: Planes, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame from its three planes (any even size: the packed layout of `from_ndarray` needs the
    height to be a multiple of 4)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, data in zip(frame.planes, planes, strict=True):
        padded = np.zeros((plane.height, plane.line_size), np.uint8)
        padded[: data.shape[0], : data.shape[1]] = data
        plane.update(padded.tobytes())
    return frame


def grade_video(
    source: str | Path,
    out: str | Path,
    kind: str,
    severity: float | None = None,
    *,
    max_frames: int | None = None,
    seed: int = 0,
    crop: tuple[int, int, int, int] | None = None,
    size: tuple[int, int] | None = None,
) -> Path:
    """Write `source` with the degradation `kind` (a key of `GRADED`) at `severity` (one of its values;
    None: the clean re-encode, CRF 18) to `out` (.mp4) and return `out`.

    `crop` = (x, y, width, height) cuts that part of every frame first (even numbers: the chroma is half
    size), so that tests can grade a small piece of a large clip; `size` = (width, height) then resizes
    every plane (area interpolation, before the degradation; even numbers). `freeze` holds, in every second
    (counted in frames at the source's rate), the first frame for `severity` of the second."""
    if kind not in GRADED:
        raise KeyError(f"unknown graded degradation {kind!r} (one of {', '.join(GRADED)})")
    info = probe(source)
    x0, y0, width, height = crop or (0, 0, info.width, info.height)
    x0, y0 = x0 - x0 % 2, y0 - y0 % 2
    width, height = min(width, info.width - x0), min(height, info.height - y0)
    width, height = width - width % 2, height - height % 2
    crop_size = (width, height)
    if size is not None:
        width, height = size[0] - size[0] % 2, size[1] - size[1] % 2
    rate = Fraction(info.frame_rate).limit_denominator(100000)
    per_second = max(1, round(float(rate)))
    crf = int(severity) if kind == "crf" and severity is not None else 18
    params = "mbtree=0" + (":no-deblock=1" if kind == "crf" and severity is not None else "")
    rng = np.random.default_rng(seed)
    held: Planes | None = None
    out = Path(out)
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": str(crf), "threads": "1", "preset": "medium", "x264-params": params}
        for index, frame in decode_frames(source):
            if max_frames is not None and index >= max_frames:
                break
            if frame.format.name != "yuv420p":
                frame = frame.reformat(format="yuv420p")
            full = [
                np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes
            ]
            cw, ch = crop_size
            planes = [
                full[0][y0 : y0 + ch, x0 : x0 + cw].copy(),
                full[1][y0 // 2 : (y0 + ch) // 2, x0 // 2 : (x0 + cw) // 2].copy(),
                full[2][y0 // 2 : (y0 + ch) // 2, x0 // 2 : (x0 + cw) // 2].copy(),
            ]
            if (width, height) != crop_size:
                planes = [
                    cv2.resize(
                        p, (width // (1 + (i > 0)), height // (1 + (i > 0))), interpolation=cv2.INTER_AREA
                    )
                    for i, p in enumerate(planes)
                ]
            if kind == "freeze" and severity is not None:
                position = index % per_second
                if position == 0:
                    held = planes
                elif held is not None and position < round(severity * per_second):
                    planes = [p.copy() for p in held]
            elif severity is not None:
                planes = _graded_planes(kind, severity, planes, rng)
            vf = _yuv420p_frame(planes, width, height)
            vf.pts, vf.time_base = index, 1 / rate
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out
