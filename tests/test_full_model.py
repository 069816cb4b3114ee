"""The whole RQ-VQA model end to end at the official widths, on a real video, through the CLI (issue 15).

Random weights in the official layouts: one KVQ checkpoint with the 429 keys of the release (``torch.save`` of
the DataParallel state dict), SlowFast R50, LIQE's CLIP ViT-B/32 and FAST-VQA-B at full size from their key
manifests, and Q-Align at one-align's 4096-d width with one decoder layer and a small vision tower (written by
`bench/full_model.py`, which times the same run). The sources are found as a user's would be: through
``--weights-dir`` or ``$RQVQA_WEIGHTS_DIR``.
"""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from rqvqa.cli import main

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # full-size networks on a real 960x540 video: minutes on 2 CPU cores

VIDEO = "videos/5115335471.mp4"
#: fusion order and widths of the released head: base | slowfast | qalign | liqe | fastvqa
SLOTS = (("base", 1024), ("slowfast", 256), ("qalign", 4096), ("liqe", 495), ("fastvqa", 768))
SOURCES = [name for name, _ in SLOTS[1:]]


def _bench():
    spec = importlib.util.spec_from_file_location("full_model_bench", REPO / "bench" / "full_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory, fixtures, shared_data):
    bench = _bench()
    root = tmp_path_factory.mktemp("full_model")
    manifests = fixtures / "manifests"
    assert json.loads((manifests / "rqvqa_full_state_dict.json").read_text())["num_keys"] == 429
    kvq = bench.write_kvq(root / "kvq", manifests).parent
    weights = bench.write_sources(root / "weights", manifests, qalign_layers=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RQVQA_HOME", str(root / "home"))  # LIQE's prompt-feature cache, the download cache
        yield {"root": root, "kvq": kvq, "weights": weights, "video": shared_data / VIDEO}


@pytest.fixture
def fusion_inputs():
    """Every input of the regressor's first layer (the fusion point, 6639 wide) during a call."""
    seen: list[torch.Tensor] = []

    def hook(module, args, output):
        if isinstance(module, torch.nn.Linear) and module.in_features == sum(w for _, w in SLOTS):
            seen.append(args[0].detach().clone())

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    yield seen
    handle.remove()


def _predict(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert main(["predict", *argv, "--model", "rqvqa-kvq", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    return rows[0]


def test_official_run_matches_separately_extracted_features(setup, fusion_inputs, capsys, monkeypatch):
    from rqvqa.families.rqvqa.model import RQVQA, preset
    from rqvqa.families.rqvqa.preprocess import FrameTransform, align_rows
    from rqvqa.families.rqvqa.remap import load_weights
    from rqvqa.store import FeatureStore, keyframe_tag, video_id

    video = setup["video"]
    row = _predict(capsys, str(video), "--weights", str(setup["kvq"]), "--weights-dir", str(setup["weights"]))
    assert row["model"] == "rqvqa-kvq" and np.isfinite(row["score"])
    assert len(row["per_second"]) == 8 and all(np.isfinite(row["per_second"]))
    assert row["options"]["mode"] == "official" and row["extra"]["rows"] == 8
    assert list(row["extra"]["timings"]) == ["decode+sampling", *SOURCES, "base+head"]
    (fused,) = fusion_inputs
    assert fused.shape == (1, 8, 6639)

    # The same sources, this time found through $RQVQA_WEIGHTS_DIR, into a feature store.
    monkeypatch.setenv("RQVQA_WEIGHTS_DIR", str(setup["weights"]))
    manifest = setup["root"] / "manifest.csv"
    manifest.write_text(f"video,mos,group\n{video},2.16,a\n")
    store_dir = setup["root"] / "store"
    argv = ["extract", str(manifest), "--sources", ",".join(SOURCES), "--store", str(store_dir)]
    assert main([*argv, "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["done"] == 1 and not report["failed"]
    store, vid = FeatureStore(store_dir), video_id(str(video), manifest.parent)
    stored = {name: align_rows(store.load(name, report["sources"][name], vid), 8) for name in SOURCES}
    frames = FrameTransform()(store.load_keyframes(vid, keyframe_tag("official"))).unsqueeze(0)

    model = RQVQA(preset("rqvqa"))
    load_weights(model, next(setup["kvq"].glob("*.pth")))
    model.eval()
    features = {name: torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(0) for name, a in stored.items()}
    with torch.no_grad():
        base = model.base_features(frames)
        frame_scores, score = model(frames, features)
    expected = {"base": base[0], **{n: torch.from_numpy(np.ascontiguousarray(a)) for n, a in stored.items()}}
    start = 0
    for name, width in SLOTS:
        part = fused[0, :, start : start + width]
        want = expected[name] if expected[name].dim() == 2 else expected[name].expand(8, -1)
        assert want.shape == (8, width), name
        torch.testing.assert_close(part, want.float(), rtol=1e-4, atol=1e-4, msg=name)
        start += width
    assert start == 6639
    assert float(part.std()) > 0 and float(fused[0, :, 1024:1280].std()) > 0  # real, varying features
    assert row["score"] == pytest.approx(float(score[0]), abs=1e-4)
    np.testing.assert_allclose(row["per_second"], frame_scores[0].numpy(), atol=1e-4)


def _loop(src, dst, frames: int) -> None:
    """Re-encode `src` looped to `frames` frames (lossless-enough H.264, single-threaded: deterministic)."""
    import av

    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(30000, 1001))
        stream.width, stream.height, stream.pix_fmt = 960, 540, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"preset": "ultrafast", "crf": "18"}
        written = 0
        while written < frames:
            with av.open(str(src)) as inp:
                for frame in inp.decode(video=0):
                    if written == frames:
                        break
                    out.mux(stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")))
                    written += 1
        out.mux(stream.encode(None))


def test_full_mode_scores_every_second_of_a_20_s_video(setup, fusion_inputs, capsys, monkeypatch):
    looped = setup["root"] / "looped_20s.mp4"
    _loop(setup["video"], looped, 600)  # 600 frames at 29.97 fps: 20.02 s
    monkeypatch.setenv("RQVQA_WEIGHTS_DIR", str(setup["weights"]))
    row = _predict(capsys, str(looped), "--weights", str(setup["kvq"]), "--mode", "full")
    assert row["options"]["mode"] == "full" and row["extra"]["rows"] == 20
    assert len(row["per_second"]) == 20 and all(np.isfinite(row["per_second"]))
    assert np.isfinite(row["score"]) and row["score"] == pytest.approx(np.mean(row["per_second"]), abs=1e-5)
    (fused,) = fusion_inputs
    assert fused.shape == (1, 20, 6639)
    # the loop repeats the content: second k and second k + 8 see (nearly) the same frame
    np.testing.assert_allclose(row["per_second"][:4], row["per_second"][8:12], atol=0.05)


def test_bench_script_runs_on_cpu(setup, small_video):
    """bench/full_model.py on the same weights and a short generated clip, so it is known to work before the
    first GPU run (`--device cuda --dtype bfloat16 ...`)."""
    argv = ["--weights-dir", str(setup["weights"]), "--kvq", str(setup["kvq"]), "--video", str(small_video)]
    (report,) = _bench().main([*argv, "--repeats", "0", "--threads", "2", "--json"])
    stages = ["decode+sampling", *SOURCES, "base+head", "total"]
    assert list(report["seconds"]) == list(report["cpu_seconds"]) == stages
    assert all(v >= 0 for v in report["seconds"].values()) and report["seconds"]["total"] > 0
    assert report["per_second"] == 3 and np.isfinite(report["score"]) and report["peak_memory_mb"] > 0
    assert report["runs"].startswith("cold")
