"""SlowFast R50 (pytorchvideo, Kinetics-400): its fast pathway gives RQ-VQA's 256-d motion feature per 1-s
chunk.

- `network`: the fast pathway, loaded from the official checkpoint (the slow pathway's keys are reported);
- `source`: the `slowfast` feature source;
- `preprocess`: the chunk normalisation.
"""

from rqvqa.registry import SourceCard, WeightsEntry

SOURCES = (
    SourceCard(
        name="slowfast",
        family="slowfast",
        source="rqvqa.families.slowfast.source:SlowFastSource",
        dim=256,
        weights=("slowfast-r50",),
    ),
)

WEIGHTS = (
    WeightsEntry(
        name="slowfast-r50",
        filename="SLOWFAST_8x8_R50.pyth",
        description="pytorchvideo SlowFast R50 8x8, Kinetics-400 ({'model_state': 662 keys})",
        urls=("https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/SLOWFAST_8x8_R50.pyth",),
        size_hint="~138 MB (estimated)",
        licence="Apache-2.0 (pytorchvideo model zoo)",
        used_by=("slowfast source",),
        subdir="slowfast",
    ),
)
