"""The optimisation problem of one chunk window, in the solver's own terms: the data term over the window's exactly
observed frames (:class:`CroppedOperator`), the frames just outside the window that a temporal PSF reaches
(:class:`ExteriorOperator`) and the initial seeds (one per absolute frame index, or a DDIM-inversion warm start).
Nothing here knows the application's config: callers pass the pieces."""

from __future__ import annotations

import torch
from torch import Tensor

from vidplug.physics.base import VideoOperator
from vidplug.physics.seeding import frame_generator
from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import ddim_invert, ddim_timesteps


def initial_seeds(shape: tuple[int, int, int], frames: range, seed: int) -> Tensor:
    """Initial diffusion seeds ``(len(frames), C, H, W)``, one per absolute frame index (chunking-independent),
    each from its own generator hashed from ``(seed, "init-seed", index)``, so no two (seed, frame) pairs share one."""
    return torch.stack([torch.randn(shape, generator=frame_generator(seed, "init-seed", t)) for t in frames])


def inversion_seeds(estimate: Tensor, prior: DiffusionPrior, num_steps: int, spacing: str, iters: int = 10) -> Tensor:
    """Warm-start seeds ``prior.seed_shape((T, C, H, W))`` whose reverse process lands near ``estimate`` (in
    [0, 1]): its DDIM inversion over the solver's ``num_steps`` timesteps with ``iters`` fixed-point network calls
    per level (a latent prior VAE-encodes the estimate first and inverts in latent space)."""
    timesteps = ddim_timesteps(num_steps, prior.num_train_timesteps, spacing)
    with torch.no_grad():
        return ddim_invert(prior.encode_frames(estimate), prior, timesteps, fixed_point_iters=iters)


class CroppedOperator(torch.nn.Module):
    """The data term of a chunk: the window's operator, keeping only the observed frames ``[lo, hi)`` of its output."""

    def __init__(self, op: torch.nn.Module, lo: int, hi: int):
        super().__init__()
        self.op, self.lo, self.hi = op, lo, hi

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (operator notation)
        return self.op.A(x)[self.lo : self.hi]

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        """Adjoint of :meth:`A`: the observed frames' adjoint, zero for the others ``(T, C, H, W)``."""
        full = y.new_zeros(self.op.output_shape())
        full[self.lo : self.hi] = y
        return self.op.A_adjoint(full)

    def A_dagger(self, y: Tensor) -> Tensor:  # noqa: N802
        return self.op.A_dagger(y)


def project(data_op: CroppedOperator, y: Tensor, x: Tensor, steps: int, damping: float) -> Tensor:
    """Measurement consistency: ``steps`` conjugate-gradient steps on ``|A x' - y|^2 + damping |x' - x|^2`` from
    ``x`` (``(T, C, H, W)`` in [0, 1]; ``y`` the observed frames); returns ``x'`` clamped to [0, 1]. Needs a linear
    operator (SR: iterative back-projection; inpainting: observed pixels pulled to ``y``)."""
    with torch.no_grad():
        out = VideoOperator.least_squares(data_op, y, x, steps, damping)  # uses only A and A_adjoint
    return out.clamp(0.0, 1.0)


class ExteriorOperator(VideoOperator):
    """A chunk window's operator in which every frame keeps its data term: the frames just outside the window that
    the temporal PSF reaches are held at a fixed estimate instead of being replicated from the window's end frames.

    Without it a window's first and last ``context`` frames have no data term (their PSF leaves the window), so they
    are free, and the k-frame mean carries that freedom to every k-th frame of the window (``x_{t+k} - x_t = k (y_{t+
    k//2+1} - y_{t+k//2})``): all frames of a chunk lose, not only its edges (benchmarks/RESULTS.md, "Issue 18,
    session 6"). Here ``y_t = A_in x + A_out e``, with ``e`` the fixed exterior frames, so the data term is ``|A_in x -
    (y - offset)|`` with ``offset = A_out e``: :meth:`A` and :meth:`A_adjoint` are the linear part ``A_in`` (what
    least squares and the solvers need), and the observation handed to them is ``y - offset``. :meth:`A_dagger` takes
    that shifted observation and gives the window operator's own estimate of the original one.

    Args:
        window: the window's operator (frames ``[ws, we)``; its replicated ends are not used by the data term).
        extended: the same task's operator over ``[es, ee)``, the window plus up to ``context`` frames each side.
        lead: ``ws - es``, the exterior frames before the window.
        exterior (Tensor): ``(ee - es, C, H, W)`` estimate of the extended range; only its frames outside the window
            are used.
    """

    linear = True

    def __init__(self, window: VideoOperator, extended: VideoOperator, lead: int, exterior: Tensor) -> None:
        super().__init__(window.task, window.num_frames, window.frame_size, channels=window.channels,
                         seed=window.seed, frame_offset=window.frame_offset, noise_model=window.noise_model)
        inside = 0 <= lead and lead + window.num_frames <= extended.num_frames
        if not window.linear or not inside or exterior.shape[0] != extended.num_frames:
            raise ValueError("the exterior needs a linear window operator inside the extended one, and an estimate of "
                             "every extended frame")
        self.window, self.extended, self.lead = window, extended, int(lead)
        fixed = exterior.detach().clone()
        fixed[self.lead : self.lead + self.num_frames] = 0  # only the exterior frames contribute to the offset
        with torch.no_grad():
            self.register_buffer("offset", self._rows(extended.A(fixed)))

    @property
    def context(self) -> int:
        return self.window.context

    def _embed(self, v: Tensor) -> Tensor:
        """``v (T, ...)`` placed at the window's frames of the extended range, zero outside."""
        out = v.new_zeros((self.extended.num_frames, *v.shape[1:]))
        out[self.lead : self.lead + self.num_frames] = v
        return out

    def _rows(self, v: Tensor) -> Tensor:
        return v[self.lead : self.lead + self.num_frames]

    def output_shape(self, x_shape=None) -> tuple[int, int, int, int]:
        return self.window.output_shape(x_shape)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (operator notation)
        return self._rows(self.extended.A(self._embed(x)))

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return self._rows(self.extended.A_adjoint(self._embed(y)))

    def _dagger(self, y: Tensor) -> Tensor:
        return self.window.A_dagger(y + self.offset)


def exterior_problem(window: VideoOperator, extended: VideoOperator, lead: int, y: Tensor, steps: int,
                     damping: float) -> tuple[Tensor, ExteriorOperator]:
    """The window's problem with every observed frame kept: ``(y_window - offset, ExteriorOperator)``.

    ``y`` holds the observations of the whole extended range ``(ee - es, C, h, w)``. The exterior frames are estimated
    by damped least squares over the extended range (``steps`` CG steps at ``damping`` from the extended operator's
    pseudo-inverse, so each exterior frame is pulled towards its own observation) fitted to the window's observed
    frames, so the estimate is the same for every method and needs nothing from other chunks (any order, any process,
    resume)."""
    t = window.num_frames
    y_window = y[lead : lead + t]
    estimate = project(CroppedOperator(extended, lead, lead + t), y_window, extended.A_dagger(y), steps, damping)
    op = ExteriorOperator(window, extended, lead, estimate).to(y.device)
    return y_window - op.offset, op
