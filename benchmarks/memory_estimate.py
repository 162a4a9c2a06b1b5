"""Memory and FLOPs of a solver iteration without the memory or the arithmetic: fake tensors and two byte counters.

A fake tensor (``torch._subclasses.fake_tensor``) is a ``meta`` tensor that keeps the device it stands for: every
operator computes only shapes and dtypes, while dispatch, autograd, checkpointing and autocast behave as on that
device. So the solver's own code (``reverse_to_unit`` with ``checkpoint=`` and ``autocast_dtype=``) runs unchanged
on an ADM-256 whose 552.8M weights never exist, and two counters watch it:

* :class:`SavedTensorBytes`: bytes of the tensors autograd keeps for the backward pass (``saved_tensors_hooks``),
  each storage once, the resident weights left out;
* :class:`LiveTensorBytes`: bytes of every storage an operator creates, until it is freed, and their peak: what
  ``torch.cuda.max_memory_allocated`` would rise by, less the CUDA allocator's rounding, cuDNN/cuBLAS workspaces
  and fragmentation.

Plain ``meta`` tensors would do for fp32, but autocast has no ``meta`` device type, so the fake tensors stand for
CPU tensors and ``bf16`` follows CPU autocast's op lists. CUDA's lists differ for ADM in one place (they run
nearest-neighbour upsampling in fp32); fake CUDA tensors can run a forward pass without a GPU (not a backward: the
autograd engine needs a real device), which is enough for :func:`saved_bytes_of_r` under
:func:`cuda_autocast_without_gpu` to measure that difference.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator
from typing import Any
from unittest import mock

import torch
from torch import Tensor, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from benchmarks.common import load_bench_prior
from vidplug.physics import build_operator
from vidplug.prior.base import DiffusionPrior
from vidplug.prior.ddim import ddim_timesteps, reverse_to_unit
from vidplug.solver.memory import IterationMemory, chunk_size_for_memory
from vidplug.solver.reverse import backprop_through_r, reverse_fn
from vidplug.solver.seeds import IndependentSeeds
from vidplug.solver.terms import DataFidelity

# ---------------------------------------------------------------------------------------------------------------
# fake models


def fake_mode() -> FakeTensorMode:
    """A fake-tensor mode; real tensors met as inputs (constants) are faked on the fly."""
    return FakeTensorMode(allow_non_fake_inputs=True)


def make_fake_(module: nn.Module, mode: FakeTensorMode, device: str = "cpu") -> nn.Module:
    """Replace every parameter and buffer of ``module`` (real or ``meta``) by a fake tensor on ``device``, in place.

    Shapes, dtypes, ``requires_grad`` and sharing between modules are kept; values are not. Returns ``module``.
    """
    fakes: dict[int, Tensor] = {}
    with mode:
        for m in module.modules():
            for name, p in list(m.named_parameters(recurse=False)):
                if id(p) not in fakes:
                    fakes[id(p)] = nn.Parameter(torch.empty_like(p, device=device), requires_grad=p.requires_grad)
                setattr(m, name, fakes[id(p)])
            for name, b in list(m.named_buffers(recurse=False)):
                if id(b) not in fakes:
                    fakes[id(b)] = torch.empty_like(b, device=device)
                setattr(m, name, fakes[id(b)])
    return module


def fake_prior(name: str, mode: FakeTensorMode, device: str = "cpu") -> DiffusionPrior:
    """``load_bench_prior(name)`` built on ``meta`` (no memory, no initialisation), then made fake on ``device``."""
    return make_fake_(load_bench_prior(name, torch.device("meta")), mode, device)


@contextlib.contextmanager
def cuda_autocast_without_gpu() -> Iterator[None]:
    """Let ``torch.autocast("cuda", torch.bfloat16)`` switch on where torch sees no GPU, for fake CUDA tensors.

    ``torch.autocast`` disables itself when CUDA is unavailable and asks the device whether it supports bf16; both
    answers are given here instead. Only for fake tensors: nothing may run on a device inside.

    Attention: without a GPU, ``scaled_dot_product_attention`` on CUDA tensors can only choose its math kernel, which
    saves the (N x N) attention matrices (SD 1.5 at 512x512: about 0.5 GB per attention layer per frame); a GPU runs
    a fused kernel that saves O(N). It is replaced here by the memory-efficient kernel's op, as a GPU would run it.
    """
    with mock.patch("torch.cuda.amp.common.amp_definitely_not_available", return_value=False), \
            mock.patch("torch.cuda.is_bf16_supported", return_value=True), \
            mock.patch("torch.nn.functional.scaled_dot_product_attention", _fused_attention):
        yield


_SDPA = torch.nn.functional.scaled_dot_product_attention


def _fused_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                     scale: float | None = None, **kwargs) -> Tensor:
    """SDPA as a GPU runs it (the memory-efficient kernel) for CUDA tensors without a mask or dropout; else as is."""
    if q.device.type != "cuda" or attn_mask is not None or dropout_p or is_causal or kwargs:
        return _SDPA(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale, **kwargs)
    if torch.is_autocast_enabled("cuda"):  # the fused op is not on autocast's lists: cast as SDPA would be
        dtype = torch.get_autocast_dtype("cuda")
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    return torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, None, True, scale=scale)[0]


def sr_data(frames: int, size: tuple[int, int], channels: int = 3, seed: int = 0) -> DataFidelity:
    """The SR x4 data term of random frames (content does not change the cost), real CPU tensors."""
    g = torch.Generator().manual_seed(seed)
    op = build_operator("sr4", frames, size, seed=seed, channels=channels)
    clean = torch.rand((frames, channels, *size), generator=g)  # (T, C, H, W) in [0, 1]
    with torch.no_grad():
        return DataFidelity(op(clean), op)


def fake_sr_data(frames: int, size: tuple[int, int], channels: int, mode: FakeTensorMode,
                 device: str = "cpu") -> DataFidelity:
    """:func:`sr_data` with the operator's matrices and the observation made fake tensors on ``device``."""
    data = sr_data(frames, size, channels)
    make_fake_(data.operator, mode, device)
    with mode:
        return DataFidelity(torch.empty_like(data.y, device=device), data.operator)


