"""Weights registry, cache and downloader, against a local HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import socket
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rqvqa import weights
from rqvqa.errors import ConfigError, WeightsError
from rqvqa.registry import REGISTRY, WeightsEntry
from rqvqa.weights import fetch, pins


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    #: path -> number of body bytes to send before dropping the connection (consumed once)
    drop_after: dict[str, int] = field(default_factory=dict)
    #: paths whose handler ignores Range headers (answers 200 with the whole file)
    no_range: set[str] = field(default_factory=set)
    #: paths answered with an HTML page
    html: set[str] = field(default_factory=set)
    #: paths answered without Content-Length (the body ends when the connection closes)
    no_length: set[str] = field(default_factory=set)
    #: path -> Location of a 302 redirect
    redirects: dict[str, str] = field(default_factory=dict)
    #: (path, Range header or None) of every request
    log: list[tuple[str, str | None]] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        state.log.append((self.path, range_header))
        if self.path in state.redirects:
            self.send_response(302)
            self.send_header("Location", state.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path in state.html:
            body = b"<html>confirm download</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and self.path not in state.no_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        if self.path in state.no_length:
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = state.drop_after.pop(self.path, None)
        self.wfile.write(body if cut is None else body[:cut])
        self.wfile.flush()
        if cut is not None:  # announce the full length, send part of it, hang up
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture()
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, httpd.state  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache under tmp, no hand-made folders, no proxies, no waiting between resume attempts."""
    monkeypatch.setenv("RQVQA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RQVQA_WEIGHTS_DIR", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fetch, "RETRY_DELAY_S", 0.0)


@pytest.fixture()
def add_entry():
    names = []

    def add(**kwargs) -> WeightsEntry:
        kwargs.setdefault("description", "test file")
        entry = REGISTRY.add_weights(WeightsEntry(**kwargs), replace=True)
        names.append(entry.name)
        return entry

    yield add
    for name in names:
        REGISTRY.remove_weights(name)


def _payload(n: int = 300_000, seed: int = 1) -> bytes:
    return bytes((i * 7919 + seed * 31 + (i >> 9)) % 256 for i in range(n))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cache_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def test_download_verifies_and_renames(server, add_entry):
    base, state = server
    data = _payload()
    state.files["/a.bin"] = data
    add_entry(
        name="t-a", filename="a.bin", urls=(base + "/a.bin",), size=len(data), sha256=_sha(data), subdir="t"
    )
    path = weights.download("t-a", progress=False)
    assert path == weights.cache_dir() / "t" / "a.bin"
    assert path.read_bytes() == data
    assert _cache_files(weights.cache_dir()) == ["a.bin"]  # no .part, no .lock
    assert weights.resolve("t-a") == path
    # a second download is a no-op: no new request
    n_requests = len(state.log)
    assert weights.download("t-a", progress=False) == path
    assert len(state.log) == n_requests


def test_resume_after_dropped_connection_in_same_call(server, add_entry):
    base, state = server
    data = _payload()
    state.files["/b.bin"] = data
    state.drop_after["/b.bin"] = 123_457
    add_entry(name="t-b", filename="b.bin", urls=(base + "/b.bin",), sha256=_sha(data))
    path = weights.download("t-b", progress=False)
    assert path.read_bytes() == data
    assert state.log == [("/b.bin", None), ("/b.bin", "bytes=123457-")]


def test_interrupted_download_leaves_only_part_and_resumes_later(server, add_entry, monkeypatch):
    base, state = server
    data = _payload()
    state.files["/c.bin"] = data
    state.drop_after["/c.bin"] = 100_000
    add_entry(name="t-c", filename="c.bin", urls=(base + "/c.bin",), sha256=_sha(data))
    monkeypatch.setattr(fetch, "RETRIES", 0)
    with pytest.raises(WeightsError, match="run the download again to resume") as err:
        weights.download("t-c", progress=False)
    assert "\n" not in str(err.value)
    dest = weights.cache_dir() / "c.bin"
    assert not dest.exists()
    part = dest.with_name("c.bin.part")
    assert part.read_bytes() == data[:100_000]
    with pytest.raises(WeightsError, match="not found"):
        weights.resolve("t-c")  # a .part is never a usable file
    assert weights.download("t-c", progress=False).read_bytes() == data
    assert state.log[-1] == ("/c.bin", "bytes=100000-")
    assert not part.exists()


