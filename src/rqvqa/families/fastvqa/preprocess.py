"""FAST-VQA's fragment normalisation: ImageNet mean/std on the 0-255 scale (no /255, as its data loader)."""

from rqvqa.preprocess import Normalization

FRAGMENTS = Normalization((123.675, 116.28, 103.53), (58.395, 57.12, 57.375), scale=1.0)
