"""Multi-frame fusion (vidplug/consistency/fusion.py): the flow coupling's normal operator and what fusing the
neighbours' observations buys on a video whose motion is known."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import make_translating_video, tiny_models, tiny_run_config
from vidplug.config import apply_overrides
from vidplug.consistency.flow import FlowModel
from vidplug.consistency.fusion import FlowCoupling, fuse, warp_residual
from vidplug.errors import VidplugError
from vidplug.methods.dmplug import _fusing, _least_squares_start
from vidplug.metrics.fidelity import psnr
from vidplug.physics import build_operator
from vidplug.solver.chunk_problem import CroppedOperator, project
from vidplug.solver.chunks import plan_chunks

SHIFT = 1  # pixels the scene moves left per frame in conftest's make_translating_video


class KnownFlow(FlowModel):
    """The translating video's true flow: frame t+1 is frame t moved SHIFT pixels left."""

    name = "known"

    def _flow(self, src, dst):
        flow = torch.zeros(src.shape[0], 2, *src.shape[-2:])
        flow[:, 0] = -SHIFT  # pixel p of the earlier frame is at p - SHIFT in the later one
        return flow

    def flow_pair(self, frames, step=1):
        fw = torch.zeros(frames.shape[0] - step, 2, *frames.shape[-2:])
        fw[:, 0] = -SHIFT * step
        return fw, -fw


@pytest.mark.parametrize("step", [1, 2])
def test_coupling_normal_operator_is_symmetric_and_equals_the_residual_energy(step):
    g = torch.Generator().manual_seed(0)
    fw = 2.0 * torch.randn(4 - step, 2, 12, 10, generator=g)
    mask = (torch.rand(4 - step, 1, 12, 10, generator=g) > 0.3).float()
    coupling = FlowCoupling(fw, mask, weight=0.7, step=step)
    u, v = torch.randn(4, 3, 12, 10, generator=g), torch.randn(4, 3, 12, 10, generator=g)
    uv = float((u * coupling.normal(v)).sum())
    assert uv == pytest.approx(float((coupling.normal(u) * v).sum()), rel=1e-4)
    assert uv == pytest.approx(0.7 * float((coupling.residual(u) * coupling.residual(v)).sum()), rel=1e-4)
    assert float((v * coupling.normal(v)).sum()) >= 0


def test_coupling_without_motion_is_the_temporal_difference():
    coupling = FlowCoupling(torch.zeros(2, 2, 4, 4), torch.ones(2, 1, 4, 4), weight=1.0)
    x = torch.stack([torch.full((1, 4, 4), v) for v in (0.0, 1.0, 3.0)])
    assert torch.allclose(coupling.residual(x)[:, 0, 0, 0], torch.tensor([-1.0, -2.0]))
    # L^T L x for the chain 0-1-2: (x0 - x1, -x0 + 2 x1 - x2, x2 - x1)
    assert torch.allclose(coupling.normal(x)[:, 0, 0, 0], torch.tensor([-1.0, -1.0, 2.0]))


def test_coupling_rejects_mismatched_flows_and_negative_weights():
    with pytest.raises(VidplugError, match="flow coupling"):
        FlowCoupling(torch.zeros(2, 2, 4, 4), torch.ones(3, 1, 4, 4), 1.0)
    with pytest.raises(VidplugError, match="fusion weight"):
        FlowCoupling(torch.zeros(2, 2, 4, 4), torch.ones(2, 1, 4, 4), -1.0)


def _known_motion_problem(task: str, frames: int, size: int):
    """A translating clip observed through ``task``: truth, observation, the data operator, its pseudo-inverse and
    the single-frame least-squares estimate (30 CG steps at damping 0.01)."""
    truth = make_translating_video(frames, size, size, shift=SHIFT)
    op = build_operator(task, frames, (size, size), noise_sigma=0.01)
    y = op(truth)
    data_op = CroppedOperator(op, 0, frames)
    dagger = op.A_dagger(y)
    return truth, y, data_op, dagger, project(data_op, y, dagger, 30, 0.01)


def test_fusing_the_neighbours_beats_single_frame_least_squares_on_known_motion():
    truth, y, data_op, dagger, single = _known_motion_problem("sr4", 6, 64)
    fused = fuse(data_op, y, dagger, single, KnownFlow(), weight=0.1, rounds=2, steps=30, damping=0.01)
    assert psnr(fused, truth)[0] > psnr(single, truth)[0] + 1.0  # measured +1.7 dB
    reversed_flow = KnownFlow()
    reversed_flow.flow_pair = lambda frames, step=1: tuple(-f for f in KnownFlow().flow_pair(frames, step))
    wrong = fuse(data_op, y, dagger, single, reversed_flow, weight=0.1, rounds=2, steps=30, damping=0.01)
    assert psnr(wrong, truth)[0] < psnr(single, truth)[0]  # the sign convention matters: wrong flows hurt
    zero = fuse(data_op, y, dagger, dagger, KnownFlow(), weight=0.0, rounds=1, steps=30, damping=0.01)
    assert torch.allclose(zero, single, atol=1e-5)  # weight 0: plain damped least squares


