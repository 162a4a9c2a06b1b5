"""Composition of video operators: ``A = A_n o ... o A_1`` (e.g. ``temporal+deblur``: blur each frame, then
average in time). The adjoint is the composition of the adjoints in reverse order; the noise belongs to the whole."""

from __future__ import annotations

from torch import Tensor, nn

from vidplug.errors import VidplugError
from vidplug.physics.base import VideoOperator


class ComposedOperator(VideoOperator):
    """Apply ``operators`` in order (the first acts on the clean video); noise is added once, at the end.

    The parts are noiseless (built without a noise model); this operator's own ``noise_model`` is the measurement
    noise.
    ``A_dagger`` is the first part's ``A_dagger`` of ``y`` when every later part keeps the shape (a cheap
    estimate), or with ``dagger_steps > 0`` damped CG steps on the composed normal equations from there.

    Args:
        task: name, e.g. ``"temporal+deblur"``.
        operators: the parts, at least two; each part's output shape must be the next part's input shape.
    """

    def __init__(self, task: str, operators: list[VideoOperator], dagger_steps: int = 0, **common) -> None:
        if len(operators) < 2:
            raise VidplugError("a composed operator needs at least two parts")
        first = operators[0]
        super().__init__(
            task,
            first.num_frames,
            first.frame_size,
            channels=first.channels,
            seed=first.seed,
            frame_offset=first.frame_offset,
            **common,
        )
        for prev, nxt in zip(operators[:-1], operators[1:], strict=True):
            if prev.output_shape() != nxt.input_shape:
                raise VidplugError(
                    f"cannot compose {prev.task} (output {prev.output_shape()}) with {nxt.task} "
                    f"(input {nxt.input_shape})"
                )
        self.parts = nn.ModuleList(operators)
        self.linear = all(op.linear for op in operators)
        self.dagger_steps = int(dagger_steps)

    @property
    def context(self) -> int:
        return sum(op.context for op in self.parts)

    def output_shape(self, x_shape=None) -> tuple[int, int, int, int]:
        super().output_shape(x_shape)  # validates x_shape
        return self.parts[-1].output_shape()

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        for op in self.parts:
            x = op.A(x)
        return x

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        if not self.linear:
            raise NotImplementedError(f"{self.task} has a non-linear part; it has no adjoint")
        for op in reversed(self.parts):
            y = op.A_adjoint(y)
        return y

    def _dagger(self, y: Tensor) -> Tensor:
        later = self.parts[1:]
        if any(op.output_shape() != op.input_shape for op in later):
            raise NotImplementedError(
                f"{self.task}: A_dagger needs every part after the first to keep the shape"
            )
        x0 = self.parts[0]._dagger(y)
        return self.least_squares(y, x0, self.dagger_steps)
