"""Optical flow: DIS against known synthetic motion, warping and occlusion masks, RAFT plumbing, the auto fallback."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from vidplug.consistency.flow import RAFT_LARGE, DISFlow, FlowModel, RAFTFlow, load_flow_model
from vidplug.consistency.warp import flow_warp, occlusion_mask
from vidplug.errors import MissingWeightsError, VidplugError

INTERIOR = (slice(None), slice(None), slice(10, -10), slice(10, -10))  # away from borders where flow is ill-posed


def smooth_texture(h: int, w: int, seed: int = 0, cell: int = 4) -> torch.Tensor:
    """(3, h, w) smooth random texture in [0, 1] (bicubic upsampling of a coarse random grid)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // cell + 3, w // cell + 3, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)[0]


def translating_video(t: int, h: int, w: int, dx: int, dy: int, seed: int = 0) -> torch.Tensor:
    """(t, 3, h, w): frame i is a window of one texture shifted by (i*dx, i*dy), so content moves by (-dx, -dy)."""
    m = abs(dx) * t + abs(dy) * t + 4
    tex = smooth_texture(h + 2 * m, w + 2 * m, seed)
    return torch.stack([tex[:, m + i * dy : m + i * dy + h, m + i * dx : m + i * dx + w] for i in range(t)])


def moving_square(h: int = 64, w: int = 64, size: int = 20, x0: int = 12, y0: int = 22, step: int = 4):
    """Two frames: a textured square moving ``step`` px right over a static textured background."""
    bg = smooth_texture(h, w, seed=1)
    fg = smooth_texture(size, size, seed=2, cell=2) * 0.5 + 0.5
    frames = []
    for i in range(2):
        f = bg.clone()
        f[:, y0 : y0 + size, x0 + i * step : x0 + i * step + size] = fg
        frames.append(f)
    return torch.stack(frames)


@pytest.mark.parametrize("dx,dy", [(1, 0), (2, 1), (-3, 2)])
def test_dis_recovers_integer_translation(dx, dy):
    video = translating_video(3, 64, 64, dx, dy)
    fw, bw = DISFlow().flow_pair(video)
    assert fw.shape == bw.shape == (2, 2, 64, 64)
    assert fw.dtype == torch.float32
    true_fw = torch.tensor([-dx, -dy], dtype=torch.float32).view(1, 2, 1, 1)
    assert (fw - true_fw)[INTERIOR].abs().max() < 0.25
    assert (bw + true_fw)[INTERIOR].abs().max() < 0.25


def test_flow_pair_between_frames_two_apart_sees_twice_the_motion():
    fw, bw = DISFlow().flow_pair(translating_video(4, 64, 64, 1, 1), step=2)
    assert fw.shape == bw.shape == (2, 2, 64, 64)
    true_fw = torch.tensor([-2.0, -2.0]).view(1, 2, 1, 1)
    assert (fw - true_fw)[INTERIOR].abs().max() < 0.25
    assert (bw + true_fw)[INTERIOR].abs().max() < 0.25
    with pytest.raises(VidplugError, match="at least 3 frames"):
        DISFlow().flow_pair(translating_video(2, 64, 64, 1, 1), step=2)


def test_flow_warp_aligns_next_frame_with_true_and_dis_flow():
    video = translating_video(3, 64, 64, 2, -1)
    true_fw = torch.tensor([-2.0, 1.0]).view(1, 2, 1, 1).expand(2, 2, 64, 64)
    exact = flow_warp(video[1:], true_fw)
    assert torch.allclose(exact[INTERIOR], video[:-1][INTERIOR], atol=1e-5)
    fw, _ = DISFlow().flow_pair(video)
    approx = flow_warp(video[1:], fw)
    assert (approx - video[:-1])[INTERIOR].pow(2).mean() < 1e-4
    # a wrong flow must not align: the check above is not trivially satisfied
    assert (flow_warp(video[1:], torch.zeros_like(fw)) - video[:-1])[INTERIOR].pow(2).mean() > 1e-3


def test_occlusion_mask_true_flow_marks_covered_and_uncovered_regions():
    h = w = 64
    size, x0, y0, step = 20, 12, 22, 4
    fw = torch.zeros(1, 2, h, w)
    bw = torch.zeros(1, 2, h, w)
    fw[0, 0, y0 : y0 + size, x0 : x0 + size] = step  # square pixels of frame 0 move right
    bw[0, 0, y0 : y0 + size, x0 + step : x0 + step + size] = -step  # square pixels of frame 1 came from the left
    valid_0 = occlusion_mask(fw, bw)[0, 0]  # pixels of frame 0
    valid_1 = occlusion_mask(bw, fw)[0, 0]  # pixels of frame 1
    rows = slice(y0 + 1, y0 + size - 1)
    # background in front of the square is covered in frame 1: invalid for frame 0
    assert valid_0[rows, x0 + size : x0 + size + step].sum() == 0
    # background behind the square is uncovered in frame 1 (disocclusion): invalid for frame 1
    assert valid_1[rows, x0 : x0 + step].sum() == 0
    # the moving square's interior and the static background stay valid
    assert valid_0[y0 + 2 : y0 + size - 2, x0 + 2 : x0 + size - 2].all()
    static = torch.ones(h, w, dtype=torch.bool)
    static[y0 - 2 : y0 + size + 2, x0 - 2 : x0 + size + step + 2] = False
    assert valid_0[static].all() and valid_1[static].all()


