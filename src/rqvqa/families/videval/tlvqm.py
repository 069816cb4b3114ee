"""TLVQM parts of VIDEVAL (Korhonen, TIP 2019, as trimmed by the VIDEVAL release): the 7 low-complexity
features of a frame and its neighbours (key-point block matching, flicker, spatial/temporal activity) and the
6 high-complexity features of one frame per second (CIELAB Sobel activity, chroma, sharpness).

The block matching follows the release step by step (column-major scans, stable sorts, first-match `find`),
since the chosen motion vectors decide several features.
"""

from __future__ import annotations

import cv2
import numpy as np

from rqvqa.families.classic.nss import shifted_product
from rqvqa.families.videval import ops
from rqvqa.families.videval.ops import imresize

_H = np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]) / 8
_CORNERS = [
    np.array(k, dtype=np.float64) / 32
    for k in (
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [-2, -2, 0, 1, 1], [-2, -2, -2, 1, 1], [-2, -2, -2, 1, 1]],
        [[-2, -2, -2, 1, 1], [-2, -2, -2, 1, 1], [-2, -2, 0, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
        [[1, 1, -2, -2, -2], [1, 1, -2, -2, -2], [1, 1, 0, -2, -2], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, -2, -2], [1, 1, -2, -2, -2], [1, 1, -2, -2, -2]],
    )
]
MOT_THRESHOLD = 0.01


def _std(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size > 1 else 0.0


def _key_pixels(corner: np.ndarray, bl: int) -> list[tuple[int, int]]:
    """Greedy maxima of the corner map (> threshold), each suppressing a (2 bl + 1)^2 box: the release's loop
    (first maximum in column-major order, remove its neighbourhood, repeat). 0-based (row, col)."""
    flat = corner.ravel(order="F")
    cand = np.flatnonzero(flat > MOT_THRESHOLD)
    order = cand[np.argsort(-flat[cand], kind="stable")]
    cols, rows = np.divmod(order, corner.shape[0])
    suppressed = np.zeros(corner.shape, dtype=bool)
    keys = []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):  # Python ints: the loop runs 2x faster
        if suppressed[r, c]:
            continue
        keys.append((r, c))
        suppressed[max(r - bl, 0) : r + bl + 1, max(c - bl, 0) : c + bl + 1] = True
    return keys


def _diff_windows(sv_this, sh_this, sv_o, sh_o, ty, tx, win) -> np.ndarray:
    """Sum over the 3x3 neighbourhood of squared Sobel differences for every candidate offset, for the key
    points (ty, tx) all at once: (K, 2w+1, 2w+1), each element summed in the release's order."""
    n = 2 * win + 1
    corner = (ty - win - 2, tx - win - 2)
    sv = np.lib.stride_tricks.sliding_window_view(sv_o, (n + 4, n + 4))[corner]
    sh = np.lib.stride_tricks.sliding_window_view(sh_o, (n + 4, n + 4))[corner]
    out = np.zeros((len(ty), n, n))
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            out += (sv_this[ty + i, tx + j][:, None, None] - sv[:, 2 + i : 2 + i + n, 2 + j : 2 + j + n]) ** 2
            out += (sh_this[ty + i, tx + j][:, None, None] - sh[:, 2 + i : 2 + i + n, 2 + j : 2 + j + n]) ** 2
    return out


def _match(diff: np.ndarray, other: np.ndarray, distances: np.ndarray, strict: bool, win: int):
    """The release's choice of the best offset in `diff` (column-major); returns (dy, dx, diff value) or None.
    `other` is the window the release consults in the ambiguous case (the forward one, in both directions)."""
    orig = diff[win, win]
    if orig <= 0.005:
        return None
    col = diff.ravel(order="F")
    # the first two entries of the stable sort: the first minimum, then the first minimum of the rest
    first = int(np.argmin(col))
    rest = col.copy()
    rest[first] = np.inf
    second = int(np.argmin(rest))
    s1, s2 = col[first], col[second]
    min_diff = orig
    clear = (s1 < 0.8 * s2) if strict else (s1 <= 0.8 * s2)
    if clear or distances[first] < distances[second]:
        min_diff = s1
    else:
        near = np.flatnonzero(0.8 * col <= s1)
        best = near[np.argmin(distances[near])]
        if other.ravel(order="F")[best] < 1.1 * s1:
            min_diff = col[best]
        elif s1 < orig * 0.9:
            min_diff = s1
    if min_diff * 1.01 < orig:
        k = int(np.flatnonzero(col == min_diff)[0])
        y, x = k % diff.shape[0], k // diff.shape[0]
        return y - win, x - win, col[k]
    return None


