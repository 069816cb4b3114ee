"""Cheap checks of a container's sample index, before FFmpeg opens the file.

FFmpeg's MP4/QuickTime demuxer builds one index entry per sample the file's tables claim while it opens the
file, before any of our checks on the opened stream can run: about 37 bytes a sample, so a 2 KB `.mov` whose
sample-size table (`stsz`, a constant size and a count: no table to read) claims 85 M samples took 3.1 GB and
21 s. A fragment's run of samples (`trun` in a `moof`) is the same kind of bomb (20 M claimed samples without
per-sample fields: 736 MB on opening a 1.8 KB file), and so is an edit list (`elst`) whose edits show the same
samples over and over (each edit is indexed anew: 30,000 samples and 2,800 edits, 2.2 GB and 3 minutes).

`check_index(path, max_frames)` walks the ISO-BMFF box headers itself (MP4, MOV, M4V, 3GP: `moov/trak/edts/
mdia/minf/stbl` and `moof/traf`), reading only headers, entry counts and, for a track with several edits, its
time-to-sample and sync-sample tables (bounded reads, no sample data), and refuses with a one-line
`VideoError`:

- a table (`stts ctts stsc stco co64 stss stps stsz stz2 trun elst`) whose entries cannot fit the file;
- a track whose sample count (`stsz`, plus its fragments' `trun` counts) exceeds the file's size in bytes
  (every sample takes at least a byte) or the frame limit (`Limits.max_frames`);
- a track whose edit list would index more entries than the frame limit (per edit: its duration at the
  shortest sample duration, plus the frames back to the previous key frame, at most the track's samples).

Uncompressed audio whose one time-to-sample entry lasts one tick (the old QuickTime PCM layout, which FFmpeg
indexes per chunk, not per sample) is held to the file size only. Time-to-sample counts alone (`stts`) build
no per-sample index (a 20 M claim: 34 MB); the frame count they give is checked after opening
(`rqvqa.video.reader`).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from rqvqa.errors import VideoError

#: box types an ISO-BMFF file may start with
_FIRST = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp", b"sidx", b"moof", b"uuid"}
#: boxes whose children are walked (the path to the sample tables and the fragments' runs)
_CONTAINERS = {b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl", b"moof", b"traf"}
#: full boxes of fixed-size entries: type -> bytes per entry (the count follows the version and flags)
_TABLES = {b"stts": 8, b"ctts": 8, b"stsc": 12, b"stco": 4, b"co64": 8, b"stss": 4, b"stps": 4}
FORGED = "a forged index, refused before decoding"
#: boxes walked before the check stops (a valid file has a few dozen; fragmented ones two per fragment)
MAX_BOXES = 1_000_000


@dataclass
class _Track:
    id: int = 0
    handler: bytes = b""
    samples: int = 0
    #: one time-to-sample entry of one tick: FFmpeg indexes uncompressed audio per chunk
    one_tick: bool = False
    #: media time scale (`mdhd`), and (offset, entries) of the time-to-sample and sync-sample tables
    scale: int = 0
    stts: tuple[int, int] | None = None
    stss: tuple[int, int] | None = None
    #: durations (movie time scale) of the edits that show media (`elst`; empty edits left out)
    edits: np.ndarray = field(default_factory=lambda: np.empty(0))


class _Walk:
    def __init__(self, handle: BinaryIO, size: int, path: str):
        self.f, self.size, self.path = handle, size, path
        self.boxes = 0
        self.tracks: dict[int, _Track] = {}
        self.track: _Track | None = None
        self.fragment_track = 0
        #: movie time scale (`mvhd`): the unit of edit durations
        self.scale = 0

    def read(self, offset: int, n: int) -> bytes:
        self.f.seek(offset)
        return self.f.read(n)

    def children(self, start: int, end: int):
        """(type, payload start, box end) of the boxes between `start` and `end` (clamped to the file)."""
        pos = start
        while pos + 8 <= end and self.boxes < MAX_BOXES:
            header = self.read(pos, 16)
            if len(header) < 8:
                return
            size, kind = struct.unpack(">I4s", header[:8])
            payload = pos + 8
            if size == 1 and len(header) == 16:
                size, payload = struct.unpack(">Q", header[8:])[0], pos + 16
            elif size == 0:
                size = end - pos
            if size < payload - pos:
                return  # a damaged header: FFmpeg reports it
            self.boxes += 1
            yield kind, payload, min(pos + size, end)
            pos += size

    def walk(self, start: int, end: int) -> None:
        for kind, payload, box_end in self.children(start, end):
            if kind == b"trak":
                track = self.track = _Track()
                self.walk(payload, box_end)
                if track.id in self.tracks:  # fragments read before their track
                    track.samples += self.tracks[track.id].samples
                self.tracks[track.id] = track
                self.track = None
            elif kind in _CONTAINERS:
                self.walk(payload, box_end)
            else:
                self.leaf(kind, payload, box_end)

    def leaf(self, kind: bytes, payload: int, end: int) -> None:
        head = self.read(payload, min(max(end - payload, 0), 24))
        if len(head) < 8:
            return
        # tkhd: track id, mvhd / mdhd: time scale, after the version's creation and modification times
        at = 20 if head[0] == 1 else 12
        value = struct.unpack_from(">I", head, at)[0] if len(head) >= at + 4 else 0
        if kind == b"tkhd" and self.track is not None:
            self.track.id = value
        elif kind == b"mvhd":
            self.scale = value
        elif kind == b"mdhd" and self.track is not None:
            self.track.scale = value
        elif kind == b"elst" and self.track is not None:
            entries = struct.unpack_from(">I", head, 4)[0]
            wide = head[0] == 1
            self._fits(kind, entries, 20 if wide else 12)
            dtype = np.dtype(
                [("d", ">u8"), ("t", ">i8"), ("r", ">i4")]
                if wide
                else [("d", ">u4"), ("t", ">i4"), ("r", ">i4")]
            )
            table = np.frombuffer(self._table(payload + 8, entries, dtype.itemsize), dtype)
            self.track.edits = table["d"][table["t"] != -1].astype(np.float64)
        elif kind == b"hdlr" and self.track is not None and len(head) >= 12 and head[4:8] != b"dhlr":
            self.track.handler = head[8:12]
        elif kind in _TABLES:
            entries = struct.unpack_from(">I", head, 4)[0]
            self._fits(kind, entries, _TABLES[kind])
            if kind == b"stts" and self.track is not None and len(head) >= 16:
                self.track.one_tick = entries == 1 and struct.unpack_from(">I", head, 12)[0] == 1
            if kind in (b"stts", b"stss") and self.track is not None:
                setattr(self.track, kind.decode(), (payload + 8, entries))
        elif kind in (b"stsz", b"stz2") and self.track is not None and len(head) >= 12:
            sample_size, count = struct.unpack_from(">II", head, 4)
            bits = 32 if kind == b"stsz" else sample_size & 0xFF
            if kind == b"stz2" or sample_size == 0:
                self._fits(kind, count, bits / 8)
            self.track.samples += count
        elif kind == b"tfhd" and len(head) >= 8:
            self.fragment_track = struct.unpack_from(">I", head, 4)[0]
        elif kind == b"trun":
            flags, count = struct.unpack_from(">II", head)
            per_sample = 4 * sum(bool(flags & bit) for bit in (0x100, 0x200, 0x400, 0x800))
            self._fits(kind, count, per_sample)
            self.tracks.setdefault(self.fragment_track, _Track()).samples += count

    def _table(self, offset: int, entries: int, entry_bytes: int) -> bytes:
        """The bytes of a table's whole entries (as many as the file holds)."""
        data = self.read(offset, entries * entry_bytes)
        return data[: len(data) - len(data) % entry_bytes]

    def edited_samples(self, track: _Track) -> int:
        """About how many index entries FFmpeg builds for `track` once its edit list is applied: each edit
        that shows media takes the samples of its duration (at the shortest sample duration) plus the frames
        back to the previous key frame; an edit list can repeat the media many times over."""
        if len(track.edits) < 2 or not track.samples:
            return track.samples
        stts = np.frombuffer(self._table(*track.stts, 8), ">u4").reshape(-1, 2) if track.stts else None
        used = stts[stts[:, 0] > 0, 1] if stts is not None else np.empty(0, np.uint32)
        shortest = int(used.min()) if used.size else 0
        keys = np.frombuffer(self._table(*track.stss, 4), ">u4").astype(np.int64) if track.stss else None
        preroll = 0  # no sync-sample table: every sample is a key frame
        if keys is not None and keys.size:
            preroll = int(np.diff(np.concatenate([[1], np.sort(keys), [track.samples + 1]])).max())
        if shortest and self.scale and track.scale:
            shown = np.floor(track.edits * track.scale / (self.scale * shortest)) + 1 + preroll
        else:
            shown = np.full(track.edits.size, float(track.samples))
        return int(np.minimum(shown, track.samples).sum())

    def _fits(self, kind: bytes, entries: int, entry_bytes: float) -> None:
        if entries * entry_bytes > self.size:
            raise VideoError(
                f"its {kind.decode()} table claims {entries} entries, more than the {self.size}-byte file "
                f"holds ({FORGED})",
                self.path,
            )


