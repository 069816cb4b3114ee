"""One pipeline for every entry point: inputs -> decode stage (CPU workers) -> model stage -> result rows.

- `inputs`: files, folders, globs, manifests, stdin, as one lazy stream of paths;
- `engines`: `score_collection` with the `sequential`, `local` (process pool) and `ray` engines, and
  `score_video` for one video in this thread; the stages themselves are the predictor's
  (`rqvqa.predictor.Predictor.decoder` and `score`);
- `outputs`: crash-safe, resumable result files (.parquet folder, .csv, .jsonl);
- `extract`: the same engines filling a feature store (`rqvqa extract`).

`predict`, `features`, `extract`, `serve` and the Python API (`Predictor.predict_many`) use it; the CLI only
parses arguments and prints.
"""

from rqvqa.pipeline.engines import ENGINES, score_collection, score_video
from rqvqa.pipeline.inputs import iter_inputs
from rqvqa.pipeline.outputs import open_writer, read_results

__all__ = ["ENGINES", "iter_inputs", "open_writer", "read_results", "score_collection", "score_video"]
