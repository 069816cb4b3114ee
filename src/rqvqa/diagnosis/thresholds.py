"""The diagnosis' scales, detection thresholds and the models' known blind spots, as measured.

Every threshold comes from `scripts/calibrate_diagnosis.py` (graded degradations of the calibration scenes,
`rqvqa.diagnosis.scenes.CALIBRATION_SEEDS`, never the test clips): the point between the highest level of
a clean calibration clip and the lowest level of its strongest degradation, placed to leave a margin on both
sides (the figures are in `docs/diagnosis.md`, section "Calibration").
"""

from __future__ import annotations

#: the kinds of artifact diagnosed, in the order they are reported
KINDS = ("banding", "blocking", "blur", "noise", "exposure", "stutter")

#: what a level means (shown by `rqvqa diagnose` and in the docs)
SCALES: dict[str, str] = {
    "banding": "CAMBI-style banding index, 0 = none (7-15 for luma quantised to 8 levels)",
    "blocking": "8-px block-grid strength of the gradient energy, % (a few % without a grid)",
    "blur": "Crete blur effect of the most detailed tenth of the picture, 0 sharp .. 1 blurred",
    "noise": "Gaussian noise standard deviation, grey levels (0-255)",
    "exposure": "0 fine .. 1 all black / all white (crushed or clipped share + key distance)",
    "stutter": "% of the time the picture does not advance (repeated frames, timestamp gaps)",
}

#: `detected` is `level >= THRESHOLDS[kind]`: the suggestions of `scripts/calibrate_diagnosis.py` (6 scenes,
#: seeds 1-6, 960x540, 2 s; its rule per kind in brackets) to two significant digits. Highest clean level /
#: the anchor's lowest level over the six scenes:
THRESHOLDS: dict[str, float] = {
    # [half of the lowest level at luma steps of 32] clean <= 0.002, steps of 32 >= 6.95
    "banding": 3.5,
    # [the lowest at CRF 40 without deblocking] clean <= 2.1, CRF 40 >= 30, CRF 48 >= 70
    "blocking": 30.0,
    # [geometric mean of the clean and sigma-4 levels] clean <= 0.28, sigma 4 >= 0.81
    "blur": 0.48,
    # [geometric mean of the clean and sigma-40 levels] clean <= 0.74, sigma 40 >= 37.5 (sigma 10: 9.9-10.5)
    "noise": 5.3,
    # [geometric mean of clean and the strongest of -3 EV, +3 EV, gamma 3, gamma 1/3] clean <= 0.21, >= 0.49
    "exposure": 0.32,
    # [half of the lowest at 10 % frozen] clean 0, 10 % frozen = 6.7
    "stutter": 3.3,
}

#: per model, the artifacts whose graded degradations the model fails to penalise: on the shipped KoNViD clip
#: (first 4 s) or the first calibration scene, its score for the strongest degradation is not at least 0.05
#: (MOS, 1-5) below the clean re-encode's, or rises. Measured by `scripts/calibrate_diagnosis.py --models`
#: (table in `docs/diagnosis.md`, "What the models under-rate"); only measured models appear. Both models
#: raise the score of luma quantised to 8 levels (+0.39 and +0.14), of 50 % frozen frames, of +3 EV or
#: gamma 1/3 brightening, and leave CRF 48 without deblocking at the clean score on the real clip; both
#: penalise blur and noise on every clip.
UNDERRATED: dict[str, frozenset[str]] = {
    "lite": frozenset({"banding", "blocking", "exposure", "stutter"}),
    "videval-light": frozenset({"banding", "blocking", "exposure", "stutter"}),
}


def underrated_by(model: str, diagnosis: dict[str, dict]) -> list[str]:
    """The detected artifacts of `diagnosis` that `model` is known to under-rate (empty when none, or when
    the model was not measured)."""
    blind = UNDERRATED.get(model, frozenset())
    return [kind for kind in KINDS if kind in blind and diagnosis.get(kind, {}).get("detected")]


#: a detected artifact is called "strong" from this multiple of its threshold on: in the test-set tables of
#: docs/diagnosis.md every strongest graded version reaches it (blur sigma 4: 1.6-1.8x, -3 EV: 1.5-1.9x)
#: except gamma 1/3 on one test scene (1.47x)
STRONG = 1.5


def detected_labels(diagnosis: dict[str, dict] | None, strong: bool = True) -> list[str]:
    """The detected artifacts as a reader is told them, in `KINDS` order: ``banding (strong)``, ``blur``,
    ``exposure (under)`` (empty for no diagnosis or nothing detected); `strong=False` leaves out the
    strength (the short `issues` column of tables and CSV)."""
    labels = []
    for kind in KINDS:
        entry = (diagnosis or {}).get(kind) or {}
        if not entry.get("detected"):
            continue
        level = entry.get("level")
        is_strong = strong and isinstance(level, int | float) and level >= STRONG * THRESHOLDS[kind]
        words = ["strong"] if is_strong else []
        if entry.get("direction") in ("under", "over"):
            words.append(entry["direction"])
        labels.append(f"{kind} ({', '.join(words)})" if words else kind)
    return labels