# ---------------------------------------------------------------------------------------------------------------
# byte counters


def storage_bytes(tensors: Iterable[Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views and repeats counted once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[id(st)] = st.nbytes()  # a live storage keeps one Python object, so id() names it
    return sum(seen.values())


class SavedTensorBytes(torch.autograd.graph.saved_tensors_hooks):
    """Bytes of the tensors autograd saves for backward inside the block, each storage once.

    Args:
        exclude: tensors whose storages are resident anyway and not counted (the network's weights: an fp32
            convolution saves its weight; a bf16-autocast one saves a bf16 copy, which *is* counted).

    ``bytes``: the total; ``count``: how many distinct storages. Saves inside ``torch.utils.checkpoint`` regions
    are that mechanism's own business and not seen.
    """

    def __init__(self, exclude: Iterable[Tensor] = ()) -> None:
        super().__init__(self._pack, lambda t: t)
        self._held: list[Any] = [t.untyped_storage() for t in exclude]  # held in the block: ids stay unique
        self._ids = {id(st) for st in self._held}
        self.bytes = 0
        self.count = 0

    def __enter__(self) -> SavedTensorBytes:
        super().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self._held.clear()  # the counts stay; the storages are the graph's business

    def _pack(self, t: Tensor) -> Tensor:
        st = t.untyped_storage()
        if id(st) not in self._ids:
            self._ids.add(id(st))
            self._held.append(st)
            self.bytes += st.nbytes()
            self.count += 1
        return t.detach()  # not t: a saved output would hold its own grad_fn, a cycle no gc breaks (pytorch#115255)


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of the storages that operators create inside the block and that are still alive, and their peak.

    Storages that existed at entry (weights, seeds, optimiser state) are not counted: ``peak`` is the rise over
    them, as ``max_memory_allocated`` minus the allocation at entry would be. A storage is freed with its last
    tensor (a weak-reference finaliser), so views, in-place results and autograd's saved tensors come out right.
    :meth:`phase` names the part of the work that follows; ``phase_peaks`` holds each part's own peak.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sizes: dict[int, int] = {}
        self._phase: str | None = None
        self.live = 0
        self.peak = 0
        self.phase_peaks: dict[str, int] = {}

    def phase(self, name: str) -> None:
        self._phase = name
        self.phase_peaks[name] = max(self.phase_peaks.get(name, 0), self.live)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, Tensor):
                self._add(t.untyped_storage())
        return out

    def _add(self, st: Any) -> None:
        key = id(st)
        if key in self._sizes:  # a view, an in-place result or a storage seen before
            return
        self._sizes[key] = st.nbytes()
        self.live += self._sizes[key]
        self.peak = max(self.peak, self.live)
        if self._phase is not None:
            self.phase_peaks[self._phase] = max(self.phase_peaks[self._phase], self.live)
        weakref.finalize(st, self._free, key)

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key)


