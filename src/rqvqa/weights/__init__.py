"""Checkpoint files: the registry of entries (declared by each model family, `rqvqa.registry`), where files
are looked for (`cache`), trust on first use (`pins`) and downloads (`fetch`).

Where a file is looked for: ``--weights-dir``, ``$RQVQA_WEIGHTS_DIR``, the download cache
``$RQVQA_HOME/weights``,
then the Hugging Face cache (`rqvqa.weights.cache`). Checkpoints are only ever read with
`torch.load(weights_only=True)` or safetensors (`rqvqa.checkpoints`).
"""

from rqvqa.files import ENV_HOME, rqvqa_home
from rqvqa.weights.cache import (
    ENV_WEIGHTS_DIR,
    cache_dir,
    cache_path,
    expand,
    find,
    get_entry,
    group_folder,
    groups,
    list_weights,
    locate,
    search_dirs,
    verify,
)
from rqvqa.weights.fetch import download, resolve
from rqvqa.weights.pins import (
    Verification,
    check_pinned,
    content_sha256,
    lock_file,
    pin,
    pinned,
    sha256_file,
    unpin,
)

__all__ = [
    "ENV_HOME",
    "ENV_WEIGHTS_DIR",
    "Verification",
    "cache_dir",
    "cache_path",
    "check_pinned",
    "content_sha256",
    "download",
    "expand",
    "find",
    "get_entry",
    "group_folder",
    "groups",
    "list_weights",
    "locate",
    "lock_file",
    "pin",
    "pinned",
    "resolve",
    "rqvqa_home",
    "search_dirs",
    "sha256_file",
    "unpin",
    "verify",
]
