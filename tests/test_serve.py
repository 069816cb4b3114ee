"""`rqvqa serve`: a real uvicorn on 127.0.0.1 driven with httpx. Results equal `rqvqa predict`'s rows; every
bad request is a clean JSON 4xx and the server keeps serving."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi", reason="the service needs the serve extra (pip install 'rqvqa[serve]')")
pytest.importorskip("uvicorn", reason="the service needs the serve extra (pip install 'rqvqa[serve]')")
httpx = pytest.importorskip("httpx", reason="the service tests drive it with httpx")

from serving import running  # noqa: E402

from rqvqa.cli import main  # noqa: E402
from rqvqa.serve import ServeConfig, create_app  # noqa: E402

MAX_UPLOAD = 400_000
JSON = {"content-type": "application/json"}


class Records(logging.Handler):
    """Every record of a logger, kept for a test."""

    def __init__(self, name: str):
        super().__init__(logging.DEBUG)
        self.logger = logging.getLogger(name)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        self.logger.addHandler(self)
        self.level_was = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level_was)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A served root with two clips and a sub-folder; a secret file beside it and a symlink pointing at it."""
    from rqvqa.video.synth import make_video

    base = tmp_path_factory.mktemp("serve")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    make_video(root / "a.mp4", width=160, height=120, fps=10, n_frames=30, seed=1)
    make_video(root / "sub" / "b.mp4", width=160, height=120, fps=10, n_frames=20, blur=1.5, noise=6, seed=2)
    outside = make_video(base / "secret.mp4", width=160, height=120, fps=10, n_frames=10, seed=3)
    os.symlink(outside, root / "escape.mp4")
    os.symlink(base, root / "up")
    return root


@pytest.fixture(scope="module")
def service(root):
    app = create_app(ServeConfig(models=["lite", "brisque"], root=root, max_upload_bytes=MAX_UPLOAD))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, app


def _predict_row(capsys, path, model="lite") -> dict:
    main(["predict", "--json", "--model", model, str(path)])
    (row,) = json.loads(capsys.readouterr().out)
    return row


def _upload(client, name, data, **params):
    return client.post("/v1/score", files={"file": (name, data, "video/mp4")}, params=params)


def _chunked_upload(size: int):
    """A multipart body streamed in 50-kB chunks (HTTP chunked encoding), `size` bytes of file data."""
    yield b'--zz\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
    for _ in range(size // 50_000):
        yield b"\0" * 50_000
    yield b"\r\n--zz--\r\n"


def _same_row(got: dict, expected: dict, path: str) -> None:
    assert got["path"] == path
    assert got["timings"].keys() == expected["timings"].keys()  # measured, so not equal run to run
    skip = {"path", "timings"}
    assert {k: v for k, v in got.items() if k not in skip} == {
        k: v for k, v in expected.items() if k not in skip
    }


def test_health_models_and_openapi(service):
    client, _ = service
    assert client.get("/healthz").json()["status"] == "ok"
    models = client.get("/v1/models").json()
    assert models["default"] == "lite" and [m["name"] for m in models["models"]] == ["lite", "brisque"]
    spec = client.get("/openapi.json").json()
    assert "multipart/form-data" in spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]
    page = client.get("/")
    assert page.status_code == 200 and 'id="curve"' in page.text and "<script" in page.text


def test_scores_equal_predict(service, root, capsys):
    client, app = service
    expected = _predict_row(capsys, root / "a.mp4")
    upload = _upload(client, "a.mp4", (root / "a.mp4").read_bytes())
    assert upload.status_code == 200
    _same_row(upload.json(), expected, "a.mp4")
    by_path = client.post("/v1/score", json={"path": "sub/b.mp4", "model": "brisque"})
    assert by_path.status_code == 200
    _same_row(by_path.json(), _predict_row(capsys, root / "sub" / "b.mp4", "brisque"), "sub/b.mp4")
    # key frames on request: JPEGs of the worst seconds, the row otherwise unchanged; a.mp4's three seconds
    # are within 0.0003 of each other on lite's 1-5 scale: no worst second, no key frame
    with_frames = _upload(client, "a.mp4", (root / "a.mp4").read_bytes(), keyframes=2).json()
    assert with_frames["extra"].pop("keyframes") == []
    _same_row(with_frames, expected, "a.mp4")
    assert max(expected["per_second"]) - min(expected["per_second"]) < 0.01 * (5 - 1)
    # sub/b.mp4's two seconds differ by 0.2: the lower one is the worst, the best one is not "worst"
    expected = _predict_row(capsys, root / "sub" / "b.mp4")
    with_frames = client.post("/v1/score", json={"path": "sub/b.mp4"}, params={"keyframes": 2}).json()
    frames = with_frames["extra"].pop("keyframes")
    _same_row(with_frames, expected, "sub/b.mp4")
    assert len(frames) == 1 and all(f["jpeg"].startswith("data:image/jpeg;base64,/9j/") for f in frames)
    assert frames[0]["score"] == min(expected["per_second"])
    assert list(app.state.uploads.iterdir()) == []  # uploads deleted once scored


