"""Adapters that turn each dataset's published label files into manifest rows.

Supported inputs (details and sources in docs/evaluation.md):

- ``kvq``: ``train_data.csv`` / ``truth.csv`` (``filename,score``), one or more files; every 7 consecutive
  rows are one source and its six processed versions, so they form one group (named after the first file of
  the group); the official split is the name's folder (``train/``, ``val/``, ``test/``).
- ``konvid1k``: BVQA_Benchmark/VIDEVAL ``KONVID_1K_metadata.csv`` (``flickr_id,mos,...``; videos
  ``<flickr_id>.mp4``) or the FAST-VQA/DOVER ``labels.txt`` (``name, duration, fps, mos``, no header).
- ``live-vqc``: VIDEVAL ``LIVE_VQC_metadata.csv`` (``File,MOS,...``) or ``labels.txt``.
- ``youtube-ugc``: VIDEVAL ``YOUTUBE_UGC_metadata.csv`` (``vid,...,MOSFull,...``; videos ``<vid>.mkv``) or
  ``labels.txt``.
- ``lsvq``: the official lists as FAST-VQA ``labels.txt`` files or SimpleVQA's CSVs (``name,...,mos,...``;
  names without extension get ``.mp4``). Several files may be given; each row's split comes from SimpleVQA's
  ``is_test`` column when present, otherwise from the file name (``*1080p*`` -> ``test_1080p``, ``*test*`` ->
  ``test``, ``*train*`` -> ``train``).
- ``taolive``, ``live-wc``: no public label format exists; we read a CSV with header ``filename,score,scene``
  and use the scene id as the group (the paper's scene-based splits).

Datasets without shared sources (KoNViD-1k, LIVE-VQC, YouTube-UGC, LSVQ) use the video itself as its group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rqvqa.data._csv import header_index, parse_float, read_rows
from rqvqa.data.manifest import Manifest, ManifestRow
from rqvqa.errors import ConfigError, InputError

KVQ_GROUP_SIZE = 7
KVQ_SPLITS = ("train", "val", "test")

Rows = list[tuple[int, list[str]]]


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_labels_txt(rows: Rows) -> bool:
    """FAST-VQA/DOVER label files: no header, 4 fields ``name, duration, fps, mos``."""
    first = rows[0][1]
    return len(first) == 4 and all(_is_float(v) for v in first[1:])


def _labels_txt(path: Path, rows: Rows) -> list[tuple[str, float]]:
    out = []
    for line, fields in rows:
        if len(fields) != 4:
            raise InputError(f"line {line}: {len(fields)} fields, expected 'name, duration, fps, mos'", path)
        if not fields[0]:
            raise InputError(f"line {line}: empty video name", path)
        out.append((fields[0], parse_float(fields[3], path, line, "mos")))
    return out


def _columns(
    path: Path, rows: Rows, name_col: str, mos_col: str, suffix: str = ""
) -> list[tuple[str, float]]:
    """(video name, MOS) from a CSV with a header; ``suffix`` is appended to names without an extension."""
    header = rows[0][1]
    columns = header_index(header)
    for col in (name_col, mos_col):
        if col not in columns:
            raise InputError(f"line {rows[0][0]}: no {col!r} column in the header", path)
    name_k, mos_k = columns[name_col], columns[mos_col]
    out = []
    for line, fields in rows[1:]:
        if len(fields) <= max(name_k, mos_k):
            raise InputError(f"line {line}: {len(fields)} fields, expected {len(header)}", path)
        name = fields[name_k]
        if not name:
            raise InputError(f"line {line}: empty video name", path)
        if suffix and not Path(name).suffix:
            name += suffix
        out.append((name, parse_float(fields[mos_k], path, line, header[mos_k])))
    if not out:
        raise InputError("no rows after the header", path)
    return out


def _singletons(items: list[tuple[str, float]], split: str | None = None) -> list[ManifestRow]:
    return [ManifestRow(name, mos, name, split) for name, mos in items]


def _one_file(dataset: str, paths: Sequence[Path]) -> Path:
    if len(paths) != 1:
        raise ConfigError(f"{dataset} takes exactly one label file, got {len(paths)}")
    return paths[0]


def kvq(paths: Sequence[Path], ext: str | None = None) -> list[ManifestRow]:
    if not paths:
        raise ConfigError("kvq needs at least one label file")
    out = []
    for path in paths:
        items = _columns(path, read_rows(path), "filename", "score")
        if len(items) % KVQ_GROUP_SIZE:
            raise InputError(
                f"{len(items)} videos is not a multiple of {KVQ_GROUP_SIZE} (KVQ lists each source with "
                "its 6 processed versions on consecutive rows)",
                path,
            )
        for k, (name, mos) in enumerate(items):
            source = items[k - k % KVQ_GROUP_SIZE][0]
            # The official split is the folder the challenge release puts the file in (train/, val/, test/).
            folder = Path(name).parts[0] if len(Path(name).parts) > 1 else None
            split = folder if folder in KVQ_SPLITS else None
            out.append(ManifestRow(name, mos, Path(source).with_suffix("").as_posix(), split))
    return out


def konvid1k(paths: Sequence[Path], ext: str | None = None) -> list[ManifestRow]:
    path = _one_file("konvid1k", paths)
    rows = read_rows(path)
    if _is_labels_txt(rows):
        return _singletons(_labels_txt(path, rows))
    return _singletons(_columns(path, rows, "flickr_id", "mos", ext or ".mp4"))


def live_vqc(paths: Sequence[Path], ext: str | None = None) -> list[ManifestRow]:
    path = _one_file("live-vqc", paths)
    rows = read_rows(path)
    if _is_labels_txt(rows):
        return _singletons(_labels_txt(path, rows))
    return _singletons(_columns(path, rows, "file", "mos", ext or ".mp4"))


def youtube_ugc(paths: Sequence[Path], ext: str | None = None) -> list[ManifestRow]:
    path = _one_file("youtube-ugc", paths)
    rows = read_rows(path)
    if _is_labels_txt(rows):
        return _singletons(_labels_txt(path, rows))
    # The original YouTube-UGC files are Matroska; VIDEVAL lists bare ids.
    return _singletons(_columns(path, rows, "vid", "mosfull", ext or ".mkv"))


def _lsvq_split_from_name(path: Path) -> str:
    name = path.name.lower()
    if "1080p" in name:
        return "test_1080p"
    if "test" in name:
        return "test"
    if "train" in name:
        return "train"
    raise InputError(
        "cannot tell the LSVQ split from the file name (expected *train*, *test* or *1080p*)", path
    )


def lsvq(paths: Sequence[Path], ext: str | None = None) -> list[ManifestRow]:
    if not paths:
        raise ConfigError("lsvq needs at least one label file")
    out: list[ManifestRow] = []
    for path in paths:
        rows = read_rows(path)
        if _is_labels_txt(rows):
            out += _singletons(_labels_txt(path, rows), _lsvq_split_from_name(path))
            continue
        items = _columns(path, rows, "name", "mos", ext or ".mp4")
        columns = header_index(rows[0][1])
        if "is_test" in columns and "1080p" not in path.name.lower():
            flags = [fields[columns["is_test"]].lower() for _, fields in rows[1:]]
            for (name, mos), flag in zip(items, flags, strict=True):
                split = "test" if flag in ("1", "true", "yes") else "train"
                out.append(ManifestRow(name, mos, name, split))
        else:
            out += _singletons(items, _lsvq_split_from_name(path))
    return out


def _scene_csv(dataset: str, paths: Sequence[Path]) -> list[ManifestRow]:
    path = _one_file(dataset, paths)
    rows = read_rows(path)
    columns = header_index(rows[0][1])
    if "scene" not in columns:
        raise InputError(f"line {rows[0][0]}: {dataset} labels need the header filename,score,scene", path)
    items = _columns(path, rows, "filename", "score")
    scenes = [fields[columns["scene"]] if len(fields) > columns["scene"] else "" for _, fields in rows[1:]]
    for (line, _), scene in zip(rows[1:], scenes, strict=True):
        if not scene:
            raise InputError(f"line {line}: empty scene id", path)
    return [ManifestRow(name, mos, scene) for (name, mos), scene in zip(items, scenes, strict=True)]


def taolive(paths: Sequence[Path], ext: str | None = None) -> list[ManifestRow]:
    return _scene_csv("taolive", paths)


def live_wc(paths: Sequence[Path], ext: str | None = None) -> list[ManifestRow]:
    return _scene_csv("live-wc", paths)


ADAPTERS: dict[str, Callable[..., list[ManifestRow]]] = {
    "kvq": kvq,
    "konvid1k": konvid1k,
    "live-vqc": live_vqc,
    "youtube-ugc": youtube_ugc,
    "lsvq": lsvq,
    "taolive": taolive,
    "live-wc": live_wc,
}


def _canonical(dataset: str) -> str:
    key = dataset.lower().replace("_", "-")
    aliases = {
        "konvid-1k": "konvid1k",
        "livevqc": "live-vqc",
        "youtubeugc": "youtube-ugc",
        "livewc": "live-wc",
    }
    key = aliases.get(key, key)
    if key not in ADAPTERS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(ADAPTERS)}")
    return key


def build_manifest(
    dataset: str, labels: str | Path | Sequence[str | Path], root: str | Path, ext: str | None = None
) -> Manifest:
    """Build a manifest for ``dataset`` from its label file(s); video names are relative to ``root``.

    ``ext`` overrides the extension added to bare video ids (KoNViD ``.mp4``, YouTube-UGC ``.mkv``, LSVQ
    ``.mp4``).
    """
    paths = [Path(labels)] if isinstance(labels, str | Path) else [Path(p) for p in labels]
    rows = ADAPTERS[_canonical(dataset)](paths, ext)
    return Manifest(tuple(rows), Path(root), source=paths[0] if len(paths) == 1 else None)
