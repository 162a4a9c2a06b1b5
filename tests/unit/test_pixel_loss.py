"""Pixel (flow-warping) and anchor consistency terms: exactness on true motion, flicker, occlusion, refresh schedule."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_translating_video
from vidplug.consistency.flow import FlowModel
from vidplug.consistency.pixel import AnchorConsistency, PixelConsistency
from vidplug.consistency.warp import flow_warp, inside_mask
from vidplug.errors import VidplugError

SHIFT = 2  # pixels per frame along x in make_translating_video


def translation_flows(t: int, h: int, w: int, shift: int = SHIFT) -> tuple[torch.Tensor, torch.Tensor]:
    """True flows of make_translating_video: frame t+1 column c shows frame t column c + shift."""
    fw = torch.zeros(t - 1, 2, h, w)
    fw[:, 0] = -shift  # pixel c of frame t sits at c - shift in frame t+1
    return fw, -fw


class TranslationFlow(FlowModel):
    """A tiny real estimator for integer horizontal translations that counts its calls."""

    name = "translation"

    def __init__(self) -> None:
        self.calls = 0

    def _flow(self, src, dst):
        self.calls += 1
        n, _, h, w = src.shape
        out = torch.zeros(n, 2, h, w)
        candidates = [0, -1, 1, -2, 2, -3, 3]  # ties (flat frames) resolve to "no motion"
        for i in range(n):
            errs = []
            for k in candidates:
                flow = torch.zeros(1, 2, h, w)
                flow[:, 0] = k
                diff = (flow_warp(dst[i : i + 1], flow) - src[i : i + 1]).abs()[..., 4:-4]  # interior
                errs.append(diff.mean())
            out[i, 0] = candidates[int(torch.stack(errs).argmin())]
        return out


def test_true_translation_gives_zero_loss_and_masks_pixels_leaving_the_frame():
    x = make_translating_video(3, 32, 32, shift=SHIFT)
    term = PixelConsistency(weight=1.0)
    term.set_flows(*translation_flows(3, 32, 32))
    assert term(x, 0).item() < 1e-6
    # the first SHIFT columns of frame t move out of view: no correspondence, masked; the rest is valid
    assert term.mask[..., :SHIFT].sum() == 0
    assert term.mask[..., SHIFT:].min() == 1
    wrong = PixelConsistency()
    wrong.set_flows(torch.zeros(2, 2, 32, 32), torch.zeros(2, 2, 32, 32))
    assert wrong(x, 0).item() > 0.01


def test_loss_grows_with_flicker():
    x = make_translating_video(4, 32, 32, shift=SHIFT)
    fw, bw = translation_flows(4, 32, 32)
    offsets = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(4, 1, 1, 1)
    losses = []
    for amp in (0.0, 0.05, 0.1):
        term = PixelConsistency(norm="l1")
        term.set_flows(fw, bw)
        losses.append(term(x + amp * offsets, 0).item())
    assert losses[0] < 1e-6
    assert losses[1] == pytest.approx(0.05, rel=1e-4)  # valid pixels differ by exactly the flicker amplitude
    assert losses[2] == pytest.approx(0.10, rel=1e-4)


def test_l1_and_l2_on_a_constant_offset():
    frame = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    x = torch.cat([frame, frame + 0.2])
    zeros = torch.zeros(1, 2, 16, 16)
    l1, l2 = PixelConsistency(norm="l1"), PixelConsistency(norm="l2")
    l1.set_flows(zeros, zeros)
    l2.set_flows(zeros, zeros)
    assert l1(x, 0).item() == pytest.approx(0.2, rel=1e-5)
    assert l2(x, 0).item() == pytest.approx(0.04, rel=1e-5)


def test_occluded_pixels_do_not_contribute():
    x = make_translating_video(2, 32, 32, shift=SHIFT)
    fw, bw = translation_flows(2, 32, 32)
    bw[:, 0, 10:18, 10:18] = 6.0  # backward flow disagrees here: the forward-backward check fails around it
    term = PixelConsistency()
    term.set_flows(fw, bw)
    occluded = term.mask[0, 0] == 0  # (H, W) pixels of frame 0
    assert occluded[8:20, 8:20].any() and occluded.sum() > SHIFT * 32  # more than the out-of-view columns
    base = term(x, 0)
    garbage = x.clone()
    garbage[0][:, occluded] = torch.rand(3, int(occluded.sum()), generator=torch.Generator().manual_seed(2))
    assert torch.allclose(term(garbage, 0), base, atol=1e-7)
    visible = x.clone()
    visible[0, :, 25, 25] += 0.5  # a valid pixel
    assert term(visible, 0).item() > base.item() + 1e-5


def test_gradient_reaches_frames_not_flows():
    x = make_translating_video(3, 16, 16, shift=1).requires_grad_(True)
    fw, bw = translation_flows(3, 16, 16, shift=1)
    term = PixelConsistency(norm="l2")
    term.set_flows(fw, bw)
    loss = term(x * torch.tensor([1.0, 1.1, 1.0]).view(3, 1, 1, 1), 0)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not term.fw.requires_grad and not term.mask.requires_grad


def test_refresh_schedule_calls_flow_model_at_expected_iterations():
    x = make_translating_video(3, 16, 16, shift=SHIFT)
    flow = TranslationFlow()
    term = PixelConsistency(flow, refresh_every=3)
    term.set_flows_from(x)
    assert flow.calls == 1 and term.num_estimates == 1
    torch.testing.assert_close(term.fw, translation_flows(3, 16, 16)[0])  # estimator finds the true motion
    called_at = []
    current = x.clone().requires_grad_(True)
    for it in range(11):
        before = flow.calls
        term(current, it)
        term(current, it)  # a second evaluation within the same iteration must not re-estimate
        if flow.calls > before:
            called_at.append(it)
    assert called_at == [3, 6, 9]


def test_refresh_every_zero_never_refreshes_and_single_frame_is_free():
    x = make_translating_video(3, 16, 16, shift=SHIFT)
    flow = TranslationFlow()
    term = PixelConsistency(flow, refresh_every=0)
    term.set_flows_from(x)
    for it in range(6):
        term(x, it)
    assert flow.calls == 1
    single = PixelConsistency(flow, refresh_every=1)
    assert single(x[:1], 5).item() == 0.0 and flow.calls == 1


def test_refresh_uses_current_frames():
    init = torch.zeros(3, 3, 16, 16) + 0.5  # flat initial estimate: no motion found
    x = make_translating_video(3, 16, 16, shift=SHIFT)
    term = PixelConsistency(TranslationFlow(), refresh_every=2)
    term.set_flows_from(init)
    assert term.fw.abs().sum() == 0
    term(x, 2)
    torch.testing.assert_close(term.fw, translation_flows(3, 16, 16)[0])


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(VidplugError):
        PixelConsistency(norm="l3")
    with pytest.raises(VidplugError):
        PixelConsistency(refresh_every=-1)
    term = PixelConsistency()
    with pytest.raises(VidplugError, match="set_flows"):
        term(torch.rand(2, 3, 8, 8), 0)  # no flows and no flow model
    term.set_flows(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8))
    with pytest.raises(VidplugError, match="do not fit"):
        term(torch.rand(3, 3, 8, 8), 0)
    with pytest.raises(VidplugError):
        term.set_flows(torch.zeros(1, 2, 8, 8), torch.zeros(2, 2, 8, 8))


def test_inside_mask_marks_targets_outside_the_frame():
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 1] = 1.0  # everything moves one row down: the last row leaves the frame
    mask = inside_mask(flow)[0, 0]
    assert mask[:-1].min() == 1 and mask[-1].max() == 0


def test_anchor_zero_on_fixed_frames_and_exact_otherwise():
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    fixed = x[:2].clone()
    anchor = AnchorConsistency(fixed, [0, 1], weight=2.0)
    assert anchor.name == "anchor" and anchor.weight == 2.0
    assert anchor(x, 0).item() == 0.0
    moved = x.clone().requires_grad_(True)
    loss = anchor(moved + 0.1, 0)
    assert loss.item() == pytest.approx(0.1, rel=1e-5)
    loss.backward()
    assert moved.grad[:2].abs().sum() > 0 and moved.grad[2:].abs().sum() == 0  # only anchored frames pulled
    assert AnchorConsistency(fixed, [0, 1], norm="l2")(x + 0.1, 0).item() == pytest.approx(0.01, rel=1e-4)
    with pytest.raises(VidplugError):
        AnchorConsistency(fixed, [0])


def test_a_pair_with_few_correspondences_leaves_the_pixel_term():
    from vidplug.consistency.warp import drop_sparse_pairs

    x = make_translating_video(4, 16, 16, shift=SHIFT)
    fw, bw = translation_flows(4, 16, 16)
    bw[1, 0] += 5.0  # the middle pair fails the forward-backward check but for a 4x4 block (1/16 of the frame)
    bw[1, :, :4, :4] = -fw[1, :, :4, :4]
    term = PixelConsistency(min_coverage=0.1)
    term.set_flows(fw, bw)
    default = PixelConsistency()
    default.set_flows(fw, bw)
    assert float(default.mask[1].mean()) == pytest.approx(1 / 16)  # the chance matches, coupled by default
    assert float(term.mask[1].sum()) == 0.0 and torch.equal(term.mask[[0, 2]], default.mask[[0, 2]])
    flicker = x.clone()
    flicker[1, :, :4, :4] += 0.3  # changes only pixels that the middle pair's block couples (and pair 0's)
    assert term(flicker) - term(x) < default(flicker) - default(x)
    mask = torch.ones(3, 1, 4, 4)
    mask[1, :, 1:] = 0.0  # a quarter of the frame
    mask[2, :, 2:] = 0.0  # a half
    assert torch.equal(drop_sparse_pairs(mask, 0.0), mask)
    assert drop_sparse_pairs(mask, 0.3).mean(dim=(1, 2, 3)).tolist() == [1.0, 0.0, 0.5]
    assert drop_sparse_pairs(mask, 0.5).mean(dim=(1, 2, 3)).tolist() == [1.0, 0.0, 0.5]  # the bound itself is kept
