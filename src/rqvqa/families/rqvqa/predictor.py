"""`rqvqa-kvq`: the whole RQ-VQA pipeline (rqvqa.md §7).

One decode (a `Sampling` product) feeds the base network's key frames and every frozen source; each ensemble
member regresses per-frame scores and the video score is the mean over members of their raw outputs (no
rescaling). `weights` is a folder holding either

- the official KVQ checkpoints (`*.pth`, 10 in the release; official layout, loaded through
  `rqvqa.families.rqvqa.remap`), or our safetensors exports (model configuration in their metadata), or
- a `rqvqa train` output folder (`ensemble.json`: configuration, members, feature scalers and the
  `Preprocessing` the members were trained with).

Scores: official mode reads 8 key-frame rows (the last second repeated for shorter videos), exactly as the
released models were trained; the per-second list holds the scores of the video's distinct seconds.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from rqvqa.errors import ConfigError, WeightsError
from rqvqa.families.rqvqa.ensemble import Ensemble, load_ensemble, read_ensemble_spec
from rqvqa.families.rqvqa.model import RQVQA, ModelConfig, preset
from rqvqa.families.rqvqa.preprocess import FrameTransform, Preprocessing, align_rows
from rqvqa.predictor import Predictor, Resources
from rqvqa.registry import REGISTRY, Card
from rqvqa.results import Prediction
from rqvqa.source import build_sources, check_shape
from rqvqa.video.decode import Decoded, Product
from rqvqa.video.sampling import MODES, Sampling, VideoSample

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors")


def missing_sources(config: ModelConfig) -> list[str]:
    """The model's feature sources that no family declares."""
    known = set(REGISTRY.source_names())
    return [name for name in config.source_names if name not in known]


def _check_all_weights(name: str, weights_dir: str | os.PathLike[str] | None, kvq: bool) -> None:
    """One error naming every missing file of the released model (the 10 KVQ checkpoints when `kvq`, and
    the feature sources' checkpoints), before anything loads."""
    from rqvqa.weights import find, get_entry

    names = [w for w in REGISTRY.model(name).weights if kvq or not w.startswith("rqvqa-kvq-")]
    absent = [w for w in names if find(w, weights_dir) is None]
    if not absent:
        return
    files = ", ".join(f"{get_entry(w).filename} ({w})" for w in absent)
    what = "the official KVQ checkpoints and its sources'" if kvq else "its sources'"
    raise WeightsError(
        f"model {name} needs {what} weights; {len(absent)} of {len(names)} files are missing: {files}; run "
        f"`rqvqa weights download {name}` and `rqvqa weights download NAME` for the others (`rqvqa weights "
        "list` says which can be downloaded), or give --weights DIR (KVQ checkpoints or a `rqvqa train` "
        "output folder) and --weights-dir DIR (the sources')"
    )


def _checkpoints(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix in CHECKPOINT_SUFFIXES and p.is_file())
    if not files:
        raise WeightsError(f"no checkpoints ({', '.join(CHECKPOINT_SUFFIXES)}) in the folder", folder)
    return files


def _official_config(folder: Path) -> ModelConfig:
    """The configuration of a folder of official checkpoints: stored in our safetensors exports, else the
    `rqvqa` preset (the released models)."""
    from rqvqa.families.rqvqa.remap import read_model_config

    first = _checkpoints(folder)[0]
    stored = read_model_config(first) if first.suffix == ".safetensors" else None
    return ModelConfig.from_dict(stored) if stored else preset("rqvqa")


def _members(folder: Path, config: ModelConfig) -> list[RQVQA]:
    """Load every checkpoint of `folder` (sorted by name) into one model each."""
    from rqvqa.families.rqvqa.remap import load_weights

    models = []
    for path in _checkpoints(folder):
        model = RQVQA(config)
        load_weights(model, path)
        models.append(model.eval())
    return models


