"""The memory/FLOP estimate without a GPU (benchmarks.memory_estimate, benchmarks.bench_memory) on tiny CPU models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.bench_memory import predicted_peak, with_cuda_policy
from benchmarks.common import count_flops, load_bench_prior
from benchmarks.memory_estimate import (
    LiveTensorBytes,
    SavedTensorBytes,
    SolverStep,
    affine_in_frames,
    cuda_autocast_without_gpu,
    fake_mode,
    fake_sr_data,
    iteration_peak,
    largest_frames,
    make_fake_,
    peak_of,
    sr_data,
)
from tests.conftest import make_tiny_prior
from vidplug.prior.base import DiffusionPrior, linear_alphas_cumprod
from vidplug.solver.memory import IterationMemory

SIZE = (16, 16)


def _frozen_conv() -> nn.Conv2d:
    return nn.Conv2d(3, 4, 3, padding=1).requires_grad_(False)


def test_a_convolution_saves_its_input_and_the_excluded_weight_is_not_counted():
    conv = _frozen_conv()
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with SavedTensorBytes(exclude=conv.parameters()) as saved:
        conv(x)
    assert saved.bytes == x.numel() * 4 and saved.count == 1
    with SavedTensorBytes() as saved:
        conv(x)
    assert saved.bytes == (x.numel() + conv.weight.numel()) * 4  # the weight is saved too (the bias is not)


def test_a_tensor_saved_twice_is_counted_once():
    x = torch.randn(5, 7, requires_grad=True)
    with SavedTensorBytes() as saved:
        x * x  # saves x as both operands
    assert saved.bytes == x.numel() * 4 and saved.count == 1


@pytest.mark.parametrize("fake", [False, True])
def test_flops_of_a_convolution(fake):
    conv, mode = _frozen_conv(), fake_mode()
    if fake:
        make_fake_(conv, mode)
    with mode if fake else torch.no_grad():
        x = torch.randn(1, 3, 16, 16)
        flops = count_flops(lambda: conv(x))
    assert flops == 2 * (4 * 16 * 16) * (3 * 3 * 3)  # 2 per multiply-add: out pixels x (in channels x 3 x 3)


@pytest.mark.parametrize("fake", [False, True])
def test_live_bytes_follow_allocations_and_frees(fake):
    mode = fake_mode()
    with mode if fake else torch.no_grad():
        x = torch.ones(1000)  # before the block: not counted
        with LiveTensorBytes() as live:
            a = x * 2
            b = a + 1
            del a
            b.view(10, 100)  # a view: no new storage
        assert (live.live, live.peak) == (4000, 8000)


class _SmallEps(nn.Module):
    """conv -> GroupNorm -> SiLU -> conv: the ops of a UNet block, few enough that a fake iteration takes ms.

    The GroupNorm runs in fp32 as ADM's GroupNorm32 does. (With a bf16 input and fp32 weights, torch's shape-only
    group-norm backward gives fp32 gradients where the CPU kernel gives bf16: diffusers' GroupNorm under CPU
    autocast comes out about 0.1 % high.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.norm, self.out = nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        return self.out(nn.functional.silu(self.norm(h.float()).to(h.dtype)))


def _tiny(fake: bool, unet: bool = False):
    """The conftest's diffusers UNet (``unet``) or a one-block network, as a real or a fake prior."""
    torch.manual_seed(0)
    prior = make_tiny_prior() if unet else DiffusionPrior(_SmallEps(), linear_alphas_cumprod(1000), "small").freeze()
    mode = fake_mode()
    return (make_fake_(prior, mode), mode) if fake else (prior, mode)


def _peak(prior, mode, frames: int, fake: bool, warmup: int = 1, **kw) -> dict[str, int]:
    kw = {"steps": 1, "autocast_dtype": None, **kw}
    if not fake:
        z = torch.randn((frames, 3, *SIZE), generator=torch.Generator().manual_seed(0))
        return iteration_peak(SolverStep(prior, sr_data(frames, SIZE), z, **kw), warmup=warmup)
    data = fake_sr_data(frames, SIZE, 3, mode)
    with mode:
        return iteration_peak(SolverStep(prior, data, torch.randn((frames, 3, *SIZE)), **kw), warmup=warmup)


def test_the_fake_estimate_of_a_diffusers_unet_equals_the_same_count_on_real_tensors():
    assert _peak(*_tiny(True, unet=True), 2, True) == _peak(*_tiny(False, unet=True), 2, False)


@pytest.mark.parametrize("kw", [{"checkpoint": True}, {"micro_batch": 1}, {"micro_batch": 1, "checkpoint": True},
                                {"autocast_dtype": torch.bfloat16}, {"autocast_dtype": torch.bfloat16, "checkpoint": True}])
def test_the_fake_estimate_equals_the_same_count_on_real_tensors(kw):
    kw = {"steps": 3, **kw}
    assert _peak(*_tiny(True), 3, True, **kw) == _peak(*_tiny(False), 3, False, **kw)


@pytest.mark.parametrize("kw", [{}, {"checkpoint": True}, {"micro_batch": 1}, {"micro_batch": 2, "checkpoint": True}])
def test_phase_lines_through_two_chunk_sizes_predict_a_third(kw):
    prior, mode = _tiny(True)
    kw = {"steps": 3, **kw}
    m = kw.get("micro_batch", 0)
    points = (2 * m, 3 * m) if m else (1, 2)
    sims = {t: _peak(prior, mode, t, True, warmup=0, **kw) for t in (*points, 2 * points[1])}
    lines = [affine_in_frames({t: sims[t]["phase_peak_bytes"][phase] for t in points})
             for phase in sims[points[0]]["phase_peak_bytes"]]
    assert peak_of(lines, 2 * points[1]) == sims[2 * points[1]]["peak_bytes"]


