"""ES-WMV: early stopping by windowed moving variance (Wang, Li, Zhuang, Chen, Liang, Sun, TMLR 2023).

Iterative reconstructions that can overfit the noise (deep image prior, DMPlug) first settle on a good image and then
start to drift. ES-WMV watches the *outputs* only, never the ground truth: it keeps the last ``W`` outputs and their
variance

    VAR(t) = 1/W * sum_{s=t-W+1..t} mean_pixels (x_s - xbar_t)^2,     xbar_t = 1/W * sum_{s=t-W+1..t} x_s,

and remembers the iterate at which VAR reached its minimum; it stops once VAR has not reached a new minimum for
``P`` consecutive iterations.

Which iterate of the window is returned: the **newest** one (``x_t`` of the window ending at ``t``), as in the
ES-WMV paper's algorithm. The minimum-variance window is the stretch where the iterates stopped moving; its newest
member has had the most optimisation and is a real output of the reverse process R (the window mean is not: R's
range is not convex, so the mean of W images would be blurrier and would not come from any seed z).

Variants (the literature's, for priors whose outputs keep drifting): ``downscale=k`` measures the variance on a
k x k average-pooled copy of the outputs (pixel-level jitter and fitted noise average out; the returned iterate stays
full size); ``mode="ema"`` replaces the window by exponential moving averages of span W (decay a = 2 / (W + 1)):
``mu_t = mu_{t-1} + a d_t``, ``VAR_t = (1 - a) (VAR_{t-1} + a mean(d_t^2))`` with ``d_t = x_t - mu_{t-1}``, valid
from the W-th output on and divided by ``1 - (1 - a)^(t - 1)`` (the start-up bias of an average started at 0). Once the rule has fired, later updates are ignored: the choice is the same whether the
caller stops at once or a few iterations later (or runs on to record the whole curve).

Everything stays on the device: the window is a ring buffer, the variance comes from running sums (O(pixels) per
update, not O(W * pixels)), and the best value / iterate / patience counter are tensors updated with
``torch.where``. :meth:`ESWMV.update` therefore never synchronises with the host; it returns a 0-d bool tensor that
the caller reads (``bool(...)``) only every few iterations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vidplug.errors import VidplugError

ES_MODES = ("window", "ema")


class ESWMV:
    """Windowed-moving-variance early stopping.

    Args:
        window: W, number of most recent outputs whose variance is tracked (>= 2).
        patience: P, stop after this many consecutive full-window iterations without a new variance minimum (>= 1).
        mode: ``"window"`` (published) or ``"ema"`` (exponential moving variance of span ``window``).
        downscale: measure the variance on ``downscale`` x ``downscale`` average-pooled outputs (1 = as published).

    Usage::

        es = ESWMV(window=20, patience=50)
        for it in range(iters):
            x = ...                                 # (T, C, H, W), any range
            stop = es.update(x.detach(), it, z)     # 0-d bool tensor, no host sync
            if it % 10 == 0 and bool(stop):
                break
        x_best, it_best = es.best_output, es.best_iteration
    """

    def __init__(self, window: int, patience: int, mode: str = "window", downscale: int = 1) -> None:
        if mode not in ES_MODES:
            raise VidplugError(f"unknown ES-WMV mode {mode!r}; set solver.es_mode to one of: {', '.join(ES_MODES)}")
        if downscale < 1:
            raise VidplugError(f"ES-WMV downscale must be >= 1, got {downscale}; set solver.es_downscale >= 1")
        if window < 2:
            raise VidplugError(f"ES-WMV window must be >= 2 iterations, got {window}; set solver.es_window >= 2")
        if patience < 1:
            raise VidplugError(f"ES-WMV patience must be >= 1 iteration, got {patience}; set solver.es_patience >= 1")
        self.window = int(window)
        self.patience = int(patience)
        self.mode = mode
        self.downscale = int(downscale)
        self.reset()

    def reset(self) -> None:
        """Forget everything (e.g. before a restart)."""
        self._buffer: Tensor | None = None  # (W, *shape) ring buffer of outputs, in the outputs' dtype
        self._count = 0  # outputs pushed so far (host int: known without asking the device)
        self._shift: Tensor | None = None  # reference output subtracted before summing (see _recompute)
        self._sum: Tensor | None = None  # sum over the window of (x - shift), accumulation dtype
        self._sumsq: Tensor | None = None  # sum over the window of ||x - shift||^2, 0-d
        self._best_var: Tensor | None = None  # 0-d, +inf until the window first fills
        self._best_iter: Tensor | None = None  # 0-d int64, -1 until the window first fills
        self._best_output: Tensor | None = None
        self._best_z: Tensor | None = None
        self._since_best: Tensor | None = None  # 0-d int64: full-window updates since the last minimum
        self._stop: Tensor | None = None  # 0-d bool
        self._last_var: Tensor | None = None  # 0-d, NaN until the window first fills
        self._stop_iter: Tensor | None = None  # 0-d int64: iteration at which the rule fired, -1 before
        self._ema_mean: Tensor | None = None  # ema mode: moving mean of the (reduced) outputs
        self._ema_var: Tensor | None = None  # ema mode: 0-d moving variance

    # -- update ------------------------------------------------------------------------------------------------------

    def update(self, x: Tensor, iteration: int, z: Tensor | None = None) -> Tensor:
        """Push output ``x`` (any shape, e.g. (T, C, H, W)) of ``iteration``; ``z`` is the seed that produced it.

        Returns a 0-d bool tensor on ``x.device``: True once the variance has not improved for ``patience`` updates
        (and from then on: later updates change nothing). No host synchronisation happens here.
        """
        x = x.detach()
        xs = self._reduce(x)  # what the variance is measured on
        if self._best_output is None:
            self._allocate(x, xs, z)
        elif x.shape != self._best_output.shape:
            raise VidplugError(f"ES-WMV got an output of shape {tuple(x.shape)} after {tuple(self._best_output.shape)}")
        var = self._ema_variance(xs) if self.mode == "ema" else self._window_variance(xs)
        if var is None:  # the window is not full yet
            return self._stop
        var = var.clamp_min(0.0).to(self._best_var.dtype)
        self._last_var = var
        active = ~self._stop  # once fired, the choice is frozen
        improved = (var < self._best_var) & active  # NaN compares False: a NaN output never becomes the choice
        self._best_var = torch.where(improved, var, self._best_var)
        self._best_iter = torch.where(improved, torch.full_like(self._best_iter, iteration), self._best_iter)
        self._best_output.copy_(torch.where(improved, x, self._best_output))
        if z is not None and self._best_z is not None:
            self._best_z.copy_(torch.where(improved, z.detach(), self._best_z))
        self._since_best = torch.where(improved, torch.zeros_like(self._since_best),
                                       self._since_best + active.long())
        fired = active & (self._since_best >= self.patience)
        self._stop_iter = torch.where(fired, torch.full_like(self._stop_iter, iteration), self._stop_iter)
        self._stop = self._stop | fired
        return self._stop

    def _reduce(self, x: Tensor) -> Tensor:
        """``x`` average-pooled by ``downscale`` over its last two axes (as is when 1 or when they are smaller)."""
        k = self.downscale
        if k == 1 or x.ndim < 3 or min(x.shape[-2:]) < k:
            return x
        lead = x.shape[:-2]
        pooled = F.avg_pool2d(x.reshape(-1, 1, *x.shape[-2:]).float(), k)  # (N, 1, H/k, W/k)
        return pooled.reshape(*lead, *pooled.shape[-2:]).to(x.dtype)

    def _window_variance(self, x: Tensor) -> Tensor | None:
        """Push ``x`` into the ring buffer; VAR of the window ending here (None until it is full)."""
        slot = self._count % self.window
        if self._count >= self.window:
            d_old = self._buffer[slot].to(self._sum.dtype) - self._shift
            self._sum -= d_old
            self._sumsq -= (d_old * d_old).sum()
        self._buffer[slot].copy_(x)
        d_new = x.to(self._sum.dtype) - self._shift
        self._sum += d_new
        self._sumsq += (d_new * d_new).sum()
        self._count += 1
        if self._count % self.window == 0:
            # Every W pushes, rebuild the sums exactly from the buffer around a fresh shift: running sums of float
            # data drift, and the shift (a recent output) keeps the subtraction below well conditioned.
            self._recompute()
        if self._count < self.window:
            return None
        mean_dev = self._sum / self.window  # window mean minus shift, per pixel
        # mean over window and pixels of (x - xbar)^2 = E||x - shift||^2 - ||xbar - shift||^2, per pixel
        return (self._sumsq / self.window - (mean_dev * mean_dev).sum()) / self._sum.numel()

    def _ema_variance(self, x: Tensor) -> Tensor | None:
        """Exponential moving variance of span ``window`` after pushing ``x`` (None for the first W - 1 outputs)."""
        a = 2.0 / (self.window + 1)
        xa = x.to(self._ema_mean.dtype)
        if self._count == 0:
            self._ema_mean.copy_(xa)
        else:
            d = xa - self._ema_mean
            self._ema_mean += a * d
            self._ema_var = (1 - a) * (self._ema_var + a * (d * d).mean())
        self._count += 1
        if self._count < self.window:
            return None
        # the variance starts at 0, so its EMA is biased low early on (by 1 - (1 - a)^n after n differences):
        # divided out, as Adam does, or the first valid value tends to be the minimum and the rule fires at once
        return self._ema_var / (1.0 - (1.0 - a) ** (self._count - 1))

    def _allocate(self, x: Tensor, xs: Tensor, z: Tensor | None) -> None:
        dev = x.device
        # float64 running sums where the device has it (MPS does not); float32 plus periodic recompute otherwise
        acc = torch.float64 if dev.type != "mps" else torch.float32
        if self.mode == "window":
            self._buffer = torch.empty((self.window, *xs.shape), dtype=xs.dtype, device=dev)  # (W, *xs.shape)
            self._shift = xs.to(acc).clone()
            self._sum = torch.zeros_like(self._shift)
            self._sumsq = torch.zeros((), dtype=acc, device=dev)
        else:
            self._ema_mean = torch.zeros(xs.shape, dtype=acc, device=dev)
            self._ema_var = torch.zeros((), dtype=acc, device=dev)
        self._best_var = torch.full((), float("inf"), dtype=torch.float32, device=dev)
        self._best_iter = torch.full((), -1, dtype=torch.long, device=dev)
        self._best_output = torch.zeros_like(x)
        self._best_z = torch.zeros_like(z.detach()) if z is not None else None
        self._since_best = torch.zeros((), dtype=torch.long, device=dev)
        self._stop = torch.zeros((), dtype=torch.bool, device=dev)
        self._stop_iter = torch.full((), -1, dtype=torch.long, device=dev)
        self._last_var = torch.full((), float("nan"), dtype=torch.float32, device=dev)

    def _recompute(self) -> None:
        """Exact sums over the (full) buffer around the newest output."""
        newest = self._buffer[(self._count - 1) % self.window]
        self._shift = newest.to(self._sum.dtype).clone()
        centred = self._buffer.to(self._sum.dtype) - self._shift  # (W, *shape)
        self._sum = centred.sum(0)
        self._sumsq = (centred * centred).sum()

    # -- results -----------------------------------------------------------------------------------------------------

    @property
    def stop_iteration(self) -> int | None:
        """Iteration at which the rule fired (None if it has not). Host sync."""
        return _iteration_or_none(self._stop_iter)

    @property
    def window_full(self) -> bool:
        return self._count >= self.window

    @property
    def stop_flag(self) -> Tensor | None:
        """0-d bool tensor (device) of the last update, None before the first."""
        return self._stop

    @property
    def last_variance(self) -> Tensor | None:
        """0-d tensor: VAR of the window ending at the last update (NaN until the window is full)."""
        return self._last_var

    @property
    def best_variance(self) -> Tensor | None:
        """0-d tensor: the smallest VAR so far (+inf until the window is full)."""
        return self._best_var

    @property
    def has_best(self) -> bool:
        """True when some finite-variance iterate has been chosen (host sync)."""
        return self.best_iteration is not None

    @property
    def best_iteration(self) -> int | None:
        """Iteration of the chosen (newest-in-minimum-window) iterate; None if none yet. Host sync."""
        return _iteration_or_none(self._best_iter)

    @property
    def best_iteration_tensor(self) -> Tensor | None:
        """0-d int64 tensor on the device (-1 until chosen); no host sync."""
        return self._best_iter

    @property
    def best_output(self) -> Tensor | None:
        """The chosen output (same shape/dtype as the pushed outputs); None if none yet."""
        return self._best_output if self.has_best else None

    @property
    def best_z(self) -> Tensor | None:
        """The seed passed with the chosen output, if seeds were passed; None otherwise."""
        return self._best_z if self.has_best else None


def _iteration_or_none(index: Tensor | None) -> int | None:
    """A device-side iteration index (-1 = none yet) as an int, or None. Host sync."""
    if index is None:
        return None
    it = int(index)
    return it if it >= 0 else None