def test_fusion_runs_only_with_the_pixel_term_and_changes_only_the_fused_start():
    truth = make_translating_video(4, 16, 16, shift=SHIFT)
    cfg = tiny_run_config("solver.init_refine_steps=10", "consistency.pixel_weight=0.05",
                          task=("task.name=sr4",))
    models = tiny_models(cfg)
    op = build_operator("sr4", 4, (16, 16), noise_sigma=0.01)
    y = op(truth)
    chunk = plan_chunks(4, 4, 0)[0]
    data_op = CroppedOperator(op, 0, 4)
    dagger = op.A_dagger(y)
    assert _fusing(cfg, models, op, chunk)
    fused, fusion = _least_squares_start(cfg, models, op, data_op, y, dagger, True)
    plain, unfused = _least_squares_start(cfg, models, op, data_op, y, dagger, False)
    # the default: the least-squares estimate's flows, at consistency.fusion_weight
    assert (fusion, unfused) == ({"flows_from": "estimate", "weight": cfg.consistency.fusion_weight,
                                  "motion_boundaries": True}, {})
    assert torch.allclose(plain, project(data_op, y, dagger, 10, 0.01))
    assert not torch.allclose(fused, plain, atol=1e-3)
    for off in ("consistency.fusion_weight=0", "consistency.pixel_weight=0"):
        off_cfg = apply_overrides(cfg, [off])
        assert not _fusing(off_cfg, tiny_models(off_cfg), op, chunk), off
    with pytest.raises(VidplugError, match="fusion_weight"):
        apply_overrides(cfg, ["consistency.fusion_rounds=0"])
    with pytest.raises(VidplugError, match="fusion_radius"):
        apply_overrides(cfg, ["consistency.fusion_radius=0"])


def test_a_restore_with_the_pixel_term_reports_the_fusion(tmp_path):
    from vidplug.io import write_video
    from vidplug.pipeline import restore_video

    clip = tmp_path / "clip.mp4"
    write_video(make_translating_video(3, 16, 16), clip, fps=8.0)
    cfg = tiny_run_config("solver.init_refine_steps=5", "solver.project_steps=5", "solver.iters=2",
                          "consistency.pixel_weight=0.05", "consistency.flow_model=dis", task=("task.name=sr4",))
    models = tiny_models(cfg)
    res = restore_video(clip, tmp_path / "r.mp4", cfg, simulate=True, progress=False, models=models)
    assert res.report["chunks"][0]["fusion"] == {"weight": cfg.consistency.fusion_weight, "motion_boundaries": True,
                                                 "rounds": cfg.consistency.fusion_rounds, "radius": 1,
                                                 "pixel_in_solve": True, "flows_from": "estimate",
                                                 "uncoupled_pairs": []}
    assert "pixel" in res.report["chunks"][0]["loss_history"]
    fusion_only = apply_overrides(cfg, ["consistency.pixel_in_solve=false"])
    res = restore_video(clip, tmp_path / "rf.mp4", fusion_only, simulate=True, progress=False, models=models)
    assert res.report["chunks"][0]["fusion"]["pixel_in_solve"] is False  # the report says the solve had no pixel term
    assert "pixel" not in res.report["chunks"][0]["loss_history"]
    off = apply_overrides(cfg, ["consistency.fusion_weight=0"])
    res = restore_video(clip, tmp_path / "r0.mp4", off, simulate=True, progress=False, models=tiny_models(off))
    assert "fusion" not in res.report["chunks"][0]


