"""Degradation operators: one contract run over every operator, then each family's own behaviour."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_translating_video
from vidplug.errors import VidplugError
from vidplug.physics import (
    TASKS,
    add_gaussian_noise,
    build_operator,
    degrade,
    fill_missing,
    task_options,
    temporal_average_matrix,
)

T = 9
# (task, frame size, options, expected output (H, W)): every operator in the contract. A new operator is listed here.
CASES = [
    ("sr4", (32, 32), {}, (8, 8)),
    ("sr", (24, 16), {"factor": 2}, (12, 8)),
    ("inpaint", (16, 16), {}, (16, 16)),
    ("inpaint", (16, 16), {"ratio": 0.7}, (16, 16)),
    ("temporal", (16, 16), {}, (16, 16)),
    ("temporal", (16, 16), {"k": 3, "dagger_steps": 3}, (16, 16)),
    ("deblur", (32, 32), {"kernel_size": 9}, (32, 32)),  # direct convolution
    ("deblur", (32, 32), {}, (32, 32)),  # default 61x61 kernel: FFT convolution
    ("deblur", (32, 32), {"kernel_size": 9, "padding": "replicate"}, (32, 32)),
    ("temporal+deblur", (32, 32), {"kernel_size": 9}, (32, 32)),
]
IDS = [f"{task}-{'-'.join(f'{k}={v}' for k, v in opts.items()) or 'default'}" for task, _, opts, _ in CASES]
RANDOM_TASKS = {
    "inpaint",
    "deblur",
    "temporal+deblur",
}  # tasks whose operator itself is random (masks, kernels)


def video(size, t=T, seed=0, dtype=torch.float32):
    return torch.rand(t, 3, *size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def per_frame_buffers(op) -> dict[str, torch.Tensor]:
    """The random per-frame buffers (masks, kernels) of an operator, by name."""
    return {name: b for name, b in op.named_buffers() if name.split(".")[-1] in {"mask", "kernels"}}


def test_every_task_is_in_the_contract():
    assert {task for task, *_ in CASES} == set(TASKS)


@pytest.mark.parametrize(("task", "size", "opts", "out_hw"), CASES, ids=IDS)
class TestOperatorContract:
    def test_shapes(self, task, size, opts, out_hw):
        op = build_operator(task, T, size, **opts)
        x = video(size)
        expected = (T, 3, *out_hw)
        assert op.output_shape(x.shape) == expected
        assert op.A(x).shape == expected
        assert op(x).shape == expected
        assert op.task == task and op.linear is True and op.noise_sigma == 0.01
        with pytest.raises(VidplugError, match="built for x of shape"):
            op.A(video(size, t=T - 1))

    def test_adjointness(self, task, size, opts, out_hw):
        op = build_operator(task, T, size, **opts).to(torch.float64)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(T, 3, *size, generator=g, dtype=torch.float64)
        y = torch.randn(T, 3, *out_hw, generator=g, dtype=torch.float64)
        lhs = (op.A(x) * y).sum()
        rhs = (x * op.A_adjoint(y)).sum()
        torch.testing.assert_close(lhs, rhs, rtol=1e-6, atol=1e-9)

    def test_gradient_of_A_is_the_adjoint(self, task, size, opts, out_hw):
        op = build_operator(task, T, size, **opts)
        x = video(size).requires_grad_(True)
        v = torch.randn(T, 3, *out_hw, generator=torch.Generator().manual_seed(2))
        (op.A(x) * v).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        torch.testing.assert_close(x.grad, op.A_adjoint(v), rtol=1e-4, atol=1e-5)

    def test_deterministic_per_seed(self, task, size, opts, out_hw):
        x = video(size)
        a, b = build_operator(task, T, size, seed=3, **opts), build_operator(task, T, size, seed=3, **opts)
        other = build_operator(task, T, size, seed=4, **opts)
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
        assert not torch.equal(a(x), other(x))  # the noise differs at least
        for name, buf in per_frame_buffers(a).items():
            assert torch.equal(buf, per_frame_buffers(b)[name])
            assert not torch.equal(buf, per_frame_buffers(other)[name])
        assert (task in RANDOM_TASKS) == bool(per_frame_buffers(a))

    def test_chunk_reproduces_slice_of_whole_video(self, task, size, opts, out_hw):
        whole = build_operator(task, T, size, seed=5, **opts)
        chunk = build_operator(task, 4, size, seed=5, frame_offset=3, **opts)
        for name, buf in per_frame_buffers(whole).items():
            assert torch.equal(per_frame_buffers(chunk)[name], buf[3:7])
        x = video(size)
        noise_whole = whole(x) - whole.A(x)
        noise_chunk = chunk(x[3:7]) - chunk.A(x[3:7])
        torch.testing.assert_close(noise_chunk, noise_whole[3:7], rtol=1e-5, atol=1e-6)

    def test_to_moves_buffers(self, task, size, opts, out_hw):
        op = build_operator(task, T, size, **opts).to(torch.float64)
        assert all(b.dtype == torch.float64 for b in op.buffers())
        assert op.A(video(size, dtype=torch.float64)).dtype == torch.float64
        if torch.cuda.is_available():
            op = op.to("cuda")
            assert all(b.device.type == "cuda" for b in op.buffers())
            assert op(video(size, dtype=torch.float64).cuda()).device.type == "cuda"

    def test_dagger_gives_a_video_in_range(self, task, size, opts, out_hw):
        op = build_operator(task, T, size, **opts)
        x = make_translating_video(T, *size)  # smooth frames: what an estimate from y can recover
        est = op.A_dagger(op(x))
        assert est.shape == x.shape
        assert est.min() >= 0 and est.max() <= 1
        # a useful estimate: closer to x than a flat grey video
        assert (est - x).abs().mean() < (0.5 - x).abs().mean()

    def test_noise_std_is_half_sigma(self, task, size, opts, out_hw):
        op = build_operator(task, T, size, noise_sigma=0.2, **opts)
        x = video(size)
        noise = op(x) - op.A(x)
        if task == "inpaint":
            noise = noise[op.mask.expand_as(noise) > 0]  # missing pixels carry no noise
        # thousands of samples: the std estimate is within a few percent of 0.1
        assert abs(noise.std().item() - 0.1) < 0.01
        assert abs(noise.mean().item()) < 0.01
        silent = build_operator(task, T, size, noise_sigma=0.0, **opts)
        assert torch.equal(silent(x), silent.A(x))


NOISES = ["impulse:high", "shot:low", "speckle:high", "gaussian:0.3"]


@pytest.mark.parametrize("noise", NOISES)
@pytest.mark.parametrize(("task", "size", "opts", "out_hw"), CASES, ids=IDS)
class TestNoiseContract:
    """Every noise model on every operator: seeded per absolute frame, chunk == slice, dtype/device moves."""

    def test_seeded_and_chunk_equals_slice(self, noise, task, size, opts, out_hw):
        x = video(size)
        whole = build_operator(task, T, size, seed=5, noise=noise, **opts)
        again = build_operator(task, T, size, seed=5, noise=noise, **opts)
        other = build_operator(task, T, size, seed=6, noise=noise, **opts)
        chunk = build_operator(task, 7, size, seed=5, frame_offset=1, noise=noise, **opts)
        assert whole.noise_model.spec() == chunk.noise_model.spec()
        y = whole(x)
        assert torch.equal(y, again(x)) and not torch.equal(y, other(x))
        assert (y - whole.A(x)).abs().max() > 0
        # the noise depends on A(x) (impulse, shot, speckle), which a chunk reproduces only `context` frames from
        # its ends: compare the observations there
        c = whole.context
        torch.testing.assert_close(chunk(x[1:8])[c : 7 - c], y[1 + c : 8 - c], rtol=1e-5, atol=1e-6)

    def test_dtype_and_device_moves(self, noise, task, size, opts, out_hw):
        op32 = build_operator(task, T, size, seed=2, noise=noise, **opts)
        op64 = build_operator(task, T, size, seed=2, noise=noise, **opts).to(torch.float64)
        x = video(size)
        y64 = op64(x.double())
        assert y64.dtype == torch.float64
        # drawn in float32 on the CPU whatever the dtype: the same noise up to float32 rounding
        torch.testing.assert_close(y64.float(), op32(x), rtol=1e-5, atol=1e-5)
        if torch.cuda.is_available():
            torch.testing.assert_close(op32.to("cuda")(x.cuda()).cpu(), op32.cpu()(x), rtol=1e-5, atol=1e-5)


def test_explicit_generator_gives_reproducible_noise():
    y = torch.zeros(2, 3, 8, 8)
    a = add_gaussian_noise(y, 0.1, generator=torch.Generator().manual_seed(0))
    b = add_gaussian_noise(y, 0.1, generator=torch.Generator().manual_seed(0))
    c = add_gaussian_noise(y, 0.1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(VidplugError, match=">= 0"):
        add_gaussian_noise(y, -0.1)


def test_sr_matches_deepinv_matlab_imresize():
    from deepinv.physics import DownsamplingMatlab

    x = video((32, 48), t=2)
    for factor in (2, 4):
        op = build_operator("sr", 2, (32, 48), factor=factor)
        torch.testing.assert_close(op.A(x), DownsamplingMatlab(factor=factor).A(x), rtol=1e-5, atol=1e-6)


def test_sr_refuses_sizes_not_divisible_by_factor():
    with pytest.raises(VidplugError, match="not divisible by the super-resolution factor 4"):
        build_operator("sr4", 2, (30, 32))


def test_inpaint_masks_ratio_and_channels():
    op = build_operator("inpaint", T, (16, 16), noise_sigma=0.0)
    assert op.mask.shape == (T, 1, 16, 16)
    assert torch.all(op.mask.mean(dim=(1, 2, 3)) == 0.5)  # exactly half the pixels of every frame
    assert not torch.equal(op.mask[0], op.mask[1])  # a fresh mask per frame
    y = op(video((16, 16)) + 0.1)  # strictly positive frames: zeros in y are exactly the missing pixels
    assert torch.equal((y == 0)[:, :1].expand_as(y), y == 0)  # same mask on all channels
    assert build_operator("inpaint", 1, (20, 20), ratio=0.7).mask.mean().item() == pytest.approx(0.3)


def test_inpaint_accepts_a_given_mask_and_checks_it():
    mask = torch.ones(2, 1, 8, 8)
    mask[:, :, :4] = 0
    op = build_operator("inpaint", 2, (8, 8), mask=mask.bool())
    assert torch.equal(op.mask, mask) and op.ratio == pytest.approx(0.5)
    with pytest.raises(VidplugError, match=r"needs \(2, 1, 8, 8\)"):
        build_operator("inpaint", 2, (8, 8), mask=torch.ones(2, 3, 8, 8))
    with pytest.raises(VidplugError, match="only 0"):
        build_operator("inpaint", 2, (8, 8), mask=torch.full((2, 1, 8, 8), 0.5))


def test_fill_missing_keeps_observed_fills_holes_and_empty_frames():
    y = torch.full((2, 3, 8, 8), 0.3)
    mask = torch.ones(2, 1, 8, 8)
    mask[0, :, 2:6, 2:6] = 0  # a 4x4 hole: needs two passes
    mask[1] = 0  # nothing observed
    out = fill_missing(y * mask, mask)
    torch.testing.assert_close(out[0], y[0])  # constant image: the hole is filled with the constant
    assert torch.all(out[1] == 0.5)


def test_temporal_averages_seven_frames_and_replicates_ends():
    x = video((4, 4), t=12)
    y = build_operator("temporal", 12, (4, 4)).A(x)
    for i in range(3, 9):  # interior: the mean of exactly frames i-3 .. i+3
        torch.testing.assert_close(y[i], x[i - 3 : i + 4].mean(0))
    torch.testing.assert_close(y[0], (4 * x[0] + x[1] + x[2] + x[3]) / 7)
    torch.testing.assert_close(y[11], (4 * x[11] + x[10] + x[9] + x[8]) / 7)
    m = temporal_average_matrix(12, 7)
    torch.testing.assert_close(m.sum(1), torch.ones(12, dtype=torch.float64))
    assert not torch.equal(m, m.T)  # replicated ends: not symmetric, the adjoint must transpose
    with pytest.raises(VidplugError, match="odd"):
        build_operator("temporal", 12, (4, 4), k=4)
    assert build_operator("temporal", 12, (4, 4), k=5).context == 2
    assert build_operator("temporal+deblur", 12, (16, 16), kernel_size=5).context == 3
    assert build_operator("sr4", 12, (16, 16)).context == 0


def test_temporal_dagger_steps_fit_the_observation_better_than_y():
    x = video((8, 8), t=10)
    plain = build_operator("temporal", 10, (8, 8), noise_sigma=0.0)
    cg = build_operator("temporal", 10, (8, 8), noise_sigma=0.0, dagger_steps=10)
    y = plain.A(x)
    assert (cg.A(cg.A_dagger(y)) - y).norm() < 0.75 * (plain.A(plain.A_dagger(y)) - y).norm()


def test_deblur_kernels_and_size_check():
    op = build_operator("deblur", 3, (32, 32))
    assert op.kernels.shape == (3, 1, 61, 61)
    torch.testing.assert_close(op.kernels.sum(dim=(1, 2, 3)), torch.ones(3))
    assert not torch.equal(op.kernels[0], op.kernels[1])
    with pytest.raises(VidplugError, match="too small for the 61x61 blur kernel"):
        build_operator("deblur", 3, (16, 16))


@pytest.mark.parametrize("padding", ["reflect", "replicate"])
@pytest.mark.parametrize("support", ["motion", "small", "off-centre", "even"])
def test_deblur_crops_its_kernels_without_changing_the_operator(padding, support):
    """A and A_adjoint convolve with the kernels cropped to their nonzero taps (FFT on fast sides, or directly when
    the crop is small): the same operator as deepinv's convolution with the whole kernels."""
    import deepinv.physics.functional as dF

    from vidplug.physics.blur import MotionBlur, motion_blur_kernels

    size, t = (40, 36), 3
    if support == "motion":  # random motion PSFs, 61x61 (the FFT path)
        kernels = motion_blur_kernels(range(t), 61)
    else:
        kernels = torch.zeros(t, 1, 8 if support == "even" else 61, 8 if support == "even" else 61)
        centre = kernels.shape[-1] // 2
        kernels[..., centre - 2:centre + 3, centre - 1:centre + 2] = torch.rand(t, 1, 5, 3)  # direct path
        if support == "off-centre":  # one far tap in one frame's kernel: the crop must reach it (FFT path)
            kernels[1, 0, centre + 20, centre - 3] = 0.5
        kernels = kernels / kernels.sum(dim=(2, 3), keepdim=True)
    op = MotionBlur(t, size, kernels=kernels, padding=padding)
    whole = dF.conv2d_fft if kernels.shape[-1] >= 16 else dF.conv2d
    whole_t = dF.conv_transpose2d_fft if kernels.shape[-1] >= 16 else dF.conv_transpose2d
    x, y = (torch.rand(t, 3, *size, dtype=torch.float64) for _ in range(2))  # float64: only rounding may differ
    kernels = kernels.double()
    torch.testing.assert_close(op.A(x), whole(x, kernels, padding=padding), atol=1e-12, rtol=0)
    torch.testing.assert_close(op.A_adjoint(y), whole_t(y, kernels, padding=padding), atol=1e-12, rtol=0)