def is_iso_bmff(head: bytes) -> bool:
    """Whether a file's first 8 bytes start an ISO-BMFF box (MP4, MOV, M4V, 3GP...)."""
    return len(head) >= 8 and head[4:8] in _FIRST


def check_index(path: str | os.PathLike[str], max_frames: int) -> None:
    """Refuse an ISO-BMFF file whose sample tables claim more samples than the file can hold or more than
    `max_frames` in a track (see the module docstring). Other files pass unread beyond their first 8 bytes."""
    name = os.fspath(path)
    with open(name, "rb", buffering=1 << 16) as handle:
        if not is_iso_bmff(handle.read(8)):
            return
        size = os.fstat(handle.fileno()).st_size
        walk = _Walk(handle, size, name)
        walk.walk(0, size)
        for track in walk.tracks.values():
            which = {b"vide": "the video track", b"soun": "an audio track"}.get(track.handler, "a track")
            claim = f"its sample tables claim {track.samples} samples in {which}"
            if track.samples > size:
                raise VideoError(
                    f"{claim}, more than the {size}-byte file can hold ({FORGED})",
                    name,
                )
            if track.handler == b"soun" and track.one_tick:
                continue  # indexed per chunk
            if track.samples > max_frames:
                raise VideoError(
                    f"{claim}, over the limit of {max_frames} frames (refused before decoding)", name
                )
            if walk.edited_samples(track) > max_frames:
                raise VideoError(
                    f"its edit list repeats the {track.samples} samples of {which} into more than "
                    f"{max_frames} index entries, over the frame limit (refused before decoding)",
                    name,
                )