def test_checksum_mismatch_is_rejected_and_nothing_is_left(server, add_entry):
    base, state = server
    data = _payload()
    state.files["/d.bin"] = data
    add_entry(name="t-d", filename="d.bin", urls=(base + "/d.bin",), sha256=_sha(b"something else"))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        weights.download("t-d", progress=False)
    assert _cache_files(weights.cache_dir()) == []


def test_size_mismatch_is_rejected(server, add_entry):
    base, state = server
    state.files["/s.bin"] = _payload(1000)
    add_entry(name="t-s", filename="s.bin", urls=(base + "/s.bin",), size=999)
    with pytest.raises(WeightsError, match="got 1000 bytes, expected 999"):
        weights.download("t-s", progress=False)
    assert _cache_files(weights.cache_dir()) == []


def test_stale_part_is_discarded_and_restarted(server, add_entry):
    base, state = server
    data = _payload()
    state.files["/e.bin"] = data
    add_entry(name="t-e", filename="e.bin", urls=(base + "/e.bin",), sha256=_sha(data))
    part = weights.cache_dir() / "e.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\x00" * 5000)  # left over from another version of the file
    assert weights.download("t-e", progress=False).read_bytes() == data
    assert state.log == [("/e.bin", "bytes=5000-"), ("/e.bin", None)]


def test_part_longer_than_file_is_restarted(server, add_entry):
    base, state = server
    data = _payload(4000)
    state.files["/f.bin"] = data
    add_entry(name="t-f", filename="f.bin", urls=(base + "/f.bin",))
    part = weights.cache_dir() / "f.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\x01" * 9000)
    assert weights.download("t-f", progress=False).read_bytes() == data
    assert state.log == [("/f.bin", "bytes=9000-"), ("/f.bin", None)]


def test_server_without_range_support_starts_over(server, add_entry):
    base, state = server
    data = _payload()
    state.files["/g.bin"] = data
    state.no_range.add("/g.bin")
    add_entry(name="t-g", filename="g.bin", urls=(base + "/g.bin",))
    part = weights.cache_dir() / "g.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:7000])
    assert weights.download("t-g", progress=False).read_bytes() == data


def test_falls_back_to_the_next_url(server, add_entry):
    base, state = server
    data = _payload(5000)
    state.files["/h.bin"] = data
    add_entry(name="t-h", filename="h.bin", urls=(base + "/missing.bin", base + "/h.bin"), sha256=_sha(data))
    assert weights.download("t-h", progress=False).read_bytes() == data


def test_web_page_instead_of_file_is_rejected(server, add_entry):
    base, state = server
    state.html.add("/page")
    add_entry(name="t-html", filename="x.pth", urls=(base + "/page",))
    with pytest.raises(WeightsError, match="web page"):
        weights.download("t-html", progress=False)
    assert _cache_files(weights.cache_dir()) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_gives_one_clear_message(add_entry):
    url = f"http://127.0.0.1:{_closed_port()}/w.pth"
    add_entry(
        name="t-off", filename="w.pth", urls=(url,), pages=("https://example.invalid/page",), subdir="x"
    )
    with pytest.raises(WeightsError) as err:
        weights.resolve("t-off", download=True, progress=False)
    message = str(err.value)
    assert "\n" not in message
    dest = weights.cache_dir() / "x" / "w.pth"
    assert message.startswith(f"{dest}: could not download w.pth (")
    assert url in message and "https://example.invalid/page" in message
    assert "--weights-dir" in message and "RQVQA_WEIGHTS_DIR" in message
    assert _cache_files(weights.rqvqa_home()) == []


