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

import os
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
        source_weights: str | os.PathLike[str] | None = None,
    ):
        super().__init__(weights, device)
        from rqvqa.train import Ensemble, load_ensemble

        wanted = config or preset("rqvqa")
        absent = missing_sources(wanted)
        if absent:
            raise ConfigError(
                f"model {self.name} needs feature sources that are not available yet: {', '.join(absent)}"
            )
        if weights is None:
            raise WeightsError(f"model {self.name} needs --weights DIR (the 10 official KVQ checkpoints)")
        folder = Path(weights)
        if not folder.is_dir():
            raise WeightsError("not a folder of checkpoints", folder)
        self.spec: dict[str, Any] = {}
        if (folder / "ensemble.json").is_file():
            self.ensemble, self.spec = load_ensemble(folder, device)
            self.config = self.ensemble.members[0].config
        else:
            members, self.config, self.spec = _members(folder, config)
            self.ensemble = Ensemble(members).to(device)
        absent = missing_sources(self.config)
        if absent:
            raise ConfigError(
                f"model {self.name} needs feature sources that are not available yet: {', '.join(absent)}"
            )
        self.sources = build_sources(self.config.source_names, device, source_weights)
        # a `rqvqa train` folder records the key-frame sampling its models were trained on
        self.mode, self.seed = mode or self.spec.get("mode", "official"), seed
        base = self.config.base
        self.crop = base.img_size if base is not None else None
        self.resize = int(self.spec.get("resize", 384))

    def cpu_stage(self) -> Sampler:
        """Decode + sampling for every source and the base network, runnable in a CPU worker."""
        needs = set().union(*(s.needs for s in self.sources)) if self.sources else set()
        if self.config.needs_frames:
            needs.add("keyframes_384")
        return Sampler(frozenset(needs), self.mode, self.seed)

    def predict(self, path: str | os.PathLike[str]) -> Prediction:
        return self.finish(self.cpu_stage()(path))

    def finish(self, sample: VideoSample) -> Prediction:
        return self.finish_many([sample])[0]

    def _inputs(self, sample: VideoSample) -> tuple[torch.Tensor | None, dict[str, torch.Tensor], int]:
        """One video's network inputs (frames (rows, 3, H, W), features per source) and its row count."""
        from rqvqa.train import align_rows, prepare_frames

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
        return frames, features, rows

    def finish_many(self, samples: list[VideoSample]) -> list[Prediction]:
        """One ensemble forward over several videos with the same row count (official mode: always 8)."""
        device = torch.device(self.device)
        inputs = [self._inputs(s) for s in samples]
        out: list[Prediction | None] = [None] * len(samples)
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
            for k, i in enumerate(group):
                seconds = len(dict.fromkeys(samples[i].keyframe_indices))
                out[i] = Prediction(
                    score=float(scores[k]),
                    per_second=[float(x) for x in frame_scores[k, :seconds]],
                    extra={"members": len(self.ensemble.members), "mode": self.mode, "rows": rows},
                )
        return out  # type: ignore[return-value]
