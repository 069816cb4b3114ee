"""`rqvqa-kvq`: the whole RQ-VQA pipeline for one video (rqvqa.md §7).

One decode (`sample_video`) feeds the base network's key frames and every frozen source; each ensemble
member regresses per-frame scores and the video score is the mean over members of their raw outputs (no
rescaling). `weights` is a folder holding either

- the official KVQ checkpoints (`*.pth`, 10 in the release; official layout, loaded through
  `rqvqa.nets.remap`), or our safetensors exports (model configuration in their metadata), or
- a `rqvqa train` output folder (`ensemble.json`, with its feature standardisation when used).

Scores: official mode reads 8 key-frame rows (the last second repeated for shorter videos), exactly as the
released models were trained; the per-second list holds the scores of the video's distinct seconds.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from rqvqa.errors import ConfigError, WeightsError
from rqvqa.model import RQVQA, ModelConfig, preset
from rqvqa.pipeline.stages import Sampler, build_sources, check_shape
from rqvqa.video.sampling import VideoSample
from rqvqa.zoo import Prediction, Predictor, register_predictor

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors")


def missing_sources(config: ModelConfig) -> list[str]:
    """The model's feature sources that no registered extractor provides."""
    from rqvqa.sources.base import available_sources

    known = available_sources()
    return [name for name in config.source_names if name not in known]


def _members(folder: Path, config: ModelConfig | None) -> tuple[list[RQVQA], ModelConfig, dict[str, Any]]:
    """Load every checkpoint of `folder` (sorted by name) into one model each."""
    from rqvqa.nets.remap import load_weights, read_model_config

    files = sorted(p for p in folder.iterdir() if p.suffix in CHECKPOINT_SUFFIXES and p.is_file())
    if not files:
        raise WeightsError(f"no checkpoints ({', '.join(CHECKPOINT_SUFFIXES)}) in the folder", folder)
    if config is None:
        stored = read_model_config(files[0]) if files[0].suffix == ".safetensors" else None
        config = ModelConfig.from_dict(stored) if stored else preset("rqvqa")
    models = []
    for path in files:
        model = RQVQA(config)
        load_weights(model, path)
        models.append(model.eval())
    return models, config, {"members": [p.name for p in files]}