def lcf7(this_y: np.ndarray, prev_y: np.ndarray, next_y: np.ndarray) -> list[float]:
    """TLVQM low-complexity features (#1 5 12 16 18 19 22 of the release) of a frame (luma on 0-1)."""
    width_full = this_y.shape[1]
    bl = win = width_full // 40
    this_y, prev_y, next_y = (imresize(f, 0.5) for f in (this_y, prev_y, next_y))
    height, width = this_y.shape
    sh_this, sv_this = ops.imfilter(this_y, _H.T), ops.imfilter(this_y, _H)
    for s in (sh_this, sv_this):
        s[:4, :] = 0
        s[height - 4 :, :] = 0
        s[:, :4] = 0
        s[:, width - 4 :] = 0
    sob_tot = np.sqrt(sv_this**2 + sh_this**2)
    sh_prev, sv_prev = ops.imfilter(prev_y, _H.T), ops.imfilter(prev_y, _H)
    sh_next, sv_next = ops.imfilter(next_y, _H.T), ops.imfilter(next_y, _H)
    corner_avg = np.stack([np.abs(ops.imfilter(this_y, k)) for k in _CORNERS])
    corner = corner_avg.max(axis=0) - corner_avg.min(axis=0)
    corner[: win + 3, :] = 0
    corner[height - win - 3 :, :] = 0
    corner[:, : win + 3] = 0
    corner[:, width - win - 3 :] = 0

    keys = _key_pixels(corner, bl)
    n = 2 * win + 1
    g = np.arange(n, dtype=np.float64)
    distances = (np.sqrt((win - g[:, None]) ** 2 + (win - g[None, :]) ** 2) / np.sqrt(2 * win**2)).ravel(
        order="F"
    )
    non_mot = np.ones((height, width))
    vecs = []
    ky, kx = np.array([k[0] for k in keys], dtype=np.intp), np.array([k[1] for k in keys], dtype=np.intp)
    all_prev = _diff_windows(sv_this, sh_this, sv_prev, sh_prev, ky, kx, win)
    all_next = _diff_windows(sv_this, sh_this, sv_next, sh_next, ky, kx, win)
    for (ty, tx), d_prev, d_next in zip(keys, all_prev, all_next, strict=True):
        orig_bw, orig_fw = d_prev[win, win], d_next[win, win]
        bw = _match(d_prev, d_next, distances, strict=False, win=win)
        fw = _match(d_next, d_next, distances, strict=True, win=win)
        by, bx, diff_bw = (ty + bw[0], tx + bw[1], bw[2]) if bw else (ty, tx, orig_bw)
        fy, fx, diff_fw = (ty + fw[0], tx + fw[1], fw[2]) if fw else (ty, tx, orig_fw)
        if (orig_bw > diff_bw * 1.01 and (ty != by or tx != bx)) or (
            orig_fw > diff_fw * 1.01 and (ty != fy or tx != fx)
        ):
            for cy, cx in ((ty, tx), (by, bx), (fy, fx)):
                non_mot[
                    max(cy - bl, 0) : min(height, cy + bl + 1), max(cx - bl, 0) : min(width, cx + bl + 1)
                ] = 0
        vecs.append((ty - by, tx - bx, fy - ty, fx - tx))

    motion_intensity, mot_y, jerkiness, std_ego = 0.0, 0.5, 0.0, 0.0
    if vecs:
        mv = np.asarray(vecs, dtype=np.float64)
        intensity = np.sqrt(((mv / win) ** 2).sum(axis=1) / 4.0)
        max_points = (height / bl) * (width / bl)
        motion_intensity = float((intensity.sum() / max_points) ** 0.25)
        if intensity.sum() > 0:
            mot_y = float(np.mean(0.25 * (mv[:, 0] + mv[:, 2]) / win + 0.5))
            dy = 0.5 * (mv[:, 0] - mv[:, 2]) / win
            dx = 0.5 * (mv[:, 1] - mv[:, 3]) / win
            jerkiness = float(np.mean(np.sqrt(np.sqrt(dy**2 + dx**2))))
        mx = 0.5 * mv[:, 1] + 0.5 * mv[:, 3]
        my = 0.5 * mv[:, 0] + 0.5 * mv[:, 2]
        sx, sy = _std(mx), _std(my)
        bg = (mx > mx.mean() - sx) & (mx < mx.mean() + sx) & (my > my.mean() - sy) & (my < my.mean() + sy)
        if bg.any():
            std_ego = _std(intensity[bg])

    flicker_std = 0.0
    non_mot_size = non_mot.sum()
    d_bw, d_fw = np.abs(this_y - prev_y), np.abs(this_y - next_y)
    if non_mot_size > 0:
        flicker = 0.5 * ((non_mot * d_bw).sum() + (non_mot * d_fw).sum()) / non_mot_size
        flicker_std = float((non_mot * np.abs(np.maximum(d_bw, d_fw) - flicker)).sum() / non_mot_size)
    si = _std(sob_tot.ravel()) ** 0.25
    ti_mean = float(np.mean([d_bw.mean(), d_fw.mean()]) ** 0.25)
    return [motion_intensity, std_ego, si, jerkiness, ti_mean, mot_y, flicker_std]


