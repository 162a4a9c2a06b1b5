"""Exterior frames of a chunk window (temporal PSF): every window frame keeps a data term."""

import pytest
import torch

from tests.conftest import make_translating_video, tiny_models, tiny_run_config
from vidplug.io import write_video
from vidplug.physics import build_operator
from vidplug.pipeline import restore_video
from vidplug.solver.chunk_problem import ExteriorOperator, exterior_problem

TASKS = [("temporal", {"k": 5}), ("temporal+deblur", {"k": 5, "kernel_size": 5})]


def _ops(task: str, options: dict, video: torch.Tensor, lead: int, t: int):
    """The window ``[lead, lead + t)`` of ``video``'s frames and the operator over the whole of it."""
    size = tuple(video.shape[-2:])
    window = build_operator(task, t, size, frame_offset=lead, **options)
    extended = build_operator(task, video.shape[0], size, **options)
    return window, extended


@pytest.mark.parametrize(("task", "options"), TASKS)
def test_with_the_true_exterior_the_window_rows_equal_the_whole_videos(task, options):
    video = make_translating_video(10, 16, 16, shift=2)
    window, extended = _ops(task, options, video, 2, 6)
    op = ExteriorOperator(window, extended, 2, video)
    exact = extended.A(video)[2:8]
    assert torch.allclose(op.A(video[2:8]) + op.offset, exact, atol=1e-5)
    # the window operator alone replicates its end frames: its first and last k // 2 rows are wrong
    assert not torch.allclose(window.A(video[2:8])[:2], exact[:2], atol=1e-3)


@pytest.mark.parametrize(("task", "options"), TASKS)
def test_the_linear_part_and_its_adjoint_agree(task, options):
    video = make_translating_video(9, 16, 16)
    window, extended = _ops(task, options, video, 2, 5)
    op = ExteriorOperator(window, extended, 2, video)
    g = torch.Generator().manual_seed(0)
    v, r = torch.randn(5, 3, 16, 16, generator=g), torch.randn(5, 3, 16, 16, generator=g)
    assert torch.allclose((op.A(v) * r).sum(), (v * op.A_adjoint(r)).sum(), rtol=1e-4)


def test_the_pseudo_inverse_of_the_shifted_observation_is_the_windows_own():
    video = make_translating_video(10, 16, 16)
    window, extended = _ops("temporal", {"k": 5}, video, 2, 6)
    y = extended.A(video)  # the observations of the extended range
    shifted, op = exterior_problem(window, extended, 2, y, steps=10, damping=0.01)
    assert torch.allclose(shifted + op.offset, y[2:8])
    assert torch.allclose(op.A_dagger(shifted), window.A_dagger(y[2:8]))
    assert op.noise_sigma == window.noise_sigma and op.context == 2


def test_the_estimated_exterior_explains_the_edge_observations_better_than_replication():
    video = make_translating_video(12, 16, 16, shift=2)
    window, extended = _ops("temporal", {"k": 5}, video, 2, 8)  # exterior frames 0-1 and 10-11
    y = extended.A(video)
    shifted, op = exterior_problem(window, extended, 2, y, steps=30, damping=0.01)
    edge_rows = [0, 1, 6, 7]  # the rows whose PSF leaves the window
    err_exterior = (op.A(video[2:10]) - shifted)[edge_rows].pow(2).mean()
    err_replicated = (window.A(video[2:10]) - y[2:10])[edge_rows].pow(2).mean()
    assert err_exterior < 0.5 * err_replicated


class _Recorder:
    """The least-squares chunk solver, recording each chunk's window and data range."""

    def __init__(self):
        from vidplug.methods import get_method

        self.real, self.seen = get_method("least-squares"), []

    def __call__(self, cfg, models, chunk, *args, **kwargs):
        self.seen.append((chunk.window_start, chunk.window_stop, chunk.data_start, chunk.data_stop))
        return self.real(cfg, models, chunk, *args, **kwargs)


def test_chunked_temporal_runs_keep_every_window_frame_observed_and_restore_better(tmp_path):
    clip = tmp_path / "clip"
    write_video(make_translating_video(20, 16, 16, shift=1), clip, fps=10)
    task = ("task.name=temporal", "task.options.k=5")
    psnr, seen = {}, {}
    for exterior in (True, False):
        cfg = tiny_run_config("method=least-squares", "chunk.size=6", "chunk.overlap=1", f"chunk.exterior={exterior}",
                              task=task)
        recorder = _Recorder()
        res = restore_video(clip, tmp_path / f"o{exterior}.mp4", cfg, simulate=True, progress=False,
                            models=tiny_models(cfg), chunk_solver=recorder)
        psnr[exterior], seen[exterior] = res.report["metrics"]["psnr"], recorder.seen
    assert all((d0, d1) == (w0, w1) for w0, w1, d0, d1 in seen[True])
    interior = seen[False][1]  # a window inside the video: without the exterior its 2 + 2 edge frames go unobserved
    assert interior[2:] == (interior[0] + 2, interior[1] - 2)
    assert psnr[True] > psnr[False] + 0.1