def test_bad_requests_are_clean_4xx(service, root, tmp_path):
    from rqvqa.video.synth import truncate_file

    client, app = service
    with Records("uvicorn.error") as errors:
        _bad_requests(client, app, root, tmp_path, truncate_file)
    # nothing reached the server's error log: no traceback, no "Exception in ASGI application"
    assert [r.getMessage() for r in errors.records if r.levelno >= logging.ERROR or r.exc_info] == []


def _bad_requests(client, app, root, tmp_path, truncate_file):
    truncated = truncate_file(root / "a.mp4", tmp_path / "t.mp4", 0.4).read_bytes()
    cases = [
        (_upload(client, "notes.mp4", b"just some text\n" * 20), 422, "notes.mp4: not a readable video"),
        (_upload(client, "t.mp4", truncated), 422, "t.mp4: "),
        (_upload(client, "empty.mp4", b""), 400, "empty.mp4: empty upload (0 bytes)"),
        (
            _upload(client, "big.mp4", b"\0" * (MAX_UPLOAD + 1)),
            413,
            f"upload over the limit of {MAX_UPLOAD} bytes",
        ),
        (
            client.post(
                "/v1/score",
                content=_chunked_upload(10 * 50_000),  # no Content-Length to refuse up front
                headers={"content-type": "multipart/form-data; boundary=zz"},
            ),
            413,
            "upload over the limit",
        ),
        (client.post("/v1/score", json={"path": "../secret.mp4"}), 403, "without '..'"),
        (client.post("/v1/score", json={"path": "sub/../../secret.mp4"}), 403, "without '..'"),
        (client.post("/v1/score", json={"path": str(root / "a.mp4")}), 403, "only paths under the root"),
        (client.post("/v1/score", json={"path": "escape.mp4"}), 403, "leads outside the root"),
        (client.post("/v1/score", json={"path": "up/secret.mp4"}), 403, "leads outside the root"),
        (client.post("/v1/score", json={"path": "nope.mp4"}), 404, "nope.mp4: no such file under the root"),
        (client.post("/v1/score", json={"path": "sub"}), 400, "sub: not a regular file"),
        (client.post("/v1/score", json={"file": "a.mp4"}), 400, "expected a JSON object"),
        (
            client.post("/v1/score", content=b"{oops", headers={"content-type": "application/json"}),
            400,
            "not valid JSON",
        ),
        (
            client.post("/v1/score", json={"path": "a.mp4", "model": "nosuch"}),
            400,
            "model 'nosuch' is not served",
        ),
        (
            client.post("/v1/score", content=b"abc", headers={"content-type": "text/plain"}),
            415,
            "multipart/form-data",
        ),
        (client.post("/v1/score", files={"other": ("a.mp4", b"123")}), 400, "no file in the form"),
        (
            client.post("/v1/score", params={"keyframes": "99"}, json={"path": "a.mp4"}),
            400,
            "keyframes must be",
        ),
        (client.get("/v1/nothing"), 404, "Not Found"),
        (client.get("/v1/score"), 405, "Method Not Allowed"),
        # issue 19 item 10: each of these was a 500 with a traceback in the log
        (client.post("/v1/score", json={"path": "x" * 300 + ".mp4"}), 400, "a path component over 255 bytes"),
        (client.post("/v1/score", json={"path": "sub/" + "é" * 200}), 400, "a path component over 255 bytes"),
        (client.post("/v1/score", json={"path": "a.mp4", "model": 5}), 400, "model must be a string"),
        (client.post("/v1/score", json={"path": "a.mp4", "model": ["lite"]}), 400, "model must be a string"),
        (client.post("/v1/score", json={"path": "a.mp4", "model": {"a": 1}}), 400, "model must be a string"),
        (
            client.post(
                "/v1/score", content=b'{"path": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", headers=JSON
            ),
            413,
            "a JSON body over 65536 bytes",
        ),
        (
            client.post("/v1/score", content=b'{"p": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", headers=JSON),
            400,
            "nested too deep",
        ),
        *(
            (
                client.post("/v1/score", params={"keyframes": bad}, json={"path": "a.mp4"}),
                400,
                "keyframes must be",
            )
            for bad in ("\u00b2", "\u0663", "9" * 5000, "-1", "1.5", " 2")
        ),
    ]
    for response, status, reason in cases:
        assert response.status_code == status, (reason, response.text)
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert reason in body["error"] and "\n" not in body["error"], body
        assert "Traceback" not in response.text and str(app.state.uploads) not in response.text
    # still serving, and nothing left behind
    assert client.post("/v1/score", json={"path": "a.mp4"}).json()["status"] == "ok"
    assert list(app.state.uploads.iterdir()) == []


def test_busy_service_says_503(service):
    client, app = service
    scorer = app.state.scorer
    scorer.in_flight += scorer.capacity  # as if the pool and its queue were full
    try:
        response = client.post("/v1/score", json={"path": "a.mp4"})
    finally:
        scorer.in_flight -= scorer.capacity
    assert response.status_code == 503 and response.json()["error"].startswith("busy:")
    assert client.post("/v1/score", json={"path": "a.mp4"}).status_code == 200


def test_api_key_and_timeout(root, monkeypatch):
    monkeypatch.setenv("RQVQA_API_KEY", "s3cret")
    app = create_app(ServeConfig(root=root, timeout_s=0.001))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/healthz").status_code == 200  # health checks need no key
        for headers in ({}, {"X-API-Key": "wrong"}):
            response = client.post("/v1/score", json={"path": "a.mp4"}, headers=headers)
            assert response.status_code == 401 and "API key" in response.json()["error"]
        assert client.get("/v1/models").status_code == 401
        late = client.post("/v1/score", json={"path": "a.mp4"}, headers={"Authorization": "Bearer s3cret"})
        assert late.status_code == 504 and "longer than 0.001 s" in late.json()["error"]
        assert client.get("/v1/models", headers={"X-API-Key": "s3cret"}).status_code == 200
        # a timed-out upload's work is stopped, the upload deleted, and its slot freed
        files = {"file": ("a.mp4", (root / "a.mp4").read_bytes(), "video/mp4")}
        late = client.post("/v1/score", files=files, headers={"X-API-Key": "s3cret"})
        assert late.status_code == 504
        deadline = time.monotonic() + 60
        while app.state.scorer.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.scorer.in_flight == 0 and list(app.state.uploads.iterdir()) == []


def test_timed_out_work_stops_and_frees_its_slot(root, monkeypatch):
    """A decode that outlives its request's timeout stops at its next frame: its slot is free within a frame's
    work, a request queued behind it never starts, and the next small clip is scored (before: each slow video
    kept its worker until its end, 9 s here, and the next clip got 504 or 503)."""
    from rqvqa.video import decode as decode_module
    from rqvqa.video.synth import make_video

    make_video(root / "slow.mp4", width=160, height=120, fps=10, n_frames=30, seed=4)
    frames_seen = []
    plain = decode_module.FileSource.frames

    def slow_frames(self, threaded=True):
        for index, frame in plain(self, threaded):
            if "slow" in self.name:
                frames_seen.append(index)
                time.sleep(0.3)  # 30 frames: 9 s unless stopped
            yield index, frame

    monkeypatch.setattr(decode_module.FileSource, "frames", slow_frames)
    app = create_app(ServeConfig(root=root, timeout_s=2.0, workers=1, queue=1))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        with ThreadPoolExecutor(2) as pool:
            slow = [pool.submit(client.post, "/v1/score", json={"path": "slow.mp4"}) for _ in range(2)]
            answers = [f.result() for f in slow]
        timed_out = time.monotonic()
        assert [a.status_code for a in answers] == [504, 504]
        while app.state.scorer.in_flight and time.monotonic() < timed_out + 30:
            time.sleep(0.01)
        freed_after = time.monotonic() - timed_out
        assert app.state.scorer.in_flight == 0 and freed_after < 1.0, freed_after
        assert len(frames_seen) <= 10  # one video started (about 2 s of 0.3-s frames), the queued one never
        assert client.post("/v1/score", json={"path": "a.mp4"}).status_code == 200


def test_access_log_has_one_line_per_request(service):
    client, _ = service
    with Records("rqvqa.serve.access") as log:
        assert client.post("/v1/score", json={"path": "a.mp4"}).status_code == 200
        assert client.post("/v1/score", json={"path": "nope\nINJECTED.mp4"}).status_code == 404
        assert _upload(client, "big.mp4", b"\0" * (MAX_UPLOAD + 1)).status_code == 413
        assert client.get("/healthz").status_code == 200
    lines = [r.getMessage() for r in log.records]
    assert len(lines) == 4 and all("\n" not in line for line in lines)
    ok, missing, big, health = (line.split(" ") for line in lines)
    assert ok[2:5] == ["POST", '"/v1/score"', "200"] and ok[6].endswith("s")
    assert ok[7:9] == ['video="a.mp4"', 'model="lite"'] and ok[9].startswith('result="')
    assert missing[4] == "404" and 'video="nope\\nINJECTED.mp4"' in lines[1]
    assert big[4] == "413" and health[2:5] == ["GET", '"/healthz"', "200"]


@pytest.mark.slow
def test_load_200_requests_concurrency_8(service, root):
    """200 uploads of 1-s clips, 8 at a time: no error, every score equals the clip's score."""
    from rqvqa.video.synth import make_video

    client, app = service
    for k in range(2):
        make_video(
            root / f"short{k}.mp4", width=128, height=96, fps=10, n_frames=10, seed=10 + k, noise=4 * k
        )
    clips = {name: (root / name).read_bytes() for name in ("short0.mp4", "short1.mp4")}
    expected = {name: client.post("/v1/score", json={"path": name}).json()["score"] for name in clips}
    names = [("short0.mp4", "short1.mp4")[k % 2] for k in range(200)]

    def one(name):
        response = _upload(client, name, clips[name])
        return name, response.status_code, response.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, names))
    assert [status for _, status, _ in results] == [200] * 200
    assert all(row["score"] == expected[name] for name, _, row in results)
    assert app.state.scorer.in_flight == 0 and list(app.state.uploads.iterdir()) == []