def _block_sums(a: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """Sums of a over the size x size blocks with top-left corners (ys x xs) -> (len(ys), len(xs))."""
    c = cv2.integral(a, sdepth=cv2.CV_64F)
    y0, x0 = ys[:, None], xs[None, :]
    return c[y0 + size, x0 + size] - c[y0, x0 + size] - c[y0 + size, x0] + c[y0, x0]


def _sharpness(im: np.ndarray) -> list[float]:
    if im.shape[1] > 1280:
        im = imresize(im, 0.5)
    s_h, s_v = ops.imfilter(im, _H.T), ops.imfilter(im, _H)
    s = np.sqrt(s_h**2 + s_v**2)
    height, width = s_h.shape
    bl = 16
    ys = np.arange(bl // 2, height - 24 + 1, bl) - 1  # 1-based y = 8:16:height-24
    xs = np.arange(bl // 2, width - 24 + 1, bl) - 1
    if ys.size == 0 or xs.size == 0:
        return [0.0, 0.0, 0.0]
    m = bl + 1  # windows y:y+16 (17 samples)
    conv = {}
    for i in range(7):
        for j in range(7):
            if not (i == 0 or j == 0 or i == j):
                continue
            wh, wv = (1.0, 1.0) if i == 0 and j == 0 else (i / (i + j), j / (i + j))
            # the products where both factors exist; the release pads them with zeros to the full size, but
            # the blocks end 8 rows and columns before the border, so the same prefix sums are read
            # (`a[i:, j:] * a[:h - i, :w - j]`, read from the circular product: numpy's flat path)
            ph, pv = (shifted_product(a, (i, j), np.empty_like(a))[i:, j:] for a in (s_h, s_v))
            conv[(i, j)] = (wh * _block_sums(ph, ys, xs, m) + wv * _block_sums(pv, ys, xs, m)) / (m * m)
    centre = conv[(0, 0)].ravel()
    strong = centre > 0.0001
    if not strong.any():
        return [0.0, 0.0, 0.0]  # the release's values without any block above its edge threshold
    rings = np.stack(
        [
            (conv[(k, 0)].ravel() + conv[(0, k)].ravel() + conv[(k, k)].ravel())[strong] / centre[strong]
            for k in range(1, 7)
        ],
        axis=1,
    )
    first = rings[:, :1]
    rings = np.where(first > 0, rings / np.where(first > 0, first, 1.0), rings)
    new_conv = rings.mean(axis=0)
    s2 = s * s
    sums = _block_sums(s, ys, xs, m).ravel()[strong]
    sums2 = _block_sums(s2, ys, xs, m).ravel()[strong]
    k = m * m
    blurvals = np.sqrt(np.maximum(sums2 - sums * sums / k, 0.0) / (k - 1))
    blurs = blurvals[~(blurvals > blurvals.mean())]
    return [float(new_conv[1:6].mean()), float(new_conv[1]), float(blurs.mean()) if blurs.size else 0.0]


def hcf6(yuv01: np.ndarray) -> list[float]:
    """TLVQM high-complexity features (#1 2 17 22 24 30) of one frame (YUV on 0-1)."""
    lab = ops.rgb2lab(ops.ycbcr2rgb(yuv01, uint8=False))
    h, w = lab.shape[:2]
    mask = np.zeros((h, w))
    mask[1:-1, 1:-1] = 1
    hk = -_H  # [1 2 1; 0 0 0; -1 -2 -1] / 8
    chans = (lab[..., 0] / 100.0, lab[..., 1] / 50.0, lab[..., 2] / 50.0)
    sob_x = sum(ops.imfilter(c, hk) ** 2 for c in chans) * mask
    sob_y = sum(ops.imfilter(c, hk.T) ** 2 for c in chans) * mask
    sob = np.sqrt(sob_x + sob_y)
    spatial = [float(sob.mean()), _std(sob.ravel())]
    chroma = [float(np.sqrt(np.mean((lab[..., 1] / 50) ** 2 + (lab[..., 2] / 50) ** 2)))]
    return spatial + chroma + _sharpness(sob)