class RecordingFlow(KnownFlow):
    """The known flow, remembering the frames each estimate was asked for."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def flow_pair(self, frames, step=1):
        self.seen.append(frames.clone())
        return super().flow_pair(frames, step)


def test_the_first_fusion_round_estimates_its_flows_on_first_flows_and_later_rounds_on_the_estimate():
    _, y, data_op, dagger, single = _known_motion_problem("sr4", 4, 16)
    for first, expected in ((None, single), (dagger, dagger)):
        flow = RecordingFlow()
        fused = fuse(data_op, y, dagger, single, flow, weight=0.1, rounds=2, steps=5, damping=0.01, first_flows=first)
        assert len(flow.seen) == 2
        assert torch.allclose(flow.seen[0], expected.clamp(0, 1))
        assert not torch.allclose(flow.seen[1], expected.clamp(0, 1), atol=1e-3)  # round 2: the fused estimate
        assert torch.isfinite(fused).all()


def test_warp_residual_is_lower_for_frames_that_move_as_one_scene():
    frames = make_translating_video(5, 32, 32, shift=SHIFT)
    consistent = warp_residual(KnownFlow(), frames)
    shuffled = warp_residual(KnownFlow(), frames[[0, 3, 1, 4, 2]])  # the same frames, out of order
    noisy = warp_residual(KnownFlow(), (frames + 0.1 * torch.randn(frames.shape, generator=torch.Generator()
                                                                  .manual_seed(0))).clamp(0, 1))
    assert consistent < 1e-4 < noisy < shuffled  # bilinear warping of a 1-pixel shift is exact inside the frame
    assert warp_residual(KnownFlow(), frames[:1]) == 0.0


class ContrastFlow(RecordingFlow):
    """A flow that depends on the frames it is estimated on (its length scales with their contrast), so that flows
    from different frames couple differently."""

    def flow_pair(self, frames, step=1):
        fw, bw = super().flow_pair(frames, step)
        scale = 10.0 * float(frames.std())
        return fw * scale, bw * scale


@pytest.mark.parametrize("preferred", ["estimate", "observation"])
def test_auto_fusion_flows_keep_the_candidate_with_the_lower_warp_residual(monkeypatch, preferred):
    from vidplug.methods import classical

    _, y, data_op, dagger, _ = _known_motion_problem("sr4", 4, 16)
    cfg = tiny_run_config("consistency.pixel_weight=0.05", task=("task.name=sr4",))
    results = {}
    for mode in ("estimate", "observation"):
        named = apply_overrides(cfg, [f"consistency.fusion_flows_from={mode}"])
        results[mode] = classical.least_squares_estimate(data_op, y, dagger, 10, named.consistency, ContrastFlow())
        assert results[mode][1]["flows_from"] == mode
    assert not torch.allclose(results["estimate"][0], results["observation"][0], atol=1e-4)

    def score(flow, frames, min_coverage, motion_boundaries):  # the preferred mode's result scores lower
        return 0.0 if torch.equal(frames, results[preferred][0]) else 1.0

    monkeypatch.setattr(classical, "warp_residual", score)
    auto = apply_overrides(cfg, ["consistency.fusion_flows_from=auto"])
    x, fusion = classical.least_squares_estimate(data_op, y, dagger, 10, auto.consistency, ContrastFlow())
    assert fusion["flows_from"] == preferred and torch.equal(x, results[preferred][0])
    with pytest.raises(VidplugError, match="fusion_flows_from"):
        apply_overrides(cfg, ["consistency.fusion_flows_from=truth"])


def test_coupling_frames_two_apart_helps_invert_the_temporal_average():
    truth, y, data_op, dagger, start = _known_motion_problem("temporal", 8, 32)
    near, far = (fuse(data_op, y, dagger, start, KnownFlow(), weight=0.1, rounds=2, steps=30, damping=0.01, radius=r)
                 for r in (1, 2))
    assert psnr(far, truth)[0] > psnr(near, truth)[0] + 1.0  # measured +3.0 dB (32.5 -> 35.5)
    # a radius beyond the window couples what it can: 8 frames hold distances up to 7
    assert torch.isfinite(fuse(data_op, y, dagger, start, KnownFlow(), weight=0.1, rounds=1, steps=5, damping=0.01,
                               radius=20)).all()


def test_windows_under_coupling_min_frames_get_no_flow_coupling_and_say_so(tmp_path):
    from vidplug.consistency.pixel import PixelConsistency
    from vidplug.io import write_video
    from vidplug.methods.dmplug import consistency_terms
    from vidplug.pipeline import restore_video

    cfg = tiny_run_config("consistency.pixel_weight=0.05", "consistency.coupling_min_frames=5",
                          task=("task.name=temporal",))
    models = tiny_models(cfg)
    op = build_operator("temporal", 4, (16, 16), noise_sigma=0.01)
    short, long = plan_chunks(4, 4, 0)[0], plan_chunks(5, 5, 0)[0]
    init = torch.rand(4, 3, 16, 16)
    assert not _fusing(cfg, models, op, short)
    assert not any(isinstance(t, PixelConsistency) for t in consistency_terms(cfg.consistency, models, short, init,
                                                                              None))
    assert _fusing(cfg, models, build_operator("temporal", 5, (16, 16)), long)
    with pytest.raises(VidplugError, match="coupling_min_frames"):
        apply_overrides(cfg, ["consistency.coupling_min_frames=1"])

    # end to end: the 4-frame clip's flow-coupled least squares is plain least squares, and the report says why
    clip = tmp_path / "clip.mp4"
    write_video(make_translating_video(4, 16, 16, shift=SHIFT), clip, fps=8.0)
    frames = {}
    dmplug = apply_overrides(cfg, ["consistency.flow_model=dis", "solver.iters=1", "solver.early_stop=true"])
    res = restore_video(clip, tmp_path / "dmplug.mp4", dmplug, simulate=True, progress=False,
                        models=tiny_models(dmplug))
    assert "fusion" not in res.report["chunks"][0]
    notes = res.report["notes"]  # the solver's own note (one iteration: ES-WMV never filled) is kept beside it
    assert any("flow coupling off" in n for n in notes) and any("never filled" in n for n in notes), notes
    for method, extra in (("least-squares", []), ("flow-least-squares", []),
                          ("flow-least-squares", ["consistency.coupling_min_frames=4"])):
        run = apply_overrides(cfg, [f"method={method}", "consistency.flow_model=dis", *extra])
        res = restore_video(clip, tmp_path / f"{method}.mp4", run, simulate=True, progress=False,
                            models=tiny_models(run), keep_frames=True, overwrite=True)
        frames[(method, bool(extra))] = (res.frames, res.report["notes"])
    plain, (short_fused, notes), (fused, fused_notes) = (frames[k] for k in frames)
    assert torch.equal(short_fused, plain[0])
    assert any("flow coupling off: a window of 4 frames is under consistency.coupling_min_frames=5" in n
               for n in notes), notes
    assert not torch.allclose(fused, plain[0], atol=1e-3) and not any("coupling off" in n for n in fused_notes)


def test_pixel_in_solve_false_keeps_the_fusion_and_drops_the_solves_pixel_term():
    from vidplug.consistency.pixel import PixelConsistency
    from vidplug.methods.dmplug import consistency_terms

    cfg = tiny_run_config("consistency.pixel_weight=0.05", task=("task.name=temporal",))
    models = tiny_models(cfg)
    op = build_operator("temporal", 6, (16, 16), noise_sigma=0.01)
    chunk, init = plan_chunks(6, 6, 0)[0], torch.rand(6, 3, 16, 16)

    def has_pixel(c) -> bool:
        return any(isinstance(t, PixelConsistency) for t in consistency_terms(c.consistency, models, chunk, init, None))

    assert has_pixel(cfg) and _fusing(cfg, models, op, chunk)
    fusion_only = apply_overrides(cfg, ["consistency.pixel_in_solve=false"])
    assert not has_pixel(fusion_only) and _fusing(fusion_only, models, op, chunk)


CUT = 2  # the scene cut of _cut_clip: frames 0-2 are one shot, 3-5 another


class CutFlow(KnownFlow):
    """The known flow, except between frames CUT and CUT+1, where the backward flow contradicts the forward one
    outside the top-left 8x8 block: the forward-backward check keeps only that block, as DIS keeps a few chance
    matches across a real scene cut (bikes: 1-4% of the frame)."""

    def flow_pair(self, frames, step=1):
        fw, bw = super().flow_pair(frames, step)
        bw[CUT, 0] += 5.0
        bw[CUT, :, :8, :8] = -fw[CUT, :, :8, :8]
        return fw, bw


def _cut_clip(size: int = 32) -> torch.Tensor:
    """Two translating shots of 3 frames, of different textures and colours."""
    other = make_translating_video(3, size, size, shift=SHIFT, seed=1).flip(1)
    return torch.cat([make_translating_video(3, size, size, shift=SHIFT), other])


def test_a_pair_with_few_correspondences_is_not_coupled():
    frames = _cut_clip()
    kept = FlowCoupling.from_frames(CutFlow(), frames, 1.0)
    dropped = FlowCoupling.from_frames(CutFlow(), frames, 1.0, min_coverage=0.2)
    coverage = kept.mask.mean(dim=(1, 2, 3))
    assert float(coverage[CUT]) == pytest.approx(1 / 16)  # the 8x8 block of 32x32
    others = [t for t in range(len(coverage)) if t != CUT]
    assert bool((coverage[others] > 0.9).all())  # within a shot: all but the column that leaves the frame
    assert float(dropped.mask[CUT].sum()) == 0.0
    assert torch.equal(dropped.mask[others], kept.mask[others])
    assert torch.equal(FlowCoupling.from_frames(CutFlow(), frames, 1.0, min_coverage=0.05).mask, kept.mask)


def test_warp_residual_leaves_out_the_pairs_the_fusion_leaves_uncoupled():
    frames = _cut_clip()
    within = warp_residual(KnownFlow(), frames[:CUT + 1]) + warp_residual(KnownFlow(), frames[CUT + 1:])
    assert within < 1e-4  # each shot moves as one scene
    # the cut pair's chance matches (the 8x8 block) pair two different shots: counted, they dominate the mean
    assert warp_residual(CutFlow(), frames) > 100 * max(within, 1e-6)
    assert warp_residual(CutFlow(), frames, min_coverage=0.2) < 1e-4


def test_auto_fusion_flows_score_the_candidates_with_the_configured_pair_coverage(monkeypatch):
    from vidplug.methods import classical

    _, y, data_op, dagger, _ = _known_motion_problem("sr4", 4, 16)
    cfg = tiny_run_config("consistency.pixel_weight=0.05", "consistency.fusion_flows_from=auto",
                          "consistency.min_pair_coverage=0.3", task=("task.name=sr4",))
    seen = []
    monkeypatch.setattr(classical, "warp_residual",
                        lambda flow, frames, min_coverage, motion_boundaries: seen.append(min_coverage) or 0.0)
    classical.least_squares_estimate(data_op, y, dagger, 2, cfg.consistency, KnownFlow())
    assert seen == [0.3, 0.3]


def test_fusion_across_a_scene_cut_leaves_the_chance_matches_alone():
    truth = _cut_clip()
    op = build_operator("sr4", 6, (32, 32), noise_sigma=0.01)
    y = op(truth)
    data_op, dagger = CroppedOperator(op, 0, 6), op.A_dagger(y)
    single = project(data_op, y, dagger, 30, 0.01)
    coupled, cut = (fuse(data_op, y, dagger, single, CutFlow(), weight=0.1, rounds=2, steps=30, damping=0.01,
                         min_coverage=m) for m in (0.0, 0.2))
    block = (slice(CUT, CUT + 1), slice(None), slice(0, 8), slice(0, 8))  # frame CUT's pixels coupled across the cut
    # measured 17.2 dB coupled to the other shot against 18.9 dB uncoupled; the whole clip 18.62 -> 18.81
    assert psnr(cut[block], truth[block])[0] > psnr(coupled[block], truth[block])[0] + 1.0
    assert psnr(cut, truth)[0] > psnr(coupled, truth)[0]
    for m, expected in ((0.0, []), (0.2, [[CUT, CUT + 1]])):
        report = {}
        fuse(data_op, y, dagger, single, CutFlow(), weight=0.1, rounds=1, steps=2, damping=0.01, min_coverage=m,
             report=report)
        assert report == {"uncoupled_pairs": expected}


def test_the_report_names_the_pairs_the_projection_left_uncoupled(tmp_path):
    from vidplug.io import write_video
    from vidplug.pipeline import restore_video

    class ContentCutFlow(KnownFlow):
        """CutFlow's chance matches, at whichever pair of the frames it is given spans the cut."""

        def flow_pair(self, frames, step=1):
            fw, bw = super().flow_pair(frames, step)
            diffs = (frames[step:] - frames[:-step]).abs().mean(dim=(1, 2, 3))
            for t in range(fw.shape[0]):
                if diffs[t] > 2 * diffs.median():  # the cut stands out of the window's frame differences
                    bw[t, 0] += 5.0
                    bw[t, :, :8, :8] = -fw[t, :, :8, :8]
            return fw, bw

    cut = 4  # the clip's frames 0-4 are one shot, 5-7 another: the cut lies inside the second window, not the first
    second = make_translating_video(3, 32, 32, shift=SHIFT, seed=1).flip(1)
    clip = tmp_path / "cut.mp4"
    write_video(torch.cat([make_translating_video(cut + 1, 32, 32, shift=SHIFT), second]), clip, fps=8.0)
    cfg = tiny_run_config("solver.init_refine_steps=2", "solver.project_steps=2", "solver.iters=1",
                          "solver.early_stop=false", "solver.init=inversion-offset",  # the restoration is the start
                          "consistency.pixel_weight=0.05", "chunk.size=4", "chunk.overlap=1", task=("task.name=sr4",))
    models = tiny_models(cfg)
    models.flow = ContentCutFlow()
    res = restore_video(clip, tmp_path / "r.mp4", cfg, simulate=True, progress=False, models=models)
    chunks = res.report["chunks"]
    found = {tuple(c["window"]): c["fusion"]["uncoupled_pairs"] for c in chunks}
    assert found[(0, 4)] == [] and found[(3, 7)] == [[cut, cut + 1]], found  # frame numbers of the clip, not the window
    assert all(pairs == ([[cut, cut + 1]] if start <= cut < stop - 1 else []) for (start, stop), pairs in found.items())