def test_micro_batching_makes_the_peak_nearly_flat_and_checkpointing_lowers_its_slope():
    prior, mode = _tiny(True)
    plain = {t: _peak(prior, mode, t, True, warmup=0, steps=3)["peak_bytes"] for t in (1, 2)}
    per_frame = plain[2] - plain[1]
    assert _peak(prior, mode, 1, True, warmup=0, steps=3, micro_batch=1)["peak_bytes"] == plain[1]  # m >= T
    micro = {t: _peak(prior, mode, t, True, warmup=0, steps=3, micro_batch=1)["peak_bytes"] for t in (2, 3)}
    assert 0 <= micro[3] - micro[2] < per_frame / 2  # only frame-sized tensors (seeds, x, grads) grow with T
    ckpt = {t: _peak(prior, mode, t, True, warmup=0, steps=3, checkpoint=True)["peak_bytes"] for t in (1, 2)}
    assert ckpt[2] - ckpt[1] < per_frame  # one DDIM step's activations at a time


def test_the_largest_chunk_that_fits_every_phase():
    line = affine_in_frames({2: 16, 3: 19})
    assert line == IterationMemory(fixed_bytes=10, per_frame_bytes=3)
    assert largest_frames(22, [line], cap=100) == 4  # 10 + 4 * 3 = 22 <= 22
    assert largest_frames(12.9, [line], cap=100) == 0  # not even one frame
    assert largest_frames(10_000, [line], cap=64) == 64
    steeper = IterationMemory(0, 5)  # a phase that is smaller at 1 frame but grows faster
    assert peak_of([line, steeper], 1) == 13 and peak_of([line, steeper], 10) == 50
    assert largest_frames(22, [line, steeper], cap=100) == 4  # 5 * 5 = 25 > 22


def test_micro_batched_peak_uses_the_whole_chunk_lines_up_to_m_frames():
    whole, micro = {"backward": IterationMemory(100, 50)}, {"backward": IterationMemory(400, 1)}
    assert [predicted_peak(t, micro, whole, 4) for t in (1, 4, 5, 8)] == [150, 300, 405, 408]
    assert [predicted_peak(t, whole, whole, 0) for t in (1, 8)] == [150, 500]


def test_the_cuda_policy_moves_the_lines_by_the_saved_bytes_difference():
    saved = {"cpu_R": {"per_frame_bytes": 10, "fixed_bytes": 5}, "cuda_R": {"per_frame_bytes": 12, "fixed_bytes": 6}}
    lines = {"backward": IterationMemory(100, 50)}
    assert with_cuda_policy(lines, saved, "R", 0) == {"backward": IterationMemory(101, 52)}
    assert with_cuda_policy(lines, saved, "R", 4) == {"backward": IterationMemory(100 + 1 + 4 * 2, 50)}  # m frames
    assert with_cuda_policy(lines, {"cpu_R": saved["cpu_R"]}, "R", 0) == lines  # fp32: nothing to move


def test_cuda_autocast_runs_on_fake_cuda_tensors_without_a_gpu():
    with fake_mode(), cuda_autocast_without_gpu():
        a = torch.empty(4, 4, device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            assert (a @ a).dtype == torch.bfloat16


def test_bench_priors_build_on_meta_without_memory():
    prior = load_bench_prior("tiny-random", torch.device("meta"))
    assert {p.device.type for p in prior.parameters()} == {"meta"}
    assert prior.alpha_bar(999) > 0  # the schedule stays real


def _latent_peak(fake: bool, checkpoint, frames: int = 2) -> int:
    """Peak bytes of one iteration of the tiny random latent prior (SR x4 at 32x32: latents 4x4, decoder x8)."""
    from benchmarks.common import load_bench_prior, seed_shape

    size = (32, 32)
    prior, mode = load_bench_prior("latent-tiny-random", torch.device("cpu")), fake_mode()
    kw = {"steps": 2, "autocast_dtype": None, "checkpoint": checkpoint, "size": size}
    if not fake:
        z = torch.randn(seed_shape(prior, frames, size), generator=torch.Generator().manual_seed(0))
        return iteration_peak(SolverStep(prior, sr_data(frames, size), z, **kw), warmup=1)["peak_bytes"]
    make_fake_(prior, mode)
    data = fake_sr_data(frames, size, 3, mode)
    with mode:
        z = torch.randn(seed_shape(prior, frames, size))
        return iteration_peak(SolverStep(prior, data, z, **kw), warmup=1)["peak_bytes"]


@pytest.mark.parametrize("checkpoint", [False, "decoder", True])
def test_the_fake_estimate_of_a_latent_prior_equals_the_same_count_on_real_tensors(checkpoint):
    assert _latent_peak(True, checkpoint) == _latent_peak(False, checkpoint)


def test_decoder_checkpointing_keeps_only_the_latents_for_backward():
    """R's saved bytes drop by the decoder's activations. (The iteration's peak does not, measured: +512 bytes here;
    the decoder is R's last segment, recomputed first in the backward pass, so decoder checkpointing lowers only
    what is held while the loss terms run.)"""
    from benchmarks.common import load_bench_prior
    from benchmarks.memory_estimate import saved_bytes_of_r

    prior = load_bench_prior("latent-tiny-random", torch.device("cpu"))
    z = torch.randn(2, 4, 4, 4)
    ts = [500, 0]
    plain = saved_bytes_of_r(prior, z, ts, None, (32, 32))
    decoder = saved_bytes_of_r(prior, z, ts, None, (32, 32), checkpoint_decoder=True)
    assert decoder < plain / 2  # at 8 channels the decoder's activations (32x32 pixels) outweigh the UNet's (4x4)
