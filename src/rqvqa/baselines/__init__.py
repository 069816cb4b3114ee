"""Classical no-reference quality models, MATLAB-faithful: BRISQUE and NIQE (numpy/scipy only).

- `rqvqa.baselines.matlab`: the MATLAB primitives they rely on (bicubic `imresize` with antialiasing,
  `fspecial('gaussian')`, `filter2`/`imfilter` borders).
- `rqvqa.baselines.nss`: MSCN coefficients and the GGD / AGGD moment-matching fits shared by both.
- `rqvqa.baselines.brisque`, `rqvqa.baselines.niqe`: image features and scores.
- `rqvqa.baselines.video`: video-level features as the UGC-VQA benchmark computed them.
"""