def test_min_pair_coverage_reaches_the_fused_start_the_solve_and_the_projection(monkeypatch):
    from vidplug.consistency import warp
    from vidplug.consistency.pixel import PixelConsistency
    from vidplug.methods.dmplug import _projected, consistency_terms

    cfg = tiny_run_config("solver.init_refine_steps=2", "solver.project_steps=2", "consistency.pixel_weight=0.05",
                          "consistency.min_pair_coverage=0.3", task=("task.name=sr4",))
    assert tiny_run_config().consistency.min_pair_coverage == 0.2  # the default
    models = tiny_models(cfg)
    truth = make_translating_video(4, 16, 16, shift=SHIFT)
    op = build_operator("sr4", 4, (16, 16), noise_sigma=0.01)
    y, chunk = op(truth), plan_chunks(4, 4, 0)[0]
    data_op, dagger = CroppedOperator(op, 0, 4), op.A_dagger(y)
    seen = []
    monkeypatch.setattr(warp, "drop_sparse_pairs", lambda mask, m: seen.append(m) or mask)
    start, _ = _least_squares_start(cfg, models, op, data_op, y, dagger, True)
    assert seen and set(seen) == {0.3}
    seen.clear()
    _projected(cfg.solver, cfg.consistency, models, data_op, y, start, True, cfg.consistency.fusion_weight)
    assert seen == [0.3]
    (pixel,) = [t for t in consistency_terms(cfg.consistency, models, chunk, dagger, None)
                if isinstance(t, PixelConsistency)]
    assert pixel.min_coverage == 0.3
    for bad in ("1", "-0.1"):
        with pytest.raises(VidplugError, match="min_pair_coverage"):
            apply_overrides(cfg, [f"consistency.min_pair_coverage={bad}"])