class RQVQAKVQ(Predictor):
    name: ClassVar[str] = "rqvqa-kvq"
    loaded = ("ensemble",)

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        config: ModelConfig | None = None,
        mode: str | None = None,
        seed: int = 0,
        weights_dir: str | os.PathLike[str] | None = None,
        dtype: str | None = None,
        qalign_8bit: bool | None = None,
    ):
        """`weights`: a folder of official checkpoints or a `rqvqa train` output folder (None: the released
        models, downloaded or at hand); `config`: the model configuration of official checkpoints (default:
        the `rqvqa` preset); `mode`: the key-frame plan (default: the one the weights were trained with);
        `seed`: the FAST-VQA fragment sampling's; `weights_dir`: where the sources' checkpoints are (else
        `$RQVQA_WEIGHTS_DIR` and the download cache); `dtype`: the sources' compute precision (float32,
        float16, bfloat16; default: see `source_precision`); `qalign_8bit`: Q-Align in LLM.int8 (default: on
        CUDA when bitsandbytes is installed, as the released heads were trained)."""
        if weights is None:
            from rqvqa.weights import group_folder

            weights = group_folder("rqvqa-kvq", weights_dir)  # the released models, downloaded or at hand
            _check_all_weights(self.name, weights_dir, kvq=weights is None)
        self.folder = Path(weights)
        if not self.folder.is_dir():
            raise WeightsError("not a folder of checkpoints", self.folder)
        self.device = torch.device(device)
        self.trained = (self.folder / "ensemble.json").is_file()
        self.spec: dict[str, Any] = read_ensemble_spec(self.folder) if self.trained else {}
        if self.trained:
            if config is not None:
                raise ConfigError("a `rqvqa train` folder carries its own model configuration: drop config")
            self.config = ModelConfig.from_dict(self.spec["model"])
            self.preprocessing = Preprocessing.from_dict(self.spec["preprocessing"])
        else:
            self.config = config or _official_config(self.folder)
            # the official transform, cropped to what the base network takes (384 for the released models)
            crop = self.config.base.img_size if self.config.base is not None else 384
            self.preprocessing = Preprocessing(frames=FrameTransform(crop=crop))
        absent = missing_sources(self.config)
        if absent:
            raise ConfigError(
                f"model {self.name} needs feature sources that are not available yet: {', '.join(absent)}"
            )
        if mode is not None and mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode, self.seed = mode or self.preprocessing.mode, int(seed)
        dtypes, self.qalign_8bit = source_precision(device, dtype, qalign_8bit)
        self.sources = build_sources(
            self.config.source_names,
            device,
            Path(weights_dir) if weights_dir else None,
            dtypes,
            self.qalign_8bit,
        )
        for source in self.sources:
            source.check()  # a missing checkpoint is one error now, not one per video
        self.ensemble: Ensemble | None = None
        self.card = self._card(dtypes)

    def _card(self, dtypes: str | dict[str, str] | None) -> Card:
        options = {
            "mode": self.mode,
            "seed": self.seed,
            "dtype": dtypes if isinstance(dtypes, str | type(None)) else dict(sorted(dtypes.items())),
            "qalign_8bit": self.qalign_8bit,
        }
        preprocessing = {**self.preprocessing.to_dict(), "mode": self.mode}
        trained = self.spec.get("card")
        if not trained:
            return self.make_card(weights=self.folder.name, options=options, preprocessing=preprocessing)
        # a model trained with `rqvqa train` is not the released one: it shows its own card
        return self.make_card(
            weights=self.folder.name,
            options=options,
            preprocessing=preprocessing,
            name=trained["name"],
            scale=trained["scale"],
            score_range=tuple(trained["score_range"]),
            description=_trained_description(trained),
        )

    def products(self) -> dict[str, Product]:
        needs = set().union(*(s.needs for s in self.sources)) if self.sources else set()
        if self.config.needs_frames:
            needs.add("keyframes_384")
        return {"sample": Sampling(mode=self.mode, seed=self.seed, **dict.fromkeys(needs, True))}

    def setup(self) -> None:
        if self.ensemble is None:
            if self.trained:
                self.ensemble = load_ensemble(self.folder, self.spec, self.device)
            else:
                self.ensemble = Ensemble(_members(self.folder, self.config)).to(self.device)
        for source in self.sources:
            source.setup()

    def resources(self) -> Resources:
        return Resources(gpus=int(self.device.type == "cuda"), memory_mb=24000, networks=True)

    def _inputs(
        self, sample: VideoSample, clock: _Clock, timings: dict[str, float], cpu: dict[str, float]
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor], int]:
        """One video's network inputs (frames (rows, 3, H, W), features per source) and its row count."""
        path = str(sample.info.path)
        rows = len(sample.keyframe_indices)
        frames = None
        if self.config.needs_frames:
            frames = self.preprocessing.frames(sample.keyframes_384)
            rows = frames.shape[0]
        features = {}
        for source in self.sources:
            array = align_rows(check_shape(source, np.asarray(source.extract(sample)), path), rows)
            features[source.name] = torch.from_numpy(np.ascontiguousarray(array))
            timings[source.name] = round(clock.lap(source.name), 4)
            cpu[source.name] = clock.cpu[source.name]
        return frames, features, rows

    def score(self, batch: Sequence[Decoded]) -> list[Prediction]:
        """The model stage of several videos: the sources per video, then one ensemble forward over every
        video with the same row count (official mode: always 8). Same results as one video at a time."""
        self.setup()
        clock = _Clock(self.device)
        timings = [{"decode+sampling": round(d.seconds, 4)} for d in batch]
        cpu = [{"decode+sampling": round(d.cpu_seconds, 4)} for d in batch]
        inputs = [self._inputs(d["sample"], clock, t, c) for d, t, c in zip(batch, timings, cpu, strict=True)]
        out: list[Prediction | None] = [None] * len(batch)
        for rows in dict.fromkeys(r for _, _, r in inputs):
            group = [i for i, (_, _, r) in enumerate(inputs) if r == rows]
            frames = None
            if self.config.needs_frames:
                frames = torch.stack([inputs[i][0] for i in group]).to(self.device)
            features = {
                name: torch.stack([inputs[i][1][name] for i in group]).to(self.device)
                for name in inputs[group[0]][1]
            }
            with torch.no_grad():
                frame_scores, scores = self.ensemble(frames, features)
            head = clock.lap("base+head") / len(group)  # the batch's forward, shared evenly
            head_cpu = clock.cpu["base+head"] / len(group)
            for k, i in enumerate(group):
                second_frames = list(dict.fromkeys(batch[i]["sample"].keyframe_indices))
                seconds = len(second_frames)
                out[i] = Prediction(
                    score=float(scores[k]),
                    per_second=[float(x) for x in frame_scores[k, :seconds]],
                    extra={
                        "members": len(self.ensemble.members),
                        "second_frames": second_frames,
                        "rows": rows,
                        "batch": len(group),
                        "timings": {**timings[i], "base+head": round(head, 4)},
                        "cpu_seconds": {**cpu[i], "base+head": round(head_cpu, 4)},
                    },
                )
        return out  # type: ignore[return-value]


