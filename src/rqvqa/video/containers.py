"""Cheap checks of a container's sample index, before FFmpeg opens the file.

FFmpeg's MP4/QuickTime demuxer builds one index entry per sample the file's tables claim while it opens the
file, before any of our checks on the opened stream can run: about 37 bytes a sample, so a 2 KB `.mov` whose
sample-size table (`stsz`, a constant size and a count: no table to read) claims 85 M samples took 3.1 GB and
21 s. A fragment's run of samples (`trun` in a `moof`) is the same kind of bomb (20 M claimed samples without
per-sample fields: 736 MB on opening a 1.8 KB file), and so is an edit list (`elst`) whose edits show the same
samples over and over (each edit is indexed anew: 30,000 samples and 2,800 edits, 2.2 GB and 3 minutes). A
zlib-compressed movie header (`cmov`, old QuickTime) hides the same tables from a reader that does not unpack
it: it is unpacked here (at most `MAX_MOVIE_HEADER`) and walked the same way.

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

import io
import os
import struct
import zlib
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
#: a compressed movie header (`cmov`) may unpack to at most this many bytes (FFmpeg holds it all)
MAX_MOVIE_HEADER = 64 << 20


@dataclass
class _Track:
    id: int = 0
    handler: bytes = b""
    samples: int = 0
    #: one time-to-sample entry of one tick: FFmpeg indexes uncompressed audio per chunk
    one_tick: bool = False
    #: media time scale (`mdhd`)
    scale: int = 0
    #: durations (movie time scale) of the edits that show media (`elst`; empty edits left out)
    edits: np.ndarray = field(default_factory=lambda: np.empty(0))
    #: read only for a track with several edits: the shortest sample duration (`stts`; 0: unknown) and the
    #: sync samples, 1-based (`stss`; None: every sample is a key frame)
    shortest: int = 0
    keys: np.ndarray | None = None

    def edited_samples(self, movie_scale: int) -> int:
        """About how many index entries FFmpeg builds for this track once its edit list is applied: each edit
        that shows media takes the samples of its duration (at the shortest sample duration) plus the frames
        back to the previous key frame, at most every sample; an edit list can repeat the media many times."""
        if self.edits.size < 2 or not self.samples:
            return self.samples
        preroll = 0
        if self.keys is not None and self.keys.size:
            bounds = np.concatenate([[1], np.sort(self.keys), [self.samples + 1]])
            preroll = int(np.diff(bounds).max())
        if self.shortest and movie_scale and self.scale:
            shown = np.floor(self.edits * self.scale / (movie_scale * self.shortest)) + 1 + preroll
        else:
            shown = np.full(self.edits.size, float(self.samples))
        return int(np.minimum(shown, self.samples).sum())


class _Walk:
    def __init__(self, handle: BinaryIO, size: int, path: str):
        #: `size`: the file's size (what its tables must fit), also for a header unpacked in memory
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

    def table(self, offset: int, entries: int, entry_bytes: int) -> bytes:
        """The bytes of a table's whole entries (as many as the file holds)."""
        data = self.read(offset, entries * entry_bytes)
        return data[: len(data) - len(data) % entry_bytes]

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

    def add(self, track: _Track) -> None:
        if track.id in self.tracks:  # fragments read before their track
            track.samples += self.tracks[track.id].samples
        self.tracks[track.id] = track

    def walk(self, start: int, end: int) -> None:
        for kind, payload, box_end in self.children(start, end):
            if kind == b"trak":
                track = self.track = _Track()
                self.walk(payload, box_end)
                self.add(track)
                self.track = None
            elif kind == b"cmov":
                self.compressed(payload, box_end)
            elif kind in _CONTAINERS:
                self.walk(payload, box_end)
            else:
                self.leaf(kind, payload, box_end)

    def compressed(self, start: int, end: int) -> None:
        """A zlib-compressed movie header (`cmov`: `dcom` names the method, `cmvd` holds the data), which
        FFmpeg unpacks whole: held to `MAX_MOVIE_HEADER`, then walked as any other."""
        method, packed = b"", None
        for kind, payload, box_end in self.children(start, end):
            if kind == b"dcom":
                method = self.read(payload, 4)
            elif kind == b"cmvd":
                packed = (payload + 4, box_end)  # after the unpacked size it claims
        if method != b"zlib" or packed is None:
            return  # FFmpeg says what it cannot read
        # in small pieces: a piece of 16 KB unpacks to at most about 16 MB
        unpack, parts, unpacked = zlib.decompressobj(), [], 0
        for at in range(*packed, 1 << 14):
            try:
                parts.append(unpack.decompress(self.read(at, min(1 << 14, packed[1] - at))))
            except zlib.error:
                return
            unpacked += len(parts[-1])
            if unpacked > MAX_MOVIE_HEADER:
                raise VideoError(
                    f"its compressed movie header unpacks to more than {MAX_MOVIE_HEADER} bytes ({FORGED})",
                    self.path,
                )
            if unpack.eof:
                break
        movie = b"".join(parts)
        inner = _Walk(io.BytesIO(movie), self.size, self.path)
        inner.boxes = self.boxes
        inner.walk(0, len(movie))
        self.boxes, self.scale = inner.boxes, inner.scale or self.scale
        for track in inner.tracks.values():
            self.add(track)

    def leaf(self, kind: bytes, payload: int, end: int) -> None:
        head = self.read(payload, min(max(end - payload, 0), 24))
        if len(head) < 8:
            return
        track = self.track
        # tkhd: track id, mvhd / mdhd: time scale, after the version's creation and modification times
        at = 20 if head[0] == 1 else 12
        value = struct.unpack_from(">I", head, at)[0] if len(head) >= at + 4 else 0
        if kind == b"mvhd":
            self.scale = value
        elif kind in (b"tfhd", b"trun"):
            self.fragment(kind, head)
        elif track is None:
            return
        elif kind == b"tkhd":
            track.id = value
        elif kind == b"mdhd":
            track.scale = value
        elif kind == b"hdlr" and len(head) >= 12 and head[4:8] != b"dhlr":
            track.handler = head[8:12]
        elif kind == b"elst":
            entries, wide = struct.unpack_from(">I", head, 4)[0], head[0] == 1
            self.fits(kind, entries, 20 if wide else 12)
            fields = [("d", ">u8"), ("t", ">i8")] if wide else [("d", ">u4"), ("t", ">i4")]
            table = np.frombuffer(
                self.table(payload + 8, entries, 20 if wide else 12), fields + [("r", ">i4")]
            )
            track.edits = table["d"][table["t"] != -1].astype(np.float64)
        elif kind in _TABLES:
            entries = struct.unpack_from(">I", head, 4)[0]
            self.fits(kind, entries, _TABLES[kind])
            if kind == b"stts" and len(head) >= 16:
                track.one_tick = entries == 1 and struct.unpack_from(">I", head, 12)[0] == 1
            # the edit-list estimate needs these; `edts` precedes `mdia` as QuickTime and FFmpeg write it
            # (otherwise every edit counts as showing every sample)
            if kind == b"stts" and track.edits.size >= 2:
                deltas = np.frombuffer(self.table(payload + 8, entries, 8), ">u4").reshape(-1, 2)
                used = deltas[deltas[:, 0] > 0, 1]
                track.shortest = int(used.min()) if used.size else 0
            elif kind == b"stss" and track.edits.size >= 2:
                track.keys = np.frombuffer(self.table(payload + 8, entries, 4), ">u4").astype(np.int64)
        elif kind in (b"stsz", b"stz2") and len(head) >= 12:
            sample_size, count = struct.unpack_from(">II", head, 4)
            bits = 32 if kind == b"stsz" else sample_size & 0xFF
            if kind == b"stz2" or sample_size == 0:
                self.fits(kind, count, bits / 8)
            track.samples += count

    def fragment(self, kind: bytes, head: bytes) -> None:
        if kind == b"tfhd":
            self.fragment_track = struct.unpack_from(">I", head, 4)[0]
            return
        flags, count = struct.unpack_from(">II", head)
        per_sample = 4 * sum(bool(flags & bit) for bit in (0x100, 0x200, 0x400, 0x800))
        self.fits(kind, count, per_sample)
        self.tracks.setdefault(self.fragment_track, _Track()).samples += count

    def fits(self, kind: bytes, entries: int, entry_bytes: float) -> None:
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
    """Refuse an ISO-BMFF file whose sample index is forged or over `max_frames` in a track (see the module
    docstring). Other files pass unread beyond their first 8 bytes."""
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
            raise VideoError(f"{claim}, more than the {size}-byte file can hold ({FORGED})", name)
        if track.handler == b"soun" and track.one_tick:
            continue  # indexed per chunk
        if track.samples > max_frames:
            raise VideoError(
                f"{claim}, over the limit of {max_frames} frames (refused before decoding)", name
            )
        if track.edited_samples(walk.scale) > max_frames:
            raise VideoError(
                f"its edit list repeats the {track.samples} samples of {which} into more than "
                f"{max_frames} index entries, over the frame limit (refused before decoding)",
                name,
            )