def test_occlusion_mask_without_motion_boundaries_keeps_the_forward_backward_check_only():
    h = w = 32
    xs = torch.arange(w, dtype=torch.float32).expand(h, w)
    fw = torch.zeros(1, 2, h, w)
    fw[0, 0] = 0.5 * xs  # a zoom: frame 0's pixel x is at 1.5 x in frame 1, a flow gradient everywhere
    bw = torch.zeros(1, 2, h, w)
    bw[0, 0] = -xs / 3  # its exact inverse, so the forward-backward check passes everywhere
    bw[0, 0, 4:8, 2:6] += 3.0  # except where the backward flow disagrees
    lai = occlusion_mask(fw, bw)[0, 0]
    check_only = occlusion_mask(fw, bw, motion_boundaries=False)[0, 0]
    # |grad u|^2 = 0.25 beats 0.01 |u|^2 + 0.002 wherever u < 5 px: Lai's test calls those pixels a motion boundary
    assert lai[:, 1:9].sum() == 0 and check_only[:, 1:9].sum() > 0
    assert check_only[10:, :21].all()  # the consistent pixels all stay (those that land inside frame 1)
    # the forward-backward failures go with both settings: frame 0's pixels landing in the disagreeing patch
    landing = (xs * 1.5 >= 2) & (xs * 1.5 < 5)
    rows = slice(4, 8)
    assert check_only[rows][landing[rows]].sum() == 0 and lai[rows][landing[rows]].sum() == 0
    assert torch.equal(occlusion_mask(fw, bw, motion_boundaries=True), occlusion_mask(fw, bw))  # the default


def test_occlusion_mask_with_dis_flow_on_moving_square():
    size, x0, y0, step = 20, 12, 22, 4
    fw, bw = DISFlow().flow_pair(moving_square(size=size, x0=x0, y0=y0, step=step))
    valid_0 = occlusion_mask(fw, bw)[0, 0]
    valid_1 = occlusion_mask(bw, fw)[0, 0]
    rows = slice(y0 + 3, y0 + size - 3)
    assert valid_0[rows, x0 + size : x0 + size + step].mean() < 0.5  # covered
    assert valid_1[rows, x0 : x0 + step].mean() < 0.5  # uncovered
    static = torch.ones(64, 64, dtype=torch.bool)
    static[y0 - 8 : y0 + size + 8, x0 - 8 : x0 + size + step + 8] = False
    assert valid_0[static].mean() > 0.95 and valid_1[static].mean() > 0.95


def test_flow_inputs_are_checked_and_grayscale_accepted():
    model = DISFlow()
    with pytest.raises(VidplugError, match="same shape"):
        model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 30))
    with pytest.raises(VidplugError, match="at least 2 frames"):
        model.flow_pair(torch.rand(1, 3, 32, 32))
    video = translating_video(2, 64, 64, 1, 0)
    gray = video.mean(1, keepdim=True)
    flow = model(gray[:1], gray[1:])
    assert flow.shape == (1, 2, 64, 64)
    assert (flow[:, 0][:, 10:-10, 10:-10] + 1).abs().median() < 0.25