class ReversedFlow(KnownFlow):
    """The true flow with the wrong sign: fusing with it pulls each frame towards misplaced neighbours."""

    def flow_pair(self, frames, step=1):
        fw, bw = super().flow_pair(frames, step)
        return -fw, -bw


@pytest.mark.parametrize("flow, fuses", [(KnownFlow(), True), (ReversedFlow(), False)])
def test_cross_validated_fusion_weight_picks_what_the_truth_prefers(flow, fuses):
    from vidplug.methods import classical

    truth, y, data_op, dagger, _ = _known_motion_problem("inpaint", 6, 32)
    cfg = tiny_run_config("consistency.pixel_weight=0.05", "consistency.fusion_weight_cv=[0.0,0.3]",
                          task=("task.name=inpaint",))
    choice = classical.cross_validated_fusion_weight(data_op, y, 10, cfg.consistency, flow)
    assert [c["weight"] for c in choice["weight_cv"]] == [0.0, 0.3]
    assert choice["weight"] == (0.3 if fuses else 0.0)
    # the ground truth agrees (ORACLE, in the test only): the chosen weight restores the held-in clip better
    scores = {}
    for w in (0.0, 0.3):
        fixed = apply_overrides(cfg, [f"consistency.fusion_weight={w}", "consistency.fusion_weight_cv=[]"])
        scores[w] = psnr(classical.least_squares_estimate(data_op, y, dagger, 10, fixed.consistency, flow)[0],
                         truth)[0]
    assert max(scores, key=scores.get) == choice["weight"]
    estimate, fusion = classical.least_squares_estimate(data_op, y, dagger, 10, cfg.consistency, flow)
    assert fusion["weight"] == choice["weight"] and psnr(estimate, truth)[0] == pytest.approx(scores[fusion["weight"]])


