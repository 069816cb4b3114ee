"""The scoring service: `POST /v1/score` returns the result row `rqvqa predict` prints for the same video.

Shape of the service:

- models are created once, at start-up (`ServeConfig.models`, the first is the default);
- scoring runs in a bounded thread pool off the event loop; at most `workers + queue` requests are admitted
  at once, the next one gets 503 at once instead of waiting without bound; a request over `timeout_s` gets 504
  and its work is stopped (`rqvqa.video.decode.stoppable`: the decode ends at its next frame, a queued job
  never starts), so its slot is free again within one frame's work, not after the whole video;
- the CLI's video limits (`rqvqa.video.reader.video_limits`: pixels, duration) apply to every video; uploads
  are bounded in bytes while they stream in (`BodyLimit`), stored under a private folder and deleted once
  scored;
- a JSON body names a file under `root`: ``..``, absolute paths and symlinks that lead out of the root are
  refused;
- with an API key, `/v1/*` needs it (header ``X-API-Key`` or ``Authorization: Bearer``);
- every error is JSON: a request error ``{"error": one line}`` with 400/401/403/404/413/415/503/504, a video
  that cannot be scored its error row (status "error", the one-line reason) with 422;
- every request is one line of the access log (logger ``rqvqa.serve.access``, `AccessLog`): time, client,
  method and path, status, bytes sent, seconds, and for scoring requests the model, the video's name and the
  score or the error (names JSON-quoted: no control character reaches the log).
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations (`Request`) at run time.
import asyncio
import hmac
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rqvqa.diagnosis.thresholds import KINDS, STRONG, THRESHOLDS
from rqvqa.errors import ConfigError, RqvqaError, StoppedError
from rqvqa.pipeline import score_video
from rqvqa.report.keyframes import data_uri, keyframe_jpegs, scored_frames, worst_seconds
from rqvqa.results import STATUS_OK, dumps_json
from rqvqa.video.decode import stoppable
from rqvqa.video.reader import video_limits

API_KEY_ENV = "RQVQA_API_KEY"
#: key frames the page asks for (the worst seconds), and the most a request may ask for
MAX_KEYFRAMES = 8
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
#: a JSON body only names a file: anything larger is refused (413) before it is parsed
MAX_JSON_BYTES = 64 * 1024
#: the longest file-name component a file system takes (bytes, as Linux's NAME_MAX)
MAX_NAME_BYTES = 255
ACCESS_LOG = logging.getLogger("rqvqa.serve.access")


@dataclass
class ServeConfig:
    models: list[str] = field(default_factory=lambda: ["lite"])
    root: Path | None = None
    api_key: str | None = None
    workers: int = 2
    queue: int = 8
    max_upload_bytes: int = 512 * 1024 * 1024
    max_pixels: int | None = None  # None: the CLI's default (`rqvqa.video.reader.Limits`)
    max_seconds: float | None = 3600.0  # a service's default is stricter than the CLI's 24 h
    timeout_s: float = 300.0
    model_options: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if not self.models:
            raise ConfigError("no model to serve")
        if self.workers < 1 or self.queue < 0:
            raise ConfigError("--workers must be at least 1 and --queue at least 0")
        if self.max_upload_bytes < 1 or self.timeout_s <= 0:
            raise ConfigError("--max-upload-mb and --timeout must be positive")
        if self.root is not None and not Path(self.root).is_dir():
            raise ConfigError(f"--root {self.root} is not a folder")


class RequestError(Exception):
    """A request the service refuses: HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _json(status: int, body: Any):
    from starlette.responses import Response

    return Response(dumps_json(body), status_code=status, media_type="application/json")


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is answered 413 as soon as it is known (declared
    Content-Length, or counted while a chunked body streams in), before it fills memory or disk."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        reason = f"upload over the limit of {self.limit} bytes"
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _json(413, {"error": reason})(scope, receive, send)
        seen = 0
        started = False

        class TooLarge(Exception):
            pass

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except TooLarge:
            if not started:
                await _json(413, {"error": reason})(scope, receive, send)


