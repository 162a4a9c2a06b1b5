"""End-to-end pipeline on tiny synthetic clips with a tiny random prior (CPU, seconds)."""

from pathlib import Path

import pytest
import torch

from tests.conftest import CountingSolver, make_translating_video, tiny_models, tiny_run_config
from vidplug.errors import VidplugError
from vidplug.io import read_video, write_video
from vidplug.methods import get_method
from vidplug.pipeline import config_path_for, restore_video

_cfg = tiny_run_config


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "clean"
    write_video(make_translating_video(20, 16, 16, shift=1), path, fps=10)
    return path


def test_chunked_restore_writes_every_frame_once_in_order(clip, tmp_path):
    cfg = _cfg("chunk.size=8", "chunk.overlap=2")
    out = tmp_path / "restored"
    res = restore_video(clip, out, cfg, simulate=True, keep_frames=True, progress=False,
                        models=tiny_models(cfg), report_path=tmp_path / "r.json")
    written = read_video(out).frames
    assert written.shape == (20, 3, 16, 16)
    assert [c["frames"] for c in res.chunks] == [[0, 8], [8, 14], [14, 20]]
    assert torch.allclose(written, res.frames, atol=1 / 255 + 1e-6)  # PNG quantisation only
    assert torch.isfinite(written).all()
    m = res.report["metrics"]
    assert m["frames"] == 20 and len(m["per_frame"]["psnr"]) == 20 and len(m["per_frame"]["warping_error"]) == 19
    assert m["warping_error_seams"] is not None and m["warping_error_inside"] is not None
    assert config_path_for(out).is_file() and (tmp_path / "r.json").is_file()


def test_a_short_last_chunk_is_restored_in_a_full_window_anchored_to_the_frames_before(clip, tmp_path):
    cfg = _cfg("method=bicubic", "chunk.size=8", "chunk.overlap=2")
    res = restore_video(clip, tmp_path / "s.mp4", cfg, simulate=True, progress=False, models=tiny_models(cfg),
                        read={"max_frames": 16})
    assert [c["frames"] for c in res.chunks] == [[0, 8], [8, 14], [14, 16]]
    assert [c["window"] for c in res.chunks] == [[0, 8], [6, 14], [8, 16]]
    assert res.report["metrics"]["frames"] == 16


def test_bicubic_baseline_and_same_seed_same_result(clip, tmp_path):
    cfg = _cfg("method=bicubic")
    res = restore_video(clip, tmp_path / "b.mp4", cfg, simulate=True, keep_frames=True, progress=False,
                        models=tiny_models(cfg))
    assert res.frames.shape == (20, 3, 16, 16) and res.report["metrics"]["psnr"] > 15
    cfg = _cfg("chunk.size=10", "chunk.overlap=0")
    a = restore_video(clip, tmp_path / "a1", cfg, simulate=True, keep_frames=True, progress=False,
                      models=tiny_models(cfg), read={"max_frames": 10})
    b = restore_video(clip, tmp_path / "a2", cfg, simulate=True, keep_frames=True, progress=False,
                      models=tiny_models(cfg), read={"max_frames": 10})
    assert torch.equal(a.frames, b.frames)


def test_pixel_term_lowers_warping_error(clip, tmp_path):
    results = {}
    for w in (0.0, 20.0):
        cfg = _cfg(f"consistency.pixel_weight={w}", "solver.iters=25", "chunk.size=6", "chunk.overlap=1",
                   "consistency.flow_refresh_every=0", "solver.lr=0.05")
        res = restore_video(clip, tmp_path / f"p{w}", cfg, simulate=True, progress=False, read={"max_frames": 6},
                            models=tiny_models(cfg))
        results[w] = res.report["metrics"]["warping_error"]
    assert results[20.0] < results[0.0]


def test_temporal_task_carries_context(tmp_path):
    clip = tmp_path / "c"
    write_video(make_translating_video(12, 16, 16), clip, fps=10)
    cfg = _cfg("chunk.size=5", "chunk.overlap=1", "solver.iters=2", task=("task.name=temporal", "task.options.k=3"))
    res = restore_video(clip, tmp_path / "t", cfg, simulate=True, progress=False,
                        models=tiny_models(cfg))
    assert [c["window"] for c in res.chunks][1] == [3, 10]  # anchor_start 4 minus context 1; stop 9 plus 1
    assert res.report["metrics"]["frames"] == 12