def test_cross_validation_never_sees_the_held_out_pixels(monkeypatch):
    from vidplug.methods import classical

    _, y, data_op, dagger, _ = _known_motion_problem("inpaint", 4, 32)
    cfg = tiny_run_config("consistency.pixel_weight=0.05", "consistency.fusion_weight_cv=[0.01,0.1]",
                          "consistency.fusion_cv_holdout=0.2", task=("task.name=inpaint",))
    seen, real = [], classical._fused

    def spy(fit_op, y_fit, dagger_fit, x_fit, steps, cons, flow, weight, boundaries):
        seen.append((fit_op.op.mask.clone(), y_fit.clone(), dagger_fit.clone(), weight))
        return real(fit_op, y_fit, dagger_fit, x_fit, steps, cons, flow, weight, boundaries)

    monkeypatch.setattr(classical, "_fused", spy)
    classical.cross_validated_fusion_weight(data_op, y, 5, cfg.consistency, KnownFlow())
    assert [s[3] for s in seen] == [0.01, 0.1]
    observed = data_op.op.mask
    for fit_mask, y_fit, dagger_fit, _ in seen:
        held = observed - fit_mask  # observed pixels the fit does not get
        assert bool((held >= 0).all()) and float(held.sum() / observed.sum()) == pytest.approx(0.2, abs=0.03)
        assert bool((y_fit * held == 0).all())  # their values are removed from the observation...
        refill = y.clone() + 5.0 * held  # ...and the fit's pseudo-inverse does not depend on them
        assert torch.equal(dagger_fit, data_op.op.with_mask(fit_mask).A_dagger(refill * fit_mask).clamp(0, 1))