def test_load_flow_model_names():
    assert load_flow_model("dis").name == "opencv_dis"
    assert load_flow_model("opencv_dis").name == "opencv_dis"
    assert load_flow_model("opencv_farneback").name == "opencv_farneback"
    with pytest.raises(VidplugError, match="unknown optical flow model"):
        load_flow_model("pwc")


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """A torch hub cache with nothing in it (weights never found, downloads disabled by conftest)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIDPLUG_OFFLINE", "1")
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_auto_falls_back_to_dis_offline_with_warning(empty_torch_home, caplog):
    assert RAFT_LARGE.path.parent == empty_torch_home
    with caplog.at_level(logging.WARNING, logger="vidplug.consistency.flow"):
        model = load_flow_model("auto")
    assert isinstance(model, DISFlow) and model.name == "opencv_dis"
    message = " ".join(r.getMessage() for r in caplog.records)
    assert RAFT_LARGE.filename in message and str(empty_torch_home) in message


def test_raft_offline_without_weights_raises(empty_torch_home):
    with pytest.raises(MissingWeightsError, match=RAFT_LARGE.filename):
        load_flow_model("raft")


def test_raft_plumbing_with_random_weights(empty_torch_home):
    """RAFT with random weights at the cached path: found by 'auto', odd and tiny sizes padded and cropped back."""
    from torchvision.models.optical_flow import raft_large

    torch.manual_seed(0)
    empty_torch_home.mkdir(parents=True)
    torch.save(raft_large(weights=None).state_dict(), RAFT_LARGE.path)
    model = load_flow_model("auto")
    assert isinstance(model, RAFTFlow) and model.name == "raft_large"
    model.iterations, model.batch_size = 2, 1  # speed; batch_size 1 also exercises chunking
    video = torch.rand(3, 3, 36, 44)
    fw, bw = model.flow_pair(video)
    assert fw.shape == bw.shape == (2, 2, 36, 44)
    assert torch.isfinite(fw).all() and torch.isfinite(bw).all()
    # batched pairs give the same flow as one pair at a time (no cross-talk between batch items)
    single = model(video[1:2], video[2:3])
    assert torch.allclose(single, fw[1:2], atol=1e-4)


def test_flow_model_is_abstract():
    with pytest.raises(TypeError):
        FlowModel()  # type: ignore[abstract]


@pytest.mark.parametrize("dx,dy", [(1, 0), (2, 1)])
def test_farneback_recovers_integer_translation(dx, dy):
    from vidplug.consistency.flow import FarnebackFlow

    video = translating_video(3, 64, 64, dx, dy)
    model = load_flow_model("farneback")
    assert isinstance(model, FarnebackFlow) and model.name == "opencv_farneback"
    fw, bw = model.flow_pair(video)
    true_fw = torch.tensor([-dx, -dy], dtype=torch.float32).view(1, 2, 1, 1)
    assert (fw - true_fw)[INTERIOR].abs().mean() < 0.1
    assert (bw + true_fw)[INTERIOR].abs().mean() < 0.1


def test_farneback_keeps_more_of_the_motion_of_blurred_frames_than_dis():
    """Box-blurred frames (what a temporal+deblur estimate looks like): Farneback's error stays below DIS's."""
    video = translating_video(3, 64, 64, 2, 1)
    blurred = F.avg_pool2d(F.pad(video, (3, 3, 3, 3), mode="replicate"), 7, stride=1)
    true_fw = torch.tensor([-2.0, -1.0]).view(1, 2, 1, 1)
    err = {name: (load_flow_model(name).flow_pair(blurred)[0] - true_fw)[INTERIOR].abs().mean()
           for name in ("dis", "farneback")}
    assert err["farneback"] < err["dis"]


def test_the_warping_error_is_never_scored_with_farneback():
    from tests.conftest import tiny_run_config
    from vidplug.models import Models

    models = Models(tiny_run_config("consistency.flow_model=farneback", "consistency.pixel_weight=0.05"),
                    torch.device("cpu"))
    assert models.method_flow().name == "opencv_farneback"
    assert models.metrics_flow().name in ("opencv_dis", "raft_large")
    dis = Models(tiny_run_config("consistency.flow_model=dis", "consistency.pixel_weight=0.05"), torch.device("cpu"))
    assert dis.metrics_flow().name == dis.method_flow().name == "opencv_dis"


def test_dis_at_full_resolution_follows_large_motion_in_a_small_frame():
    """A 10-pixel shift of 128x128 frames, six textures: the medium preset's single pyramid level (64x64) often loses
    it, the full-resolution level keeps more of it (measured mean end-point error 5.7 -> 4.0 px); a 6-pixel shift
    stays exact with both."""
    err = {False: [], True: []}
    for seed in range(6):
        texture = smooth_texture(208, 208, seed=seed, cell=4)
        for shift, errors in ((10, err), (6, None)):
            video = torch.stack([texture[:, 40:168, 40 + i * shift : 168 + i * shift] for i in range(2)])
            true_fw = torch.tensor([-shift, 0.0]).view(1, 2, 1, 1)
            for full in (False, True):
                e = float((DISFlow(full_resolution=full).flow_pair(video)[0] - true_fw)[INTERIOR].norm(dim=1).mean())
                if errors is None:
                    assert e < 0.05, (seed, full, e)
                else:
                    errors[full].append(e)
    assert all(f <= m + 0.5 for f, m in zip(err[True], err[False], strict=True)), err
    assert sum(err[True]) < 0.8 * sum(err[False]), err
    assert (DISFlow().name, DISFlow(full_resolution=True).name) == ("opencv_dis", "opencv_dis_full")
    assert load_flow_model("dis", dis_full_resolution=True).name == "opencv_dis_full"


def test_dis_full_resolution_blends_the_two_levels_without_a_step(monkeypatch):
    """Where the per-pixel choice switches from one level to the other, the flow passes through their 3x3 average
    instead of jumping (a step fails the forward-backward and motion-boundary checks); elsewhere it is the chosen
    level's flow."""
    import cv2
    import numpy as np

    from vidplug.consistency import flow as flow_module

    class FakeDIS:  # the half-resolution level says 1 px, the full-resolution one 3 px
        def __init__(self):
            self.full = False

        def setFinestScale(self, scale):  # noqa: N802 (OpenCV's name)
            self.full = scale == 0

        def calc(self, a, b, _):
            return np.full(a.shape + (2,), 3.0 if self.full else 1.0, np.float32)

    monkeypatch.setattr(cv2, "DISOpticalFlow_create", lambda preset: FakeDIS())
    left = np.tile((np.arange(16) < 8).astype(np.float32), (16, 1))
    # the full level's residual (computed first) is the lower one on the left half, the half level's elsewhere
    residuals = iter([1.0 - left, np.full((16, 16), 0.5, np.float32)])
    monkeypatch.setattr(flow_module, "_local_warp_residual", lambda a, b, f: next(residuals))
    frame = np.zeros((16, 16), np.uint8)
    out = DISFlow(full_resolution=True)._pair(frame, frame)[..., 0]  # (16, 16), channel x
    assert np.allclose(out[:, :7], 3.0) and np.allclose(out[:, 9:], 1.0)
    assert np.allclose(out[:, 7], 1.0 + 2.0 * 2 / 3) and np.allclose(out[:, 8], 1.0 + 2.0 / 3)  # no jump of 2 px