def test_existing_output_is_not_overwritten(clip, tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"precious")
    cfg = _cfg("method=bicubic")
    with pytest.raises(VidplugError, match="--overwrite"):
        restore_video(clip, out, cfg, simulate=True, progress=False, models=tiny_models(cfg))
    assert out.read_bytes() == b"precious"


def test_real_inpainting_needs_a_mask(clip, tmp_path):
    cfg = _cfg(task=("task.name=inpaint",))
    with pytest.raises(VidplugError, match="--mask"):
        restore_video(clip, tmp_path / "o", cfg, simulate=False, progress=False,
                      models=tiny_models(cfg))


def test_interrupted_run_resumes_to_the_same_result(clip, tmp_path):
    cfg = _cfg("chunk.size=6", "chunk.overlap=2", "solver.iters=4")
    models = tiny_models(cfg)
    full = restore_video(clip, tmp_path / "full", cfg, simulate=True, keep_frames=True, progress=False, models=models,
                         read={"max_frames": 12})
    out = tmp_path / "part.mp4"
    with pytest.raises(KeyboardInterrupt):
        restore_video(clip, out, cfg, simulate=True, progress=False, models=models, read={"max_frames": 12},
                      chunk_solver=CountingSolver(die_on=3))  # killed while the third chunk runs
    assert not out.exists()  # no half-written output
    with pytest.raises(VidplugError, match="--resume"):
        restore_video(clip, out, cfg, simulate=True, progress=False, models=models, read={"max_frames": 12})
    counting = CountingSolver()
    res = restore_video(clip, out, cfg, simulate=True, keep_frames=True, progress=False, models=models,
                        read={"max_frames": 12}, resume=True, chunk_solver=counting)
    assert counting.calls == len(res.chunks) - 2  # the two finished chunks were not redone
    assert torch.equal(res.frames, full.frames)
    assert res.report["metrics"]["psnr"] == pytest.approx(full.report["metrics"]["psnr"])
    assert not (tmp_path / ".part.mp4.vidplug-work").exists()


def test_a_resumed_run_keeps_the_automatic_chunk_size_it_started_with(clip, tmp_path, monkeypatch):
    import vidplug.pipeline.restore as restore

    cfg = _cfg("chunk.size=0", "chunk.overlap=1", "solver.iters=2")
    models, out = tiny_models(cfg), tmp_path / "auto.mp4"
    monkeypatch.setattr(restore, "_auto_chunk_size", lambda run, models: 4)  # what memory held when it started
    with pytest.raises(KeyboardInterrupt):
        restore_video(clip, out, cfg, simulate=True, progress=False, models=models, read={"max_frames": 10},
                      chunk_solver=CountingSolver(die_on=2))
    monkeypatch.setattr(restore, "_auto_chunk_size", lambda run, models: 8)  # more memory free on resuming
    res = restore_video(clip, out, cfg, simulate=True, progress=False, models=models, read={"max_frames": 10},
                        resume=True)
    assert [c["frames"] for c in res.chunks] == [[0, 4], [4, 7], [7, 10]]  # planned at 4, as the first chunk was
    fresh = restore_video(clip, tmp_path / "fresh.mp4", cfg, simulate=True, progress=False, models=models,
                          read={"max_frames": 10})
    assert [c["frames"] for c in fresh.chunks] == [[0, 8], [8, 10]]  # a new run decides afresh


def test_resume_refuses_other_settings(clip, tmp_path):
    from vidplug.io.checkpoints import ChunkStore

    ChunkStore(tmp_path / "o.mp4", {"a": 1}, resume=False, overwrite=False)
    with pytest.raises(VidplugError, match="different settings"):
        ChunkStore(tmp_path / "o.mp4", {"a": 2}, resume=True, overwrite=False)


def test_output_equal_to_input_is_refused(clip):
    cfg = _cfg("method=bicubic")
    with pytest.raises(VidplugError, match="is the input"):
        restore_video(clip, clip, cfg, simulate=True, overwrite=True, progress=False,
                      models=tiny_models(cfg))
    assert len(list(clip.iterdir())) == 20


