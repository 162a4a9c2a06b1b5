"""Loss terms of the DMPlug objective.

The solver minimises ``total = data + sum(term.weight * term(x, iteration))`` over the seeds z, where ``x = R(z)``
mapped to [0, 1]. :class:`DataFidelity` is the data term; anything else (CLIP semantic consistency, flow-warped
pixel consistency, anchoring to a previous chunk) is a :class:`LossTerm`: an object with a ``name``, a ``weight`` and
a ``__call__(x, iteration)`` returning a scalar. Nothing else is required of it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from vidplug.errors import VidplugError


@runtime_checkable
class LossTerm(Protocol):
    """An extra term of the objective.

    Attributes:
        name: key of this term in ``SolveResult.loss_history`` (must differ from "total" and "data").
        weight: multiplies the term's value in the total loss.
    """

    name: str
    weight: float

    def __call__(self, x: Tensor, iteration: int) -> Tensor:
        """``x (T, C, H, W)`` current restoration in [0, 1] (not clamped; differentiable), 0-based ``iteration``.

        Returns a 0-d tensor (unweighted: the solver applies :attr:`weight`).
        """
        ...


class DataFidelity:
    """Mean squared measurement residual ``mean((y - A(x))^2)`` over all observed pixels.

    Args:
        y: the observation, shape of ``operator.A(x)``, on the [0, 1] scale of the operator's output.
        operator: anything with ``A(x)`` (differentiable in ``x``).
    """

    name = "data"
    weight = 1.0

    def __init__(self, y: Tensor, operator) -> None:
        self.y = y
        self.operator = operator

    def __call__(self, x: Tensor, iteration: int = 0) -> Tensor:
        ax = self.operator.A(x)  # observed-space prediction, same shape as y
        if ax.shape != self.y.shape:
            raise VidplugError(
                f"operator output has shape {tuple(ax.shape)} but the observation has {tuple(self.y.shape)}; "
                "build the operator for this observation's frames and size"
            )
        # float32 residual even when R ran under autocast: a low-precision MSE loses the small residuals late on
        return torch.mean((self.y.float() - ax.float()) ** 2)