# ---------------------------------------------------------------------------------------------------------------
# the iteration being estimated


class SolverStep:
    """One DMPlug iteration as ``vidplug.solver`` runs it: seeds -> R(z) -> SR x4 data term -> backward -> Adam.

    Args:
        prior: the frozen prior (real or fake).
        data: the data term (:func:`sr_data` / :func:`fake_sr_data`).
        z (Tensor): (T, C, H, W) initial seeds on the prior's device.
        steps: DDIM steps K.
        autocast_dtype: None (fp32) or e.g. ``torch.bfloat16`` (``SolverConfig.autocast``).
        checkpoint: recompute each DDIM step's activations in backward (``SolverConfig.checkpoint``; a latent
            prior's decoder too); ``"decoder"``: only the decoder's (``SolverConfig.checkpoint_decoder``).
        size: (H, W) of the frames (a latent prior's decoder output is cropped to it).
        micro_batch: 0, or m: when m < T, R runs without grad m frames at a time, dLoss/dx is taken, then R is
            recomputed with grad m frames at a time and back-propagated slice by slice (``solver.micro_batch``, run
            by the solver's own ``backprop_through_r``).
    """

    def __init__(self, prior: DiffusionPrior, data: DataFidelity, z: Tensor, *, steps: int,
                 autocast_dtype: torch.dtype | None, checkpoint: bool | str = False, micro_batch: int = 0,
                 size: tuple[int, int] | None = None) -> None:
        self.prior, self.data = prior, data
        self.seeds = IndependentSeeds(z)
        self.opt = torch.optim.Adam(list(self.seeds.parameters()), lr=1e-2)
        self.reverse = reverse_fn(prior, ddim_timesteps(steps, prior.num_train_timesteps),
                                  checkpoint=checkpoint is True, checkpoint_decoder=bool(checkpoint), size=size,
                                  autocast_dtype=autocast_dtype)  # the solver's R: (n, C, H, W) frames
        self.micro_batch = micro_batch
        self.iteration = 0
        self.tracker: LiveTensorBytes | None = None  # told which phase runs (see iteration_peak)

    def _phase(self, name: str) -> None:
        if self.tracker is not None:
            self.tracker.phase(name)

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        after_loss = False

        def reverse(z: Tensor, frames: slice, **kwargs) -> Tensor:
            if after_loss:  # R recomputed with grad, m frames at a time
                self._phase("micro-batch backward")
            return self.reverse(z, frames, **kwargs)

        def losses(x: Tensor) -> list[Tensor]:
            nonlocal after_loss
            self._phase("backward")
            after_loss = True
            return [self.data(x, self.iteration)]

        self._phase("forward")
        x, _ = backprop_through_r(self.seeds(), reverse, losses, self.micro_batch)  # the solver's own passes
        self._phase("optimiser step")
        self.opt.step()  # x (T, C, H, W) is alive here, as the solver keeps it for its bookkeeping
        self.iteration += 1

    def prime(self) -> None:
        """Allocate the state an iteration starts from (Adam's moments) without running R."""
        for p in self.seeds.parameters():
            p.grad = torch.zeros_like(p)
        self.opt.step()

    def state_tensors(self) -> list[Tensor]:
        """What stays allocated between iterations: weights, buffers, seeds, Adam state, the observation."""
        tensors = [*self.prior.parameters(), *self.prior.buffers(), self.data.y, *self.data.operator.buffers()]
        for p in self.seeds.parameters():
            tensors += [p, *(v for v in self.opt.state.get(p, {}).values() if torch.is_tensor(v))]
        return tensors