def _quoted(value: Any) -> str:
    """A value for a log line: JSON-quoted with every non-ASCII and control character escaped."""
    return json.dumps(str(value), ensure_ascii=True, allow_nan=False)


class AccessLog:
    """ASGI middleware: one line per HTTP request to `ACCESS_LOG` (INFO), written when the response ends.
    Handlers add what they know to the request's state (`access`: model, video, result)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        seen = {"status": 500, "bytes": 0}

        async def counted(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            client = scope.get("client") or ("-", 0)
            extra = "".join(f" {k}={_quoted(str(v)[:300])}" for k, v in (state.get("access") or {}).items())
            ACCESS_LOG.info(
                "%s %s %s %s %d %d %.3fs%s",
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                client[0],
                scope.get("method", "-"),
                _quoted(scope.get("path", "")),
                seen["status"],
                seen["bytes"],
                time.perf_counter() - started,
                extra,
            )


class Scorer:
    """Models created once, a bounded pool, the limits; `score(path, name, model, keyframes)` is awaitable."""

    def __init__(self, config: ServeConfig):
        from rqvqa.api import create_predictor

        self.config = config
        created = [create_predictor(name, **config.model_options.get(name, {})) for name in config.models]
        for predictor in created:
            predictor.setup()  # loaded once, before the first request
        # served under the name its rows carry (a trained ensemble has its own); the zoo name an operator
        # passed to `rqvqa serve --model` selects it too
        self.predictors = {p.card.name: p for p in created}
        self.aliases = {name: p.card.name for name, p in zip(config.models, created, strict=True)}
        self.default = created[0].card.name
        self.pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="rqvqa-score")
        self.capacity = config.workers + config.queue
        self.in_flight = 0
        self._lock = threading.Lock()
        self.limits = {"max_pixels": config.max_pixels, "max_seconds": config.max_seconds}

    def predictor(self, name: Any):
        if name is not None and not isinstance(name, str):
            raise RequestError(
                400, f"model must be a string (a served model's name), not {type(name).__name__}"
            )
        name = self.aliases.get(name, name) if name else self.default
        if name not in self.predictors:
            raise RequestError(400, f"model {name!r} is not served (served: {', '.join(self.predictors)})")
        return self.predictors[name]

    def _job(
        self, path: Path, shown: str, predictor, keyframes: int, cleanup: Path | None, stop: threading.Event
    ) -> dict:
        try:
            if stop.is_set():  # the request timed out while this job was queued: nobody waits for it
                raise StoppedError("not started: the request timed out in the queue", shown)
            with video_limits(**self.limits), stoppable(stop):
                row = score_video(predictor, path)
                if row["status"] == STATUS_OK and keyframes and not stop.is_set():
                    row["extra"]["keyframes"] = self._keyframes(path, row, keyframes, predictor.card)
        finally:
            if cleanup is not None:
                shutil.rmtree(cleanup, ignore_errors=True)
        # the client knows the video by its own name, not by the service's temporary path
        row["path"] = shown
        if row["error"]:
            row["error"] = row["error"].replace(str(path), shown)
        return row

    @staticmethod
    def _keyframes(path: Path, row: dict, n: int, card) -> list[dict]:
        seconds = worst_seconds(row["per_second"], row["lower_better"], n, card.score_range)
        try:
            jpegs = keyframe_jpegs(path, scored_frames(row, seconds))
        except RqvqaError:
            return []  # the score stands; thumbnails are a nicety
        return [
            {"second": s, "score": row["per_second"][s], "jpeg": data_uri(jpegs[s])}
            for s in seconds
            if s in jpegs
        ]

    async def score(
        self, path: Path, shown: str, model: str | None, keyframes: int, cleanup: Path | None = None
    ) -> dict:
        predictor = self.predictor(model)
        with self._lock:
            if self.in_flight >= self.capacity:
                if cleanup is not None:
                    shutil.rmtree(cleanup, ignore_errors=True)
                raise RequestError(503, f"busy: {self.in_flight} videos in progress, try again shortly")
            self.in_flight += 1
        stop = threading.Event()
        future = self.pool.submit(self._job, path, shown, predictor, keyframes, cleanup, stop)
        future.add_done_callback(self._release)
        try:
            # shielded: a timed-out job is not cancelled while queued, so it still runs its cleanup (the
            # upload's deletion); `stop` ends its work at the next frame (or before it starts), which frees
            # its slot
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.config.timeout_s)
        except TimeoutError:
            stop.set()
            raise RequestError(
                504, f"{shown}: scoring took longer than {self.config.timeout_s:g} s"
            ) from None

    def _release(self, _future) -> None:
        with self._lock:
            self.in_flight -= 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _under_root(root: Path | None, name: Any) -> Path:
    """The file `name` (relative, under `root`) resolved; RequestError for anything else."""
    if root is None:
        raise RequestError(403, "this service has no --root: upload the video instead")
    if not isinstance(name, str) or not name.strip():
        raise RequestError(400, 'expected a JSON object {"path": "relative/path/under/root.mp4"}')
    if "\x00" in name:
        raise RequestError(400, "a path with a NUL byte")
    shown = _quoted(name)[1:-1] if not name.isprintable() else name  # one line, whatever the name holds
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise RequestError(403, f"{shown}: only paths under the root, without '..', are served")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in rel.parts):
        raise RequestError(400, f"a path component over {MAX_NAME_BYTES} bytes: no such file can exist")
    base = root.resolve()
    try:
        target = (base / rel).resolve()
        if not target.is_relative_to(base):
            raise RequestError(403, f"{shown}: leads outside the root (symbolic link)")
        if not target.exists():
            raise RequestError(404, f"{shown}: no such file under the root")
        if not target.is_file():
            raise RequestError(400, f"{shown}: not a regular file")
    except (OSError, ValueError) as exc:  # a path the OS refuses (too long, a loop of links...)
        raise RequestError(400, f"{shown[:200]}: not a usable path ({type(exc).__name__})") from None
    return target


def create_app(config: ServeConfig | None = None):
    """The FastAPI application (models are created here, once)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse
    except ImportError:
        raise ConfigError("the service needs FastAPI and uvicorn (pip install 'rqvqa[serve]')") from None
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from rqvqa.version import __version__

    # the page (`GET /`): drop a video, see its score, per-second curve and worst key frames; CSS and script
    # inline, it talks only to this service
    page_html = resources.files("rqvqa.serve").joinpath("page.html").read_text(encoding="utf-8")

    config = config or ServeConfig()
    config.check()
    api_key = config.api_key or os.environ.get(API_KEY_ENV) or None
    root = None if config.root is None else Path(config.root)
    scorer = Scorer(config)
    uploads = Path(tempfile.mkdtemp(prefix="rqvqa-uploads-"))

    async def lifespan(_app):
        yield
        scorer.close()
        shutil.rmtree(uploads, ignore_errors=True)

    app = FastAPI(
        title="rqvqa",
        version=__version__,
        description="Blind video quality scores: the rows of `rqvqa predict` over HTTP.",
        lifespan=lifespan,
    )
    app.state.scorer = scorer
    app.state.uploads = uploads

    @app.exception_handler(RequestError)
    async def _request_error(_request, exc: RequestError):
        return _json(exc.status, {"error": exc.reason})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request, exc: StarletteHTTPException):
        return _json(exc.status_code, {"error": str(exc.detail)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError):
        first = next(iter(exc.errors()), {})
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _json(400, {"error": f"invalid request: {where} {first.get('msg', '')}".strip()})

    @app.exception_handler(Exception)
    async def _unexpected(_request, exc: Exception):
        return _json(500, {"error": f"internal error ({type(exc).__name__})"})

    def _check_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key") or ""
        auth = request.headers.get("authorization") or ""
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise RequestError(401, "missing or wrong API key (header X-API-Key)")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(page_html)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "models": list(scorer.predictors), "in_flight": scorer.in_flight}

    @app.get("/v1/models")
    async def models(request: Request):
        _check_key(request)
        cards = [p.card.to_dict() for p in scorer.predictors.values()]
        # what the page needs to word a row's diagnosis ("banding (strong)"): docs/diagnosis.md
        diagnosis = {"kinds": list(KINDS), "thresholds": THRESHOLDS, "strong": STRONG}
        return {"default": scorer.default, "models": cards, "diagnosis": diagnosis}

    body_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "model": {"type": "string"},
                        },
                        "required": ["file"],
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"path": {"type": "string"}, "model": {"type": "string"}},
                        "required": ["path"],
                    }
                },
            },
        },
        "parameters": [
            {
                "name": "keyframes",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_KEYFRAMES, "default": 0},
                "description": "JPEG key frames of the worst seconds, added to extra.keyframes",
            }
        ],
    }

    @app.post("/v1/score", openapi_extra=body_doc)
    async def score(request: Request):
        """Score one video: a multipart upload (field `file`) or a JSON body naming a file under --root.
        Returns the result row of `rqvqa predict` (200), or the error row (422) for a video that cannot be
        scored."""
        _check_key(request)
        keyframes = _keyframes_param(request.query_params.get("keyframes"))
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            row = await _score_upload(request, keyframes)
        elif kind == "application/json":
            raw = b""
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > MAX_JSON_BYTES:
                    raise RequestError(413, f"a JSON body over {MAX_JSON_BYTES} bytes (it only names a file)")
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RequestError(400, "the body is not valid JSON") from None
            except RecursionError:
                raise RequestError(400, "the body is not valid JSON (nested too deep)") from None
            if not isinstance(body, dict):
                raise RequestError(400, 'expected a JSON object {"path": ...}')
            request.state.access = {"video": body.get("path"), "model": body.get("model") or scorer.default}
            scorer.predictor(body.get("model"))  # a bad model is refused before the path is looked at
            target = _under_root(root, body.get("path"))
            row = await scorer.score(target, body["path"], body.get("model"), keyframes)
        else:
            raise RequestError(415, "send the video as multipart/form-data (field 'file') or JSON {\"path\"}")
        request.state.access = {
            "video": row["path"],
            "model": row["model"],
            "result": f"{row['score']:.6g}" if row["status"] == STATUS_OK else row["error"],
        }
        return _json(200 if row["status"] == STATUS_OK else 422, row)

    async def _score_upload(request: Request, keyframes: int) -> dict:
        try:
            form = await request.form(max_files=1, max_fields=4)
        except StarletteHTTPException as exc:
            raise RequestError(400, f"bad multipart body ({exc.detail})") from None
        try:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise RequestError(400, "no file in the form (field 'file')")
            model = form.get("model")
            model = model if isinstance(model, str) and model else None
            shown = Path(upload.filename or "upload").name or "upload"
            request.state.access = {"video": shown, "model": model or scorer.default}
            scorer.predictor(model)  # an unknown model is refused before the upload is copied
            suffix = Path(shown).suffix if _SAFE_SUFFIX.match(Path(shown).suffix or "") else ""
            folder = uploads / uuid.uuid4().hex
            folder.mkdir()
            target = folder / f"video{suffix}"
            try:
                with open(target, "wb") as out:
                    size = 0
                    while chunk := await upload.read(1 << 20):
                        size += len(chunk)
                        out.write(chunk)
                if size == 0:
                    raise RequestError(400, f"{shown}: empty upload (0 bytes)")
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        finally:
            await form.close()
        return await scorer.score(target, shown, model, keyframes, cleanup=folder)

    app.add_middleware(BodyLimit, limit=config.max_upload_bytes)
    app.add_middleware(AccessLog)  # the outermost: it sees every answer, the 413s of BodyLimit too
    return app


def _keyframes_param(value: str | None) -> int:
    if value is None or value == "":
        return 0
    # ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() refuses or reads
    if not re.fullmatch(r"[0-9]{1,3}", value) or int(value) > MAX_KEYFRAMES:
        raise RequestError(400, f"keyframes must be an integer from 0 to {MAX_KEYFRAMES}")
    return int(value)
