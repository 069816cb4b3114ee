"""rqvqa: blind video quality assessment with rich quality-aware features (RQ-VQA)."""

from rqvqa.errors import RqvqaError

__version__ = "0.1.0"
__all__ = ["RqvqaError", "__version__"]