def test_side_by_side_is_streamed_with_all_panels(clip, tmp_path):
    cfg = _cfg("method=bicubic", "chunk.size=4", "chunk.overlap=1")
    sbs = tmp_path / "sbs"
    restore_video(clip, tmp_path / "o", cfg, simulate=True, progress=False, side_by_side=sbs,
                  models=tiny_models(cfg), read={"max_frames": 7})
    frames = read_video(sbs).frames
    assert frames.shape[0] == 7 and frames.shape[-2] == 16
    assert frames.shape[-1] >= 3 * 16  # observation | restored | ground truth side by side


def test_inversion_init_starts_closer_to_the_data(clip, tmp_path):
    first = {}
    for init in ("random", "inversion"):
        cfg = _cfg(f"solver.init={init}", "solver.iters=2", "chunk.size=4", "chunk.overlap=0")
        res = restore_video(clip, tmp_path / init, cfg, simulate=True, progress=False, read={"max_frames": 4},
                            models=tiny_models(cfg))
        first[init] = res.chunks[0]["loss_history"]["data"][0]
    assert first["inversion"] < first["random"]


def _out_of_memory_above(frames: int, calls: list):
    """The dmplug chunk solver, raising CUDA's out-of-memory error for windows longer than ``frames`` (no GPU
    needed)."""
    real = get_method("dmplug")

    def solve(cfg, models, chunk, *args, **kwargs):
        calls.append(chunk.window_len)
        if chunk.window_len > frames:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(cfg, models, chunk, *args, **kwargs)

    return solve


@pytest.mark.slow
def test_out_of_memory_halves_the_chunk_and_matches_the_smaller_plan(clip, tmp_path, caplog):
    cfg = _cfg("chunk.size=8", "chunk.overlap=2", "solver.iters=3")
    models = tiny_models(cfg)
    calls: list[int] = []
    with caplog.at_level("WARNING"):
        res = restore_video(clip, tmp_path / "oom", cfg, simulate=True, keep_frames=True, progress=False,
                            models=models, chunk_solver=_out_of_memory_above(4, calls))
    assert "retrying with chunk size 4" in caplog.text
    assert calls[0] == 8 and calls.count(8) == 1  # later chunks start at the size that fitted
    assert max(calls[1:]) <= 4
    assert [c["frames"] for c in res.chunks] == [[0, 8], [8, 14], [14, 20]]  # checkpoints keep the chunk plan
    assert all(len(c["sub_chunks"]) > 1 for c in res.chunks)
    notes = res.report["notes"]
    assert any(n.startswith("chunk 0: out of GPU memory at 8 frames: restored as sub-chunks of at most 4") for n in notes)
    assert any(n.startswith("chunk 1: out of GPU memory in an earlier chunk") for n in notes)
    small = _cfg("chunk.size=4", "chunk.overlap=2", "solver.iters=3")
    direct = restore_video(clip, tmp_path / "small", small, simulate=True, keep_frames=True, progress=False,
                           models=tiny_models(small))
    assert torch.equal(res.frames, direct.frames)  # anchor seams line up: the same sub-problems, the same result


@pytest.mark.slow
def test_out_of_memory_with_blend_seams_and_at_one_frame(clip, tmp_path):
    cfg = _cfg("chunk.size=8", "chunk.overlap=2", "chunk.seam=blend", "solver.iters=2")
    models = tiny_models(cfg)
    res = restore_video(clip, tmp_path / "blend", cfg, simulate=True, keep_frames=True, progress=False,
                        models=models, chunk_solver=_out_of_memory_above(3, []))
    assert res.frames.shape == (20, 3, 16, 16) and torch.isfinite(res.frames).all()
    assert [sub["frames"] for sub in res.chunks[1]["sub_chunks"]][0] == [6, 8]  # the overlap is restored afresh
    with pytest.raises(VidplugError, match="out of GPU memory even at chunk size 1") as info:
        restore_video(clip, tmp_path / "never", cfg, simulate=True, progress=False, models=models,
                      chunk_solver=_out_of_memory_above(0, []))
    assert "\n" not in str(info.value)