def iteration_peak(step: SolverStep, warmup: int = 0,
                   around: contextlib.AbstractContextManager | None = None) -> dict[str, Any]:
    """Bytes resident between iterations and the live-tensor peak of one iteration, overall (``peak_bytes``) and
    per phase (``phase_peak_bytes``: forward, backward, ...; the resident bytes included in both).

    Args:
        warmup: full iterations run first (0: :meth:`SolverStep.prime` only, enough for the tensors' sizes).
        around: a context entered around the measured iteration only (e.g. ``PeakMemory``).
    """
    for _ in range(warmup):
        step()
    if not warmup:
        step.prime()
    step.opt.zero_grad(set_to_none=True)  # the measured iteration starts by dropping the seeds' gradients
    resident = storage_bytes(step.state_tensors())
    with around or contextlib.nullcontext(), LiveTensorBytes() as live:
        step.tracker = live
        try:
            step()
        finally:
            step.tracker = None
    return {"resident_bytes": resident, "peak_rise_bytes": live.peak, "peak_bytes": resident + live.peak,
            "phase_peak_bytes": {k: resident + v for k, v in live.phase_peaks.items()}}


def saved_bytes_of_r(prior: DiffusionPrior, z: Tensor, timesteps: list[int],
                     autocast_dtype: torch.dtype | None, size: tuple[int, int] | None = None,
                     checkpoint_decoder: bool = False) -> int:
    """Bytes autograd saves for backward through ``R(z)`` over ``timesteps`` (no checkpointing, except a latent
    prior's decoder with ``checkpoint_decoder``: then its input only), weights excluded.

    Args:
        z (Tensor): (T, C, H, W) seeds; a leaf that requires grad is made from it.
    """
    z = z.detach().requires_grad_()
    with SavedTensorBytes(exclude=[*prior.parameters(), *prior.buffers()]) as saved:
        reverse_to_unit(z, prior, timesteps, autocast_dtype=autocast_dtype, size=size,
                        checkpoint_decoder=checkpoint_decoder)
    return saved.bytes


# ---------------------------------------------------------------------------------------------------------------
# from a few frame counts to any


def affine_in_frames(points: dict[int, int]) -> IterationMemory:
    """The line ``fixed + frames * per_frame`` through two ``{frames: bytes}`` points (bytes, rounded)."""
    (t0, b0), (t1, b1) = sorted(points.items())[:2]
    per_frame = (b1 - b0) / (t1 - t0)
    return IterationMemory(fixed_bytes=round(b0 - t0 * per_frame), per_frame_bytes=round(per_frame))


def peak_of(lines: Iterable[IterationMemory], frames: int) -> int:
    """The largest of ``fixed + frames * per_frame`` over ``lines`` (one line per phase of the iteration)."""
    return max(line.fixed_bytes + frames * line.per_frame_bytes for line in lines)


def largest_frames(budget_bytes: float, lines: Iterable[IterationMemory], cap: int) -> int:
    """Largest chunk ``T`` in ``[1, cap]`` with ``fixed + T * per_frame <= budget`` on every line; 0 when not even
    one frame fits. The arithmetic is the solver's own (``chunk_size_for_memory`` at safety 1, the budget as the
    free memory)."""
    lines = list(lines)
    if peak_of(lines, 1) > budget_bytes:
        return 0
    return min(chunk_size_for_memory(int(budget_bytes), line, max_chunk=cap, safety=1.0) for line in lines)