def test_deblur_fft_crop_pads_to_fast_sides():
    from vidplug.physics.blur import _fft_radius

    assert _fft_radius(15, 128, 30) == 16  # 158 = 2 x 79 -> 160 = 2^5 x 5
    assert _fft_radius(21, 128, 30) == 26  # 170 .. 178 have a prime factor above 7; 180 = 2^2 x 3^2 x 5
    assert _fft_radius(16, 128, 30) == 16
    assert _fft_radius(5, 127, 6) == 5  # 137 and 139 are prime: the support itself


def test_temporal_deblur_is_blur_then_temporal_average():
    x = video((32, 32))
    both = build_operator("temporal+deblur", T, (32, 32), kernel_size=9, seed=1)
    blur = build_operator("deblur", T, (32, 32), kernel_size=9, seed=1)
    temporal = build_operator("temporal", T, (32, 32))
    torch.testing.assert_close(both.A(x), temporal.A(blur.A(x)))


def test_degrade_builds_on_the_input_and_chunks_agree():
    x = video((16, 16), dtype=torch.float64)
    y, op = degrade(x, "inpaint", seed=7)
    assert y.dtype == torch.float64 and op.mask.dtype == torch.float64
    y_chunk, _ = degrade(x[3:7], "inpaint", seed=7, frame_offset=3)
    torch.testing.assert_close(y_chunk, y[3:7])
    with pytest.raises(VidplugError, match="T, C, H, W"):
        degrade(x[0], "inpaint")


