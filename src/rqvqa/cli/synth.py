"""`rqvqa synth OUT.mp4`: write a generated test clip, so examples need no download."""

from __future__ import annotations

import argparse
from fractions import Fraction

from rqvqa.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate a synthetic test video (no download needed)")
    p.add_argument("out", help="output file (.mp4 or .mkv)")
    p.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    p.add_argument("--fps", default="30", help="frame rate, may be a fraction such as 30000/1001")
    p.add_argument("--seconds", type=float, default=8.0, help="duration in seconds (default 8)")
    p.add_argument("--codec", default="libx264", choices=["libx264", "libx265"])
    p.add_argument("--crf", type=int, default=23, help="encoder quality, higher = worse (default 23)")
    p.add_argument("--blur", type=float, default=0.0, help="Gaussian blur sigma in pixels")
    p.add_argument("--noise", type=float, default=0.0, help="additive Gaussian noise std (0-255 scale)")
    p.add_argument("--seed", type=int, default=0, help="content seed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rqvqa.video.synth import make_video

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
        fps = Fraction(args.fps)
    except (ValueError, ZeroDivisionError) as exc:
        raise ConfigError(f"bad --size/--fps ({exc})") from exc
    if width < 2 or height < 2 or fps <= 0 or args.seconds <= 0:
        raise ConfigError("--size, --fps and --seconds must be positive")
    n_frames = max(1, round(args.seconds * fps))
    path = make_video(
        args.out,
        width=width,
        height=height,
        fps=fps,
        n_frames=n_frames,
        codec=args.codec,
        crf=args.crf,
        blur=args.blur,
        noise=args.noise,
        seed=args.seed,
    )
    print(f"wrote {path} ({width}x{height}, {n_frames} frames at {float(fps):.3f} fps)")
    return 0
