"""`rqvqa serve`: the scoring service (FastAPI + uvicorn, `pip install 'rqvqa[serve]'`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rqvqa.cli.options import add_max_pixels_option
from rqvqa.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="an HTTP scoring service with a page (POST /v1/score, GET /)",
        description="Serve quality scores over HTTP: POST /v1/score (a multipart upload, field 'file', or "
        'JSON {"path": ...} naming a file under --root) returns the row that `rqvqa predict --json` prints; '
        "GET / is a page to drop a video on; GET /v1/models, GET /healthz, OpenAPI at /openapi.json.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--model", action="append", help="model to serve (repeat for several; the first is the default; lite)"
    )
    p.add_argument("--weights", default=None, help="weights folder or file (models that need weights)")
    p.add_argument("--device", default="cpu", help="torch device for neural models")
    p.add_argument("--root", type=Path, help="folder whose files JSON requests may name (none: uploads only)")
    p.add_argument("--api-key", help="require this key (header X-API-Key); default: $RQVQA_API_KEY if set")
    p.add_argument("--workers", type=int, default=2, help="videos scored at once (default 2)")
    p.add_argument("--queue", type=int, default=8, help="requests waiting beyond those; more get 503 (8)")
    p.add_argument("--max-upload-mb", type=float, default=512, help="largest upload in MiB (default 512)")
    add_max_pixels_option(p)
    p.add_argument("--max-seconds", type=float, default=3600, help="refuse longer videos (default 3600)")
    p.add_argument("--timeout", type=float, default=300, help="seconds before a request gets 504 (300)")
    p.add_argument(
        "--access-log",
        type=Path,
        metavar="FILE",
        help="append the access log (one line per request) to FILE instead of the standard error",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("the service needs FastAPI and uvicorn (pip install 'rqvqa[serve]')") from None
    from rqvqa.serve import ServeConfig, create_app

    models = args.model or ["lite"]
    options = {"weights": args.weights, "device": args.device}
    config = ServeConfig(
        models=models,
        root=args.root,
        api_key=args.api_key,
        workers=args.workers,
        queue=args.queue,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        max_seconds=args.max_seconds,
        timeout_s=args.timeout,
        model_options={m: options for m in models},
    )
    app = create_app(config)
    _access_log(args.access_log)
    # the service's own access log replaces uvicorn's (which has no timing, model or video)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


def _access_log(path: Path | None) -> None:
    """Send `rqvqa.serve.access` lines to `path` (appended) or the standard error, one message a line."""
    import logging

    from rqvqa.serve.app import ACCESS_LOG

    try:
        handler = logging.StreamHandler() if path is None else logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"--access-log {path}: cannot open ({exc.strerror or type(exc).__name__})"
        ) from None
    handler.setFormatter(logging.Formatter("%(message)s"))
    ACCESS_LOG.addHandler(handler)
    ACCESS_LOG.setLevel(logging.INFO)
    ACCESS_LOG.propagate = False