@register_predictor
class RQVQAKVQ(Predictor):
    name: ClassVar[str] = "rqvqa-kvq"

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
        """`weights_dir`: where the sources' checkpoints are (else `$RQVQA_WEIGHTS_DIR` and the download
        cache); `dtype`: the sources' compute precision (float32, float16, bfloat16; default: see
        `source_precision`); `qalign_8bit`: Q-Align in LLM.int8 (default: on CUDA when bitsandbytes is
        installed, as the released heads were trained)."""
        super().__init__(weights, device)
        from rqvqa.ensemble import Ensemble, load_ensemble

        if weights is None:
            from rqvqa.weights import group_folder

            weights = group_folder("rqvqa-kvq", weights_dir)  # the released models, downloaded or at hand
        if weights is None:
            raise WeightsError(
                f"model {self.name} needs the 10 official KVQ checkpoints: run `rqvqa weights download "
                "rqvqa-kvq` (then they are found by themselves), or give --weights DIR (a folder with them, "
                "or a `rqvqa train` output folder)"
            )
        folder = Path(weights)
        if not folder.is_dir():
            raise WeightsError("not a folder of checkpoints", folder)
        # checked after the weights (a missing folder is reported at once, before the sources are imported)
        wanted = config or preset("rqvqa")
        absent = missing_sources(wanted)
        if absent:
            raise ConfigError(
                f"model {self.name} needs feature sources that are not available yet: {', '.join(absent)}"
            )
        self.spec: dict[str, Any] = {}
        if (folder / "ensemble.json").is_file():
            self.ensemble, self.spec = load_ensemble(folder, device)
            self.config = self.ensemble.members[0].config
            # a model trained with `rqvqa train` is not the released one: it shows its own card
            card = self.spec.get("card")
            if card:
                self.name, self.scale = card["name"], card["scale"]
                self.score_range = tuple(card["score_range"])
                self.description = f"trained with rqvqa train: {card['training']}; {card['splits']}"
        else:
            members, self.config, self.spec = _members(folder, config)
            self.ensemble = Ensemble(members).to(device)
        absent = missing_sources(self.config)
        if absent:
            raise ConfigError(
                f"model {self.name} needs feature sources that are not available yet: {', '.join(absent)}"
            )
        dtypes, self.qalign_8bit = source_precision(device, dtype, qalign_8bit)
        self.sources = build_sources(
            self.config.source_names,
            device,
            Path(weights_dir) if weights_dir else None,
            dtypes,
            self.qalign_8bit,
        )
        # a `rqvqa train` folder records the key-frame sampling its models were trained on
        self.mode, self.seed = mode or self.spec.get("mode", "official"), seed
        base = self.config.base
        self.crop = base.img_size if base is not None else None
        self.resize = int(self.spec.get("resize", 384))

    def cpu_stage(self) -> _Decode:
        """Decode + sampling for every source and the base network, runnable in a CPU worker."""
        needs = set().union(*(s.needs for s in self.sources)) if self.sources else set()
        if self.config.needs_frames:
            needs.add("keyframes_384")
        return _Decode(Sampler(frozenset(needs), self.mode, self.seed))

    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        return self.finish(self.cpu_stage()(path))

    def finish(self, decoded: _Decoded) -> Prediction:
        return self.finish_many([decoded])[0]

    def _inputs(
        self, sample: VideoSample, clock: _Clock, timings: dict[str, float], cpu: dict[str, float]
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor], int]:
        """One video's network inputs (frames (rows, 3, H, W), features per source) and its row count."""
        from rqvqa.model_inputs import align_rows, prepare_frames

        path = str(sample.info.path)
        rows = len(sample.keyframe_indices)
        frames = None
        if self.config.needs_frames:
            frames = prepare_frames(sample.keyframes_384, self.crop, self.resize)
            rows = frames.shape[0]
        features = {}
        for source in self.sources:
            array = align_rows(check_shape(source, np.asarray(source.extract(sample)), path), rows)
            features[source.name] = torch.from_numpy(np.ascontiguousarray(array))
            timings[source.name] = round(clock.lap(source.name), 4)
            cpu[source.name] = clock.cpu[source.name]
        return frames, features, rows

    def finish_many(self, decoded: list[_Decoded]) -> list[Prediction]:
        """The model stage of several videos: the sources per video, then one ensemble forward over every
        video with the same row count (official mode: always 8). Same results as one video at a time."""
        device = torch.device(self.device)
        clock = _Clock(self.device)
        timings = [{"decode+sampling": round(d.seconds, 4)} for d in decoded]
        cpu = [{"decode+sampling": round(d.cpu_seconds, 4)} for d in decoded]
        inputs = [self._inputs(d.sample, clock, t, c) for d, t, c in zip(decoded, timings, cpu, strict=True)]
        out: list[Prediction | None] = [None] * len(decoded)
        for rows in dict.fromkeys(r for _, _, r in inputs):
            group = [i for i, (_, _, r) in enumerate(inputs) if r == rows]
            frames = None
            if self.config.needs_frames:
                frames = torch.stack([inputs[i][0] for i in group]).to(device)
            features = {
                name: torch.stack([inputs[i][1][name] for i in group]).to(device)
                for name in inputs[group[0]][1]
            }
            with torch.no_grad():
                frame_scores, scores = self.ensemble(frames, features)
            head = clock.lap("base+head") / len(group)  # the batch's forward, shared evenly
            head_cpu = clock.cpu["base+head"] / len(group)
            for k, i in enumerate(group):
                seconds = len(dict.fromkeys(decoded[i].sample.keyframe_indices))
                out[i] = Prediction(
                    score=float(scores[k]),
                    per_second=[float(x) for x in frame_scores[k, :seconds]],
                    extra={
                        "members": len(self.ensemble.members),
                        "mode": self.mode,
                        "rows": rows,
                        "batch": len(group),
                        "timings": {**timings[i], "base+head": round(head, 4)},
                        "cpu_seconds": {**cpu[i], "base+head": round(head_cpu, 4)},
                        **({"card": self.spec["card"]} if "card" in self.spec else {}),
                    },
                )
        return out  # type: ignore[return-value]


@dataclass(frozen=True)
class _Decoded:
    """A video's sample and what decoding it cost (wall and CPU seconds of the process that decoded it)."""

    sample: VideoSample
    seconds: float
    cpu_seconds: float


@dataclass(frozen=True)
class _Decode:
    """The CPU stage: the sampler, timed."""

    sampler: Sampler

    def __call__(self, path: str | os.PathLike[str]) -> _Decoded:
        wall, cpu = time.perf_counter(), time.process_time()
        sample = self.sampler(path)
        return _Decoded(sample, time.perf_counter() - wall, time.process_time() - cpu)


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
