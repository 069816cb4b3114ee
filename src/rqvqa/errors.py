"""Typed errors. Every message is one line that names the file (when there is one) and the reason."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from os import PathLike

#: what never reaches a terminal or a one-line message raw: C0/C1 controls (escape sequences, newlines,
#: carriage returns), DEL, the Unicode line and paragraph separators, and the surrogates that stand for the
#: bytes of a name that is not UTF-8
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with its control characters, line separators and undecodable bytes written as escapes
    (`\\n`, `\\x1b`, `\\xff`...): safe on one line of a terminal, whatever a file name holds."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte of a non-UTF-8 name (surrogateescape)
            return f"\\x{code - 0xDC00:02x}"
        return char.encode("unicode_escape", "backslashreplace").decode("ascii")

    return _UNPRINTABLE.sub(escape, text)


class RqvqaError(Exception):
    """Base class of every error rqvqa raises on purpose. The CLI prints these without a traceback."""

    def __init__(self, reason: str, path: str | PathLike[str] | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(f"{printable(self.path)}: {reason}" if self.path is not None else reason)


class VideoError(RqvqaError):
    """A video file cannot be read or decoded (missing, not a video, no video stream, corrupt...)."""


class InputError(RqvqaError):
    """A user-supplied file other than a video (CSV, manifest, feature file) is malformed."""


class WeightsError(RqvqaError):
    """A checkpoint is missing, corrupt, has the wrong checksum, or does not match the expected layout."""


class ConfigError(RqvqaError):
    """An invalid combination of options or an unknown model, preset or source name."""


class StoppedError(RqvqaError):
    """Work stopped because its caller gave up on it (`rqvqa.video.decode.stoppable`: the service after a
    request's timeout)."""


class UnmeasurableError(RqvqaError):
    """Content a model cannot measure: a perfectly flat (e.g. black) frame or block, or a frame below the
    model's minimum size. Raised per frame by the frame-level feature code; the predictors skip such frames,
    and a video with no measurable frame at all becomes a per-video error with this reason."""


def no_measurable_content(
    reasons: Iterable[str], path: str | PathLike[str] | None = None
) -> UnmeasurableError:
    """The per-video error when every sampled frame was unmeasurable (one wording for every model): the most
    common frame-level reason, said once."""
    counts = Counter(reasons)
    if not counts:
        return UnmeasurableError("no measurable content: no frame was sampled", path)
    reason, count = counts.most_common(1)[0]
    total = sum(counts.values())
    if count == total:
        return UnmeasurableError(f"no measurable content: every sampled frame: {reason}", path)
    return UnmeasurableError(f"no measurable content in {total} sampled frames (e.g. {reason})", path)