def test_fusion_weight_cv_is_reported_and_needs_a_pixel_mask(tmp_path):
    from vidplug.io import write_video
    from vidplug.pipeline import restore_video

    clip = tmp_path / "clip.mp4"
    write_video(make_translating_video(3, 16, 16), clip, fps=8.0)
    sets = ("solver.init_refine_steps=5", "solver.project_steps=5", "solver.iters=1", "consistency.pixel_weight=0.05",
            "consistency.flow_model=dis", "consistency.fusion_weight_cv=[0.01,0.1]")
    cfg = tiny_run_config(*sets, task=("task.name=inpaint",))
    res = restore_video(clip, tmp_path / "r.mp4", cfg, simulate=True, progress=False, models=tiny_models(cfg))
    fusion = res.report["chunks"][0]["fusion"]
    assert [c["weight"] for c in fusion["weight_cv"]] == [0.01, 0.1]
    assert fusion["weight"] == min(fusion["weight_cv"], key=lambda c: c["held_out_mse"])["weight"]
    sr = tiny_run_config(*sets, task=("task.name=sr4",))
    res = restore_video(clip, tmp_path / "s.mp4", sr, simulate=True, progress=False, models=tiny_models(sr))
    chunk = res.report["chunks"][0]
    assert chunk["fusion"]["weight"] == sr.consistency.fusion_weight and "weight_cv" not in chunk["fusion"]
    assert any("fusion_weight_cv needs an operator with a pixel mask" in n for n in chunk["notes"])
    for bad in ("consistency.fusion_weight_cv=[-0.1]", "consistency.fusion_weight_cv=[a]",
                "consistency.fusion_cv_holdout=0", "consistency.fusion_cv_holdout=1"):
        with pytest.raises(VidplugError, match="fusion_weight_cv|fusion_cv_holdout"):
            apply_overrides(cfg, [bad])


def _distance_to_observed(mask_2d: torch.Tensor, pixels: torch.Tensor) -> float:
    """Mean distance (px) of ``pixels`` (H, W bool) to the nearest pixel where ``mask_2d`` is 1."""
    import cv2
    import numpy as np

    far = cv2.distanceTransform((mask_2d < 0.5).numpy().astype(np.uint8), cv2.DIST_L2, 5)
    return float(far[pixels.numpy()].mean())