def test_missing_file_without_download(add_entry):
    add_entry(name="t-m", filename="m.pth", pages=("https://example.invalid/drive",), subdir="m")
    with pytest.raises(WeightsError) as err:
        weights.resolve("t-m")
    message = str(err.value)
    assert "m.pth (t-m) not found" in message
    assert "no direct download exists" in message and "https://example.invalid/drive" in message
    assert str(weights.cache_dir() / "m") in message
    with pytest.raises(WeightsError, match="no direct download exists"):
        weights.download("t-m")


def test_unknown_name():
    with pytest.raises(ConfigError, match="unknown weights 'nope'"):
        weights.resolve("nope")


def test_lookup_order_weights_dir_env_cache(tmp_path, add_entry, monkeypatch):
    entry = add_entry(name="t-l", filename="l.pth", subdir="sub", member="inner/l.pth", archive="t-none")
    cache_file = weights.cache_dir() / "sub" / "l.pth"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(b"cache")
    assert weights.find("t-l") == cache_file
    env_dir = tmp_path / "env"
    (env_dir / "inner").mkdir(parents=True)
    (env_dir / "inner" / "l.pth").write_bytes(b"env")  # the archive layout is recognised too
    monkeypatch.setenv("RQVQA_WEIGHTS_DIR", str(tmp_path / "empty") + ":" + str(env_dir))
    assert weights.find("t-l") == env_dir / "inner" / "l.pth"
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / entry.filename).write_bytes(b"hand")  # bare file name
    assert weights.find("t-l", weights_dir=hand) == hand / "l.pth"
    # the files differ: the first one used is pinned and the others are refused (trust on first use)
    assert weights.resolve("t-l", weights_dir=hand) == hand / "l.pth"
    with pytest.raises(WeightsError, match="differs from the pinned"):
        weights.resolve("t-l")


def test_found_file_with_wrong_size_is_refused(tmp_path, add_entry):
    add_entry(name="t-w", filename="w.pth", size=10)
    (tmp_path / "w.pth").write_bytes(b"123")
    with pytest.raises(WeightsError, match="3 bytes, expected 10"):
        weights.resolve("t-w", weights_dir=tmp_path)


def test_archive_member_is_extracted(server, add_entry):
    base, state = server
    member = _payload(20_000, seed=3)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("ckpts/m1.pth")
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    state.files["/ckpts.tar"] = buffer.getvalue()
    add_entry(name="t-tar", filename="ckpts.tar", urls=(base + "/ckpts.tar",), subdir="r")
    add_entry(
        name="t-m1",
        filename="m1.pth",
        subdir="r/ckpts",
        archive="t-tar",
        member="ckpts/m1.pth",
        sha256=_sha(member),
    )
    path = weights.download("t-m1", progress=False)
    assert path == weights.cache_dir() / "r" / "ckpts" / "m1.pth"
    assert path.read_bytes() == member
    assert _cache_files(weights.cache_dir()) == ["ckpts.tar", "m1.pth"]


def test_verify_statuses(tmp_path, add_entry):
    good = b"good bytes"
    add_entry(name="t-ok", filename="ok.pth", sha256=_sha(good))
    add_entry(name="t-bad", filename="bad.pth", sha256=_sha(good))
    add_entry(name="t-unk", filename="unk.pth")
    add_entry(name="t-none", filename="none.pth")
    (tmp_path / "ok.pth").write_bytes(good)
    (tmp_path / "bad.pth").write_bytes(b"bad bytes!")
    (tmp_path / "unk.pth").write_bytes(good)
    assert weights.verify("t-ok", tmp_path).status == "ok"
    bad = weights.verify("t-bad", tmp_path)
    assert (bad.status, bad.failed, bad.sha256) == ("bad-sha256", True, _sha(b"bad bytes!"))
    unk = weights.verify("t-unk", tmp_path)
    assert (unk.status, unk.failed, unk.sha256) == ("pinned-now", False, _sha(good))
    assert weights.verify("t-unk", tmp_path).status == "pinned"
    assert weights.verify("t-none", tmp_path).status == "missing"