def _trained_description(card: dict[str, Any]) -> str:
    metrics = ", ".join(f"{k} {v}" for k, v in (card.get("metrics") or {}).items())
    validation = f"; validation {metrics}" if metrics else ""
    return f"trained with rqvqa train: {card['training']}; {card['splits']}{validation}"


class _Clock:
    """Wall-clock laps (synchronising CUDA so a lap holds the work queued in it) and the process CPU time of
    each lap (all threads: on a loaded machine it says more about the cost than the wall clock)."""

    def __init__(self, device: str):
        self.cuda = torch.device(device).type == "cuda"
        self.last, self.last_cpu = time.perf_counter(), time.process_time()
        self.cpu: dict[str, float] = {}

    def lap(self, stage: str) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        now, cpu = time.perf_counter(), time.process_time()
        self.cpu[stage] = round(cpu - self.last_cpu, 4)
        elapsed, self.last, self.last_cpu = now - self.last, now, cpu
        return elapsed


def source_precision(
    device: str, dtype: str | None, qalign_8bit: bool | None
) -> tuple[str | dict[str, str] | None, bool]:
    """(dtype for `build_sources`, Q-Align 8-bit) for `rqvqa-kvq`.

    Given values win. Otherwise on CUDA: what the released KVQ heads saw (rqvqa.md: LIQE features in fp16,
    Q-Align in LLM.int8 through bitsandbytes, fp16 when bitsandbytes is not installed); on the CPU every
    source runs in float32 (bitsandbytes' int8 path and fp16 matmuls are GPU features)."""
    on_cuda = torch.device(device).type == "cuda"
    if qalign_8bit is None:
        qalign_8bit = on_cuda and importlib.util.find_spec("bitsandbytes") is not None
    if dtype is None and on_cuda:
        return {"liqe": "float16", "qalign": "float16"}, qalign_8bit
    return dtype, qalign_8bit