def test_serve_command_refuses_bad_options(tmp_path, capsys):
    assert main(["serve", "--root", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.strip() == f"rqvqa: error: --root {tmp_path / 'nope'} is not a folder"
    assert main(["serve", "--workers", "0"]) == 1
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_stoppable_decode_ends_at_the_next_frame(root):
    import threading

    from rqvqa.errors import StoppedError
    from rqvqa.report.keyframes import Thumbnails
    from rqvqa.video.decode import decode, stoppable

    products = {"thumbs": Thumbnails(((0, 25),))}
    stop = threading.Event()
    with stoppable(stop):
        assert list(decode(root / "a.mp4", products)["thumbs"]) == [0]  # not set: decodes as always
        stop.set()
        with pytest.raises(StoppedError, match="a.mp4: stopped after 0 frames: the caller gave up"):
            decode(root / "a.mp4", products)
    assert list(decode(root / "a.mp4", products)["thumbs"]) == [0]  # outside the block: no stop flag


def test_serve_access_log_file(root, tmp_path):
    """`rqvqa serve --access-log FILE`: the lines go to FILE (appended), one per request."""
    from rqvqa.cli.serve import _access_log
    from rqvqa.errors import ConfigError
    from rqvqa.serve.app import ACCESS_LOG

    with pytest.raises(ConfigError, match="--access-log .*nofolder/access.log: cannot open"):
        _access_log(tmp_path / "nofolder" / "access.log")
    log = tmp_path / "access.log"
    log.write_text("an older line\n")
    before = list(ACCESS_LOG.handlers), ACCESS_LOG.level, ACCESS_LOG.propagate
    _access_log(log)
    try:
        with (
            running(create_app(ServeConfig(root=root))) as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            assert client.get("/healthz").status_code == 200
            assert client.post("/v1/score", json={"path": "a.mp4"}).status_code == 200
    finally:
        for handler in ACCESS_LOG.handlers[len(before[0]) :]:
            ACCESS_LOG.removeHandler(handler)
            handler.close()
        ACCESS_LOG.setLevel(before[1])
        ACCESS_LOG.propagate = before[2]
    lines = log.read_text().splitlines()
    assert len(lines) == 3 and lines[0] == "an older line"
    assert ' GET "/healthz" 200 ' in lines[1] and ' POST "/v1/score" 200 ' in lines[2]
    assert re.search(r' [0-9.]+s video="a.mp4" model="lite" result="[0-9.]+"$', lines[2]), lines[2]