@pytest.mark.parametrize("block", [1, 8])
def test_held_out_pixels_are_as_far_from_the_observed_ones_as_the_missing_ones(block):
    from vidplug.methods.classical import held_out_pixels

    g = torch.Generator().manual_seed(5)
    coarse = (torch.rand(3, 1, 64 // block, 64 // block, generator=g) >= 0.4).float()
    mask = torch.nn.functional.interpolate(coarse, scale_factor=block, mode="nearest")  # (3, 1, 64, 64)
    held = held_out_pixels(mask, 0.1)
    assert bool((held <= mask).all())  # only observed pixels are held out
    for m, h in zip(mask[:, 0], held[:, 0], strict=True):
        share = float(h.sum() / m.sum())
        assert 0.08 <= share <= 0.15  # whole holes for blocks: at most 1.5 times the fraction
        fit = m - h
        real = _distance_to_observed(m, m < 0.5)  # the missing pixels: 1.0 for scattered ones, ~2.5 for 8x8 blocks
        mimic = _distance_to_observed(fit, h > 0.5)
        assert mimic == pytest.approx(real, rel=0.4), (block, mimic, real)
        if block > 1:  # single held-out pixels would sit next to observed ones (the pixel-mask case's 1.0)
            assert mimic > 1.5


def test_one_large_hole_is_still_held_out_and_a_window_without_observed_pixels_is_reported():
    from vidplug.methods import classical

    mask = torch.ones(2, 1, 48, 48)
    mask[:, :, 8:32, 8:32] = 0  # one hole of a quarter of the frame: moved onto observed pixels it is too large
    held = classical.held_out_pixels(mask, 0.1)
    assert bool((held <= mask).all()) and all(float(h.sum()) > 0 for h in held)  # still one hole per frame
    truth = make_translating_video(2, 48, 48, shift=SHIFT)
    cfg = tiny_run_config("consistency.pixel_weight=0.05", "consistency.fusion_weight_cv=[0.01,0.1]",
                          task=("task.name=inpaint",))
    blind = build_operator("inpaint", 2, (48, 48), noise_sigma=0.01, mask=torch.zeros(2, 1, 48, 48))
    choice = classical.cross_validated_fusion_weight(CroppedOperator(blind, 0, 2), blind(truth), 5, cfg.consistency,
                                                     KnownFlow())
    assert choice["weight"] == cfg.consistency.fusion_weight and "no observed pixel to hold out" in choice["note"]


def test_the_cross_validation_also_chooses_the_coupling_mask_and_reports_every_pair(tmp_path):
    from vidplug.io import write_video
    from vidplug.pipeline import restore_video

    clip = tmp_path / "clip.mp4"
    write_video(make_translating_video(3, 16, 16), clip, fps=8.0)
    cfg = tiny_run_config("solver.init_refine_steps=5", "solver.project_steps=5", "solver.iters=1",
                          "consistency.pixel_weight=0.05", "consistency.flow_model=dis",
                          "consistency.fusion_weight_cv=[0.01,0.1]", "consistency.motion_boundaries_cv=[true,false]",
                          task=("task.name=inpaint",))
    res = restore_video(clip, tmp_path / "r.mp4", cfg, simulate=True, progress=False, models=tiny_models(cfg))
    fusion = res.report["chunks"][0]["fusion"]
    assert [(c["motion_boundaries"], c["weight"]) for c in fusion["weight_cv"]] == [
        (True, 0.01), (True, 0.1), (False, 0.01), (False, 0.1)]
    best = min(fusion["weight_cv"], key=lambda c: c["held_out_mse"])
    assert (fusion["weight"], fusion["motion_boundaries"]) == (best["weight"], best["motion_boundaries"])
    for bad in ("consistency.motion_boundaries_cv=[1]", "consistency.motion_boundaries_cv=[yes_please]"):
        with pytest.raises(VidplugError, match="motion_boundaries_cv"):
            apply_overrides(cfg, [bad])


def test_the_chosen_coupling_mask_reaches_the_start_the_solve_and_the_projection(monkeypatch, tmp_path):
    from vidplug.consistency import fusion as fusion_module
    from vidplug.consistency import pixel as pixel_module
    from vidplug.consistency import warp
    from vidplug.io import write_video
    from vidplug.methods import classical
    from vidplug.pipeline import restore_video

    clip = tmp_path / "clip.mp4"
    write_video(make_translating_video(3, 16, 16), clip, fps=8.0)
    cfg = tiny_run_config("solver.init_refine_steps=5", "solver.project_steps=5", "solver.iters=2",
                          "consistency.pixel_weight=0.05", "consistency.flow_model=dis",
                          "consistency.flow_refresh_every=1",
                          task=("task.name=inpaint",))
    seen = []

    def spy(fw, bw, min_coverage=0.0, motion_boundaries=True):
        seen.append(motion_boundaries)
        return warp.correspondence_mask(fw, bw, min_coverage, motion_boundaries)

    monkeypatch.setattr(fusion_module, "correspondence_mask", spy)
    monkeypatch.setattr(pixel_module, "correspondence_mask", spy)
    res = restore_video(clip, tmp_path / "a.mp4", cfg, simulate=True, progress=False, models=tiny_models(cfg))
    assert seen and set(seen) == {True}  # the default: Lai's mask everywhere
    assert res.report["chunks"][0]["fusion"]["motion_boundaries"] is True
    seen.clear()
    picked = {"weight": 0.1, "motion_boundaries": False, "weight_cv": []}
    monkeypatch.setattr(classical, "cross_validated_fusion_weight", lambda *a: dict(picked))
    cv = apply_overrides(cfg, ["consistency.motion_boundaries_cv=[true,false]"])
    res = restore_video(clip, tmp_path / "b.mp4", cv, simulate=True, progress=False, models=tiny_models(cv))
    # the start's fusion rounds, the pixel term's flow refreshes and the projection all used the chosen mask
    assert len(seen) >= cv.consistency.fusion_rounds + 2 and set(seen) == {False}
    assert res.report["chunks"][0]["fusion"]["motion_boundaries"] is False
    fixed = apply_overrides(cfg, ["consistency.motion_boundaries=false"])  # the setting without cross-validation
    seen.clear()
    restore_video(clip, tmp_path / "c.mp4", fixed, simulate=True, progress=False, models=tiny_models(fixed))
    assert seen and set(seen) == {False}


def test_auto_fusion_flows_fuse_both_candidates_side_by_side_with_several_torch_threads():
    import threading

    from vidplug.methods import classical

    _, y, data_op, dagger, _ = _known_motion_problem("sr4", 4, 16)
    cfg = tiny_run_config("consistency.pixel_weight=0.05", "consistency.fusion_flows_from=auto",
                          task=("task.name=sr4",))
    runs = {}
    for threads in (1, 2):

        class NamedFlow(ContrastFlow):  # records the threads its flows were estimated on
            names: set = set()

            def flow_pair(self, frames, step=1):
                NamedFlow.names.add(threading.current_thread().name)
                return super().flow_pair(frames, step)

        torch.set_num_threads(threads)  # conftest restores the count after the test
        runs[threads] = classical.least_squares_estimate(data_op, y, dagger, 10, cfg.consistency, NamedFlow())
        workers = {n for n in NamedFlow.names if n.startswith("vidplug-worker")}
        assert len(workers) == (0 if threads == 1 else 2)  # the two candidates on two worker threads
    assert runs[2][1]["flows_from"] == runs[1][1]["flows_from"]
    torch.testing.assert_close(runs[2][0], runs[1][0], atol=1e-5, rtol=1e-4)
