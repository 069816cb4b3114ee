"""The scoring service (`rqvqa serve`, extra `rqvqa[serve]`): FastAPI app over the model zoo."""

from rqvqa.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