def test_builtin_registry_is_consistent():
    entries = weights.list_weights()
    names = [e.name for e in entries]
    assert len(names) == len(set(names))
    for required in ("liqe", "liqe-mix", "fastvqa-b", "slowfast-r50", "rqvqa-lsvq-base", "rqvqa-kvq-ckpts"):
        assert required in names
    kvq = [e for e in entries if re.fullmatch(r"rqvqa-kvq-\d+", e.name)]
    assert len(kvq) == 10
    for e in kvq:
        assert e.archive == "rqvqa-kvq-ckpts" and e.member == f"ckpts/{e.filename}"
        assert re.fullmatch(
            r"Swin_b_384_in22k_SlowFast_Fast_LLM_LIQE_FASTVQA_BoT_NTIREVideo_plcc_NR_"
            r"v[0-4]_epoch_\d+_SRCC_0\.\d{6}\.pth",
            e.filename,
        )
    for e in entries:
        assert e.urls or e.pages or e.archive, e.name  # every file says where it comes from
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
        assert all(u.startswith("https://") for u in e.urls)
        assert e.licence and e.used_by
    cache_paths = [weights.cache_dir() / e.relpath for e in entries]
    assert len(cache_paths) == len(set(cache_paths))


# ----------------------------------------------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> int:
    import argparse

    from rqvqa.cli import weights as cli

    parser = argparse.ArgumentParser(prog="rqvqa")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_list_json_and_table(tmp_path, add_entry, capsys):
    add_entry(name="t-cli", filename="cli.pth", pages=("https://example.invalid/p",))
    (tmp_path / "cli.pth").write_bytes(b"x")
    assert _cli(["weights", "list", "--json", "--weights-dir", str(tmp_path)]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["t-cli"]["path"] == str(tmp_path / "cli.pth")
    assert rows["liqe"]["path"] is None and rows["liqe"]["filename"] == "LIQE.pt"
    assert rows["liqe"]["cache_path"] == str(weights.cache_dir() / "liqe" / "LIQE.pt")
    assert _cli(["weights", "list"]) == 0
    table = capsys.readouterr().out
    assert "t-cli" in table and "slowfast-r50" in table


def test_cli_download_path_verify(server, add_entry, capsys):
    base, state = server
    data = _payload(50_000)
    state.files["/cli.bin"] = data
    add_entry(name="t-dl", filename="cli.bin", urls=(base + "/cli.bin",), sha256=_sha(data))
    assert _cli(["weights", "download", "t-dl", "--no-progress", "--json"]) == 0
    path = weights.cache_dir() / "cli.bin"
    assert json.loads(capsys.readouterr().out) == {"t-dl": str(path)}
    assert _cli(["weights", "path", "t-dl"]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert _cli(["weights", "verify", "--json"]) == 0
    assert [(r["name"], r["status"]) for r in json.loads(capsys.readouterr().out)] == [("t-dl", "ok")]
    path.write_bytes(b"corrupted")
    assert _cli(["weights", "verify", "t-dl"]) == 1
    assert "bad-sha256" in capsys.readouterr().out
    assert _cli(["weights", "verify", "liqe", "--json"]) == 1  # named explicitly and missing
    assert json.loads(capsys.readouterr().out)[0]["status"] == "missing"


def test_cli_path_of_missing_file_raises(add_entry):
    add_entry(name="t-p", filename="p.pth", pages=("https://example.invalid/p",))
    with pytest.raises(WeightsError, match="p.pth \\(t-p\\) not found"):
        _cli(["weights", "path", "t-p"])


@pytest.mark.slow  # imports every sub-command module
def test_cli_main_prints_one_line_errors(add_entry, capsys):
    from rqvqa.cli import main

    url = f"http://127.0.0.1:{_closed_port()}/o.pth"
    add_entry(name="t-main", filename="o.pth", urls=(url,))
    assert main(["weights", "download", "t-main", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rqvqa: error: ") and err.count("\n") == 1
    assert "could not download o.pth" in err and "--weights-dir" in err
    assert main(["weights", "path", "t-main"]) == 1
    assert "o.pth (t-main) not found" in capsys.readouterr().err


def test_member_is_extracted_from_an_archive_fetched_by_hand(tmp_path, add_entry):
    member = _payload(3000, seed=5)
    hand = tmp_path / "hand"
    hand.mkdir()
    with tarfile.open(hand / "pack.tar", mode="w") as tar:
        info = tarfile.TarInfo("ckpts/m2.pth")
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    add_entry(name="t-pack", filename="pack.tar", pages=("https://example.invalid/pack",))
    add_entry(name="t-m2", filename="m2.pth", subdir="p", archive="t-pack", member="ckpts/m2.pth")
    with pytest.raises(WeightsError, match="m2.pth \\(t-m2\\) not found"):
        weights.resolve("t-m2", weights_dir=hand)  # no download allowed: the archive is not unpacked
    path = weights.resolve("t-m2", weights_dir=hand, download=True, progress=False)
    assert path == weights.cache_dir() / "p" / "m2.pth" and path.read_bytes() == member


# ------------------------------------------------------------------------- verification of what arrives


def test_body_of_unknown_length_is_not_promoted_without_a_hash(server, add_entry):
    base, state = server
    data = _payload(40_000)
    state.files["/n.bin"] = data
    state.no_length.add("/n.bin")
    add_entry(name="t-n", filename="n.bin", urls=(base + "/n.bin",))
    with pytest.raises(WeightsError, match="length is unknown"):
        weights.download("t-n", progress=False)
    assert _cache_files(weights.cache_dir()) == []  # neither a final file nor a .part that looks complete
    add_entry(name="t-n", filename="n.bin", urls=(base + "/n.bin",), sha256=_sha(data))
    assert weights.download("t-n", progress=False).read_bytes() == data  # a known hash proves it


def test_full_length_stale_part_is_fetched_again_without_a_hash(server, add_entry):
    base, state = server
    data = _payload(30_000)
    state.files["/f.bin"] = data
    add_entry(name="t-f", filename="f.bin", urls=(base + "/f.bin",))
    part = weights.cache_dir() / "f.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\x01" * len(data))  # right size, other content (an older version of the file)
    assert weights.download("t-f", progress=False).read_bytes() == data
    assert state.log == [("/f.bin", "bytes=30000-"), ("/f.bin", None)]
    assert weights.pinned("t-f")["sha256"] == _sha(data)


def test_https_to_http_redirect_is_refused_and_others_followed(server, add_entry):
    import urllib.error
    import urllib.request

    handler = fetch._NoDowngradeRedirects()
    request = urllib.request.Request("https://example.invalid/w.pth")
    with pytest.raises(urllib.error.URLError, match="refused a redirect from https to http"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://127.0.0.1/w.pth")
    assert handler.redirect_request(request, None, 302, "Found", {}, "https://cdn.invalid/w.pth") is not None
    base, state = server
    data = _payload(10_000)
    state.files["/real.bin"] = data
    state.redirects["/moved.bin"] = "/real.bin"
    add_entry(name="t-r", filename="r.bin", urls=(base + "/moved.bin",), size=len(data))
    assert weights.download("t-r", progress=False).read_bytes() == data


def test_first_use_pins_and_later_uses_are_checked(server, add_entry, monkeypatch):
    base, state = server
    data = _payload(20_000)
    state.files["/t.bin"] = data
    add_entry(name="t-t", filename="t.bin", urls=(base + "/t.bin",))
    path = weights.download("t-t", progress=False)
    record = json.loads(weights.lock_file().read_text())["t-t"]
    assert (record["size"], record["sha256"]) == (len(data), _sha(data))
    assert record["origin"].startswith("downloaded from http://127.0.0.1")

    hashed = []
    real = pins.sha256_file
    monkeypatch.setattr(pins, "sha256_file", lambda p: hashed.append(p) or real(p))
    assert weights.resolve("t-t") == path and hashed == []  # unchanged file: the cached hash serves
    path.write_bytes(bytes(b ^ 1 for b in data))  # same size, other content, new mtime
    with pytest.raises(WeightsError, match=r"differs from the pinned .*verify --repin t-t"):
        weights.resolve("t-t")
    assert len(hashed) == 1
    assert weights.verify("t-t").status == "bad-sha256"
    assert weights.verify("t-t", repin=True).status == "pinned-now"
    assert weights.resolve("t-t") == path


def test_hand_placed_file_is_pinned_on_first_use(tmp_path, add_entry):
    add_entry(name="t-h", filename="h.pth", pages=("https://example.invalid/h",))
    (tmp_path / "h.pth").write_bytes(b"first")
    weights.resolve("t-h", tmp_path)
    assert weights.pinned("t-h")["sha256"] == _sha(b"first")
    other = tmp_path / "other"
    other.mkdir()
    (other / "h.pth").write_bytes(b"other")
    with pytest.raises(WeightsError, match="differs from the pinned"):
        weights.resolve("t-h", other)


def test_symlink_archive_member_is_a_clean_error(tmp_path, add_entry):
    hand = tmp_path / "hand"
    hand.mkdir()
    with tarfile.open(hand / "links.tar", mode="w") as tar:
        info = tarfile.TarInfo("ckpts/link.pth")
        info.type, info.linkname = tarfile.SYMTYPE, "../absent.pth"
        tar.addfile(info)
    add_entry(name="t-links", filename="links.tar", pages=("https://example.invalid/l",))
    add_entry(name="t-link", filename="link.pth", subdir="l", archive="t-links", member="ckpts/link.pth")
    with pytest.raises(WeightsError, match="not a regular file"):
        weights.resolve("t-link", weights_dir=hand, download=True, progress=False)


@pytest.fixture()
def hf_cache(tmp_path, monkeypatch):
    """A Hugging Face cache as huggingface_hub lays it out (refs/main -> snapshots/<rev>/file), offline."""
    from huggingface_hub import constants

    root = tmp_path / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def add(repo: str, files: dict[str, bytes], revision: str = "0123456789abcdef") -> Path:
        folder = root / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text(revision)
        snapshot = folder / "snapshots" / revision
        snapshot.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            blob = folder / "blobs" / _sha(data)
            blob.parent.mkdir(exist_ok=True)
            blob.write_bytes(data)
            (snapshot / name).symlink_to(blob)
        return snapshot

    return add


def test_hub_files_come_from_the_shared_hf_cache(hf_cache, capsys):
    files = {
        "pytorch_model-00001-of-00002.bin": b"shard one",
        "pytorch_model-00002-of-00002.bin": b"shard two",
        "config.json": b"{}",
        "tokenizer.model": b"spm",
    }
    snapshot = hf_cache("q-future/one-align", files)
    assert weights.expand("qalign") == [
        "qalign-one-align-1",
        "qalign-one-align-2",
        "qalign-one-align-config",
        "qalign-one-align-tokenizer",
    ]
    assert weights.find("qalign-one-align-config") == snapshot / "config.json"
    from rqvqa.families.qalign.source import one_align_dir

    assert one_align_dir() == snapshot
    assert _cli(["weights", "download", "qalign", "--json", "--no-progress"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert Path(paths.pop("qalign")) == snapshot  # the group's folder: what --weights-dir takes
    assert {Path(p).parent for p in paths.values()} == {snapshot} and len(paths) == 4
    assert weights.pinned("qalign-one-align-2")["sha256"] == _sha(b"shard two")
    assert _cli(["weights", "path", "qalign"]) == 0
    assert capsys.readouterr().out.strip() == str(snapshot)


def test_kvq_group_folder_is_found_without_weights_argument(tmp_path):
    names = weights.groups()["rqvqa-kvq"]
    assert len(names) == 10
    for name in names[:9]:
        (tmp_path / weights.get_entry(name).filename).write_bytes(b"x")
    assert weights.group_folder("rqvqa-kvq", tmp_path) is None  # one member missing
    (tmp_path / weights.get_entry(names[9]).filename).write_bytes(b"x")
    assert weights.group_folder("rqvqa-kvq", tmp_path) == tmp_path


def test_hub_download_failure_is_one_clean_line(hf_cache):
    hf_cache("chaofengc/IQA-PyTorch-Weights", {"other.pt": b"x"})
    with pytest.raises(WeightsError, match="could not download liqe_mix.pt from the Hugging Face Hub") as err:
        weights.resolve("liqe-mix", download=True, progress=False)
    assert "\n" not in str(err.value)


class _Opaque:
    """Not a tensor: a checkpoint holding it must be refused by safe loading."""


def test_checkpoint_with_python_objects_is_refused_in_one_line(tmp_path):
    import torch

    from rqvqa.checkpoints import read_checkpoint

    path = tmp_path / "obj.pth"
    torch.save({"state_dict": {}, "extra": _Opaque()}, path)
    with pytest.raises(WeightsError, match=r"holds Python objects \(.*_Opaque\) besides tensors") as err:
        read_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and "weights_only=False" not in message and "weights_only" not in message


def test_missing_group_member_names_the_group_download(hf_cache):
    hf_cache("q-future/one-align", {"config.json": b"{}"})
    with pytest.raises(WeightsError, match=r"`rqvqa weights download qalign` \(all files of qalign\)") as e:
        weights.resolve("qalign-one-align-1")
    assert "Hugging Face cache" in str(e.value) and "--weights-dir" in str(e.value)


def test_a_tampered_file_with_its_mtime_restored_is_hashed_again(tmp_path, add_entry):
    add_entry(name="t-m", filename="m.pth", pages=("https://example.invalid/m",))
    path = tmp_path / "m.pth"
    path.write_bytes(b"genuine!")
    weights.resolve("t-m", tmp_path)  # pinned, and its hash cached
    stat = path.stat()
    path.write_bytes(b"tampered")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime restored: only the ctime tells
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    with pytest.raises(WeightsError, match="differs from the pinned"):
        weights.resolve("t-m", tmp_path)


def test_a_read_only_home_does_not_block_a_valid_checkpoint(tmp_path, add_entry, monkeypatch):
    add_entry(name="t-r", filename="r.pth", pages=("https://example.invalid/r",))
    (tmp_path / "r.pth").write_bytes(b"weights")

    def read_only(*args, **kwargs):
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(pins, "atomic_write_text", read_only)  # root ignores chmod: simulate the mount
    with pytest.warns(UserWarning, match="could not record .*Read-only file system"):
        assert weights.resolve("t-r", tmp_path) == tmp_path / "r.pth"


def test_a_file_of_zero_bytes_named_pth_is_refused_in_our_words(tmp_path):
    from rqvqa.checkpoints import read_checkpoint

    path = tmp_path / "zeros.pth"
    path.write_bytes(bytes(1000))
    with pytest.raises(WeightsError, match=r"not a checkpoint \(neither a torch archive nor a pickle: zero"):
        read_checkpoint(path)
    (tmp_path / "text.pth").write_text("<html>not found</html>")
    with pytest.raises(WeightsError, match="starts with b'<htm'") as err:
        read_checkpoint(tmp_path / "text.pth")
    assert "weights_only" not in str(err.value)


def test_rqvqa_kvq_names_every_missing_file_up_front(tmp_path, monkeypatch):
    from rqvqa.api import create_predictor
    from rqvqa.errors import ConfigError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / "LIQE.pt").write_bytes(b"at hand")
    with pytest.raises((WeightsError, ConfigError)) as err:
        create_predictor("rqvqa-kvq", weights_dir=str(hand))
    message = str(err.value)
    assert "16 of 17 files are missing" in message and "\n" not in message
    for name in ("rqvqa-kvq-1", "rqvqa-kvq-10", "slowfast-r50", "fastvqa-b", "qalign-one-align-tokenizer"):
        assert f"({name})" in message
    assert "(liqe)" not in message


@pytest.mark.parametrize("model", ["liqe", "fastvqa", "qalign"])
def test_missing_weights_are_one_error_up_front_not_one_per_video(model, tmp_path, monkeypatch):
    from rqvqa.api import create_predictor

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("RQVQA_OFFLINE", "1")
    with pytest.raises(WeightsError, match="not found") as err:
        create_predictor(model)  # before any video is decoded
    assert "\n" not in str(err.value)
