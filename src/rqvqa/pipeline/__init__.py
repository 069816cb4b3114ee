"""One pipeline for every entry point: inputs -> CPU stage (decode, sampling) -> model stage -> result rows.

- `inputs`: files, folders, globs, manifests, stdin, as one lazy stream of paths;
- `stages`: feature sources by name, one decode for what they need, shape checks (usable alone);
- `engines`: `score_collection` with the `sequential`, `local` (process pool) and `ray` engines, and
  `score_video` for one video in this thread;
- `outputs`: crash-safe, resumable result files (.parquet folder, .csv, .jsonl).

`predict`, `extract`, the `rqvqa-kvq` predictor and the Python API (`Predictor.predict_many`) use it; the
CLI only parses arguments and prints.
"""

from rqvqa.pipeline.engines import ENGINES, score_collection, score_video
from rqvqa.pipeline.inputs import iter_inputs
from rqvqa.pipeline.outputs import open_writer, read_results

__all__ = ["ENGINES", "iter_inputs", "open_writer", "read_results", "score_collection", "score_video"]