def test_each_run_sets_the_dis_resolution_and_the_metric_keeps_the_medium_preset():
    from tests.conftest import tiny_run_config
    from vidplug.config import apply_overrides
    from vidplug.models import Models

    cfg = tiny_run_config("consistency.flow_model=dis", "consistency.pixel_weight=0.05")
    full = apply_overrides(cfg, ["consistency.dis_full_resolution=true"])
    models = Models(cfg, torch.device("cpu"))  # shared by runs of different tasks, as in bench_quality
    assert models.run_flow(full).name == "opencv_dis_full"
    assert models.metrics_flow().name == "opencv_dis" and not models.metrics_flow().full_resolution
    assert models.metrics_flow() is not models.flow
    assert models.method_flow(cfg).name == "opencv_dis"  # the next run's own setting
    assert models.run_flow(full) is models.flow


def test_dis_smoothing_averages_out_patch_noise_and_keeps_the_motion(monkeypatch):
    """Where DIS's patch-wise vectors scatter around the motion (blurred or noisy estimates: here a fake DIS, the
    true translation plus pixel-wise noise), the smoothed field errs far less and keeps the motion. Off (0), the flow
    is DIS's own to the bit."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    true = np.array([2.0, -1.0], np.float32)

    class ScatteredDIS:
        def calc(self, a, b, _):
            return (true + rng.normal(0.0, 1.0, a.shape + (2,))).astype(np.float32)

    monkeypatch.setattr(cv2, "DISOpticalFlow_create", lambda preset: ScatteredDIS())
    frames = translating_video(2, 64, 64, dx=2, dy=-1)
    target = torch.from_numpy(true).view(1, 2, 1, 1)
    flows, err = {}, {}
    for sigma in (0.0, 3.0):
        rng = np.random.default_rng(0)  # the same scatter for both
        flows[sigma] = DISFlow(smoothing=sigma)(frames[:1], frames[1:])
        err[sigma] = (flows[sigma] - target)[INTERIOR].norm(dim=1).mean().item()
        assert (flows[sigma][INTERIOR].mean(dim=(2, 3)) - target.view(1, 2)).abs().max() < 0.1
    assert err[3.0] < 0.2 * err[0.0], err
    rng = np.random.default_rng(0)
    raw = torch.from_numpy(ScatteredDIS().calc(np.zeros((64, 64), np.uint8), None, None)).permute(2, 0, 1)[None]
    assert torch.equal(flows[0.0], raw)


def test_each_run_sets_the_dis_smoothing_and_the_metric_stays_raw():
    from tests.conftest import tiny_run_config
    from vidplug.config import apply_overrides
    from vidplug.models import Models

    cfg = tiny_run_config("consistency.flow_model=dis", "consistency.pixel_weight=0.05")
    smoothed = apply_overrides(cfg, ["consistency.dis_smoothing=3"])
    models = Models(cfg, torch.device("cpu"))
    assert models.run_flow(smoothed).smoothing == 3.0
    assert models.metrics_flow().smoothing == 0.0  # the warping error is scored on DIS's own flow
    assert models.method_flow(cfg).smoothing == 0.0  # the next run's own setting
    with pytest.raises(VidplugError, match="dis_smoothing must be >= 0"):
        apply_overrides(cfg, ["consistency.dis_smoothing=-1"])