def test_unknown_task_and_option_errors():
    with pytest.raises(VidplugError, match="unknown task 'sr3'; known tasks: sr4, sr, inpaint"):
        build_operator("sr3", 2, (16, 16))
    with pytest.raises(VidplugError, match="has no option kernel_size; its options: ratio, mask"):
        build_operator("inpaint", 2, (16, 16), kernel_size=3)
    assert task_options("sr") == {"factor": 4}


@pytest.mark.parametrize(("task", "size", "opts", "out_hw"), CASES, ids=IDS)
def test_task_geometry_is_what_the_built_operator_answers(task, size, opts, out_hw):
    from vidplug.physics import task_geometry

    op = build_operator(task, T, size, **opts)
    geometry = task_geometry(task, **opts)
    assert (geometry.context, geometry.scale) == (op.context, op.scale)
    assert size[0] // geometry.scale == out_hw[0]


def test_noise_is_a_separate_model_applied_once():
    from vidplug.physics import GaussianNoise

    x = video((32, 32))
    quiet = build_operator("temporal+deblur", T, (32, 32), kernel_size=9, noise_sigma=0.0, seed=3)
    noisy = build_operator("temporal+deblur", T, (32, 32), kernel_size=9, noise_sigma=0.2, seed=3)
    assert all(part.noise_model is None for part in noisy.parts)  # the parts are noiseless: no zero-and-re-add
    expected = GaussianNoise(0.2, seed=3)(quiet.A(x), range(T))
    torch.testing.assert_close(noisy(x), expected)
    calls = []
    custom = build_operator("sr4", T, (32, 32), noise_model=lambda y, idx, g=None: calls.append(list(idx)) or y)
    torch.testing.assert_close(custom(x), custom.A(x))
    assert calls == [list(range(T))] and custom.noise_sigma == 0.0
