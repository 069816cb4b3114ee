"""Training losses: the official RQ-VQA PLCC loss, MSE and MAE, and a name registry.

Every loss takes ``(pred, target)`` tensors of any shape (flattened); it returns a scalar on their device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from rqvqa.errors import ConfigError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Added to the standard deviation exactly as the official utils.plcc_loss does.
_STD_EPS = 1e-8


def _standardise(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(-1)
    std, mean = torch.std_mean(x, unbiased=False)
    return (x - mean) / (std + _STD_EPS)


def plcc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The PLCC loss of RQ-VQA/MinimalisticVQA ``utils.plcc_loss``.

    Both inputs are z-normalised with the population std (+1e-8); with rho = mean(pred_n * target_n),
    loss = (MSE(pred_n, target_n) / 4 + MSE(rho * pred_n, target_n) / 4) / 2 = (1 - rho)(3 + rho) / 8.
    It is symmetric in its arguments; a batch of one item gives 0 with zero gradient.
    """
    if pred.numel() != target.numel():
        raise ValueError(f"plcc_loss: {pred.numel()} predictions vs {target.numel()} targets")
    pred_n = _standardise(pred)
    target_n = _standardise(target.to(pred.dtype))
    loss0 = F.mse_loss(pred_n, target_n) / 4
    rho = torch.mean(pred_n * target_n)
    loss1 = F.mse_loss(rho * pred_n, target_n) / 4
    return (loss0 + loss1) / 2


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between predictions and labels."""
    return F.mse_loss(pred.reshape(-1), target.reshape(-1).to(pred.dtype))


def mae_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between predictions and labels."""
    return F.l1_loss(pred.reshape(-1), target.reshape(-1).to(pred.dtype))


LOSSES: dict[str, LossFn] = {"plcc": plcc_loss, "mse": mse_loss, "mae": mae_loss}


def get_loss(name: str) -> LossFn:
    """Look a loss up by name ("plcc", "mse", "mae")."""
    try:
        return LOSSES[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
