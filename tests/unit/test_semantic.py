"""CLIP semantic consistency: encoder preprocessing, loss values, gradients, weight loading offline (tiny models)."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import open_clip
import pytest
import torch
from open_clip import CLIP, CLIPTextCfg, CLIPVisionCfg
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

from tests.conftest import make_translating_video
from vidplug.consistency.semantic import (
    CLIP_VIT_B_32_OPENAI,
    ClipImageEncoder,
    SemanticConsistency,
    find_clip_weights,
    load_clip_encoder,
)
from vidplug.errors import MissingWeightsError, VidplugError
from vidplug.weights import catalog

TINY_SIZE = 32  # the tiny tower's input resolution (ViT-B-32 uses 224)


def tiny_clip(seed: int = 0) -> CLIP:
    """A random open_clip CLIP small enough for CPU tests; widths are multiples of 64 like OpenAI's (heads = w/64)."""
    torch.manual_seed(seed)
    model = CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=1, width=64, head_width=64, patch_size=8, image_size=TINY_SIZE),
        text_cfg=CLIPTextCfg(context_length=8, vocab_size=100, width=64, heads=1, layers=1),
        quick_gelu=True,
    ).eval()
    open_clip.set_model_preprocess_cfg(model, asdict(PreprocessCfg(size=TINY_SIZE)))
    return model


class _ScriptableCLIP(torch.nn.Module):
    """Holds a CLIP's parameters under OpenAI's names, so it can be saved as a TorchScript archive like ViT-B-32.pt."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        for name, child in model.named_children():
            self.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _CountingEncoder(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder, self.calls = encoder, 0

    def forward(self, x):
        self.calls += 1
        return self.encoder(x)


@pytest.fixture(scope="module")
def encoder() -> ClipImageEncoder:
    return ClipImageEncoder.from_open_clip(tiny_clip(), name="tiny")


def test_identical_frames_give_zero(encoder):
    frame = make_translating_video(1, 24, 40)
    x = frame.expand(3, -1, -1, -1)
    for to_mean in (False, True):
        assert SemanticConsistency(encoder, to_mean=to_mean)(x, 0).abs().item() < 1e-5


def test_different_frames_give_positive_loss_and_to_mean_adds(encoder):
    x = torch.rand(3, 3, 24, 40, generator=torch.Generator().manual_seed(0))
    pairs = SemanticConsistency(encoder)(x, 0)
    both = SemanticConsistency(encoder, to_mean=True)(x, 0)
    assert pairs.item() > 1e-3
    assert both.item() > pairs.item()
    f = torch.nn.functional.normalize(encoder(x), dim=-1)
    expected = (1 - (f[0] @ f[1]) + 1 - (f[1] @ f[2])) / 2  # mean over the two neighbouring pairs
    assert pairs.item() == pytest.approx(expected.item(), rel=1e-5)


def test_single_frame_and_zero_weight_never_run_the_encoder(encoder):
    counting = _CountingEncoder(encoder)
    assert SemanticConsistency(counting, weight=1.0)(torch.rand(1, 3, 16, 16), 0).item() == 0.0
    assert SemanticConsistency(counting, weight=0.0)(torch.rand(3, 3, 16, 16), 0).item() == 0.0
    assert counting.calls == 0


def test_a_scene_cut_is_not_tied_and_to_mean_pulls_towards_each_shots_mean(encoder):
    shot = make_translating_video(1, 24, 40)
    other = make_translating_video(1, 24, 40, seed=1).flip(1)
    x = torch.cat([shot.expand(2, -1, -1, -1), other.expand(2, -1, -1, -1)])  # two still shots of 2 frames
    for to_mean in (False, True):
        assert SemanticConsistency(encoder, to_mean=to_mean)(x, 0).item() > 1e-3  # the cut pair counts
        assert SemanticConsistency(encoder, to_mean=to_mean, cuts=[1])(x, 0).abs().item() < 1e-5
    x = x.clone().requires_grad_(True)
    SemanticConsistency(encoder, cuts=[1])(x + 0.1 * torch.rand_like(x), 0).backward()
    assert x.grad[:2].abs().sum() > 0  # still tied within each shot
    f = torch.nn.functional.normalize(encoder(x.detach()), dim=-1)
    partial = SemanticConsistency(encoder, cuts=[0])(x.detach(), 0)
    expected = ((1 - f[1] @ f[2]) + (1 - f[2] @ f[3])) / 2  # the mean over the pairs left
    assert partial.item() == pytest.approx(expected.item(), rel=1e-5)
    assert SemanticConsistency(encoder, cuts=[0, 1, 2])(x.detach(), 0).item() == 0.0  # nothing left to tie


def test_the_semantic_term_leaves_the_pairs_the_flow_check_drops_untied(encoder):
    from tests.conftest import tiny_run_config
    from vidplug.consistency.flow import FlowModel
    from vidplug.methods.dmplug import consistency_terms
    from vidplug.solver.chunks import plan_chunks

    class CutAt1(FlowModel):  # zero motion, with forward and backward flows that contradict each other between 1, 2
        name = "cut"

        def _flow(self, src, dst):
            raise AssertionError("flow_pair gives both directions")

        calls = 0

        def flow_pair(self, frames, step=1):
            CutAt1.calls += 1
            fw = torch.zeros(frames.shape[0] - step, 2, *frames.shape[-2:])
            bw = fw.clone()
            bw[1, 0] += 5.0
            return fw, bw

    class Models:
        clip, flow = encoder, CutAt1()

    cfg = tiny_run_config("consistency.semantic_weight=0.1")
    chunk, init = plan_chunks(4, 4, 0)[0], torch.rand(4, 3, 16, 16)
    (term,) = consistency_terms(cfg.consistency, Models(), chunk, init, None)
    assert term.cuts == [1] and CutAt1.calls == 1
    with_pixel = tiny_run_config("consistency.semantic_weight=0.1", "consistency.pixel_weight=0.05")
    semantic, pixel = consistency_terms(with_pixel.consistency, Models(), chunk, init, None)
    assert semantic.cuts == [1] and pixel.name == "pixel"
    assert CutAt1.calls == 2  # the pixel term's flows and mask serve the semantic term too
    Models.flow = None  # a semantic-only run has no flows: every pair is tied
    (term,) = consistency_terms(cfg.consistency, Models(), chunk, init, None)
    assert term.cuts == []


def test_gradient_reaches_input_and_encoder_stays_frozen(encoder):
    x = torch.rand(3, 3, 20, 28, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    encoder.train()  # must not switch the tower to training mode
    loss = SemanticConsistency(encoder, weight=0.5)(x, 0)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert not encoder.tower.training
    assert all(not p.requires_grad and p.grad is None for p in encoder.parameters())


def test_gradient_reaches_seed_through_ddim_reverse(encoder, tiny_prior):
    from vidplug.prior.base import to_unit_range
    from vidplug.prior.ddim import ddim_reverse, ddim_timesteps

    z = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    x = to_unit_range(ddim_reverse(z, tiny_prior, ddim_timesteps(2)))  # (3, 3, 16, 16) frames
    SemanticConsistency(encoder)(x, 0).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_preprocessing_matches_open_clip_eval_transform(encoder):
    g = torch.Generator().manual_seed(3)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16, generator=g), size=(48, 64), mode="bilinear")
    ours = encoder.preprocess(x)[0]  # (3, 32, 32)
    pil = Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    reference = image_transform_v2(PreprocessCfg(size=TINY_SIZE), is_train=False)(pil)
    assert ours.shape == reference.shape == (3, TINY_SIZE, TINY_SIZE)
    # PIL works on uint8; torch's antialiased bicubic matches it to quantisation level
    assert (ours - reference).abs().max() < 0.03
    # a frame of CLIP's mean colour normalises to zero: mean/std are the model's, not literals
    grey = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1).expand(1, 3, 40, 50)
    assert encoder.preprocess(grey).abs().max() < 1e-5


def test_mean_std_come_from_the_models_preprocess_config():
    model = tiny_clip()
    cfg = asdict(PreprocessCfg(size=TINY_SIZE, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)))
    open_clip.set_model_preprocess_cfg(model, cfg)
    enc = ClipImageEncoder.from_open_clip(model)
    out = enc.preprocess(torch.full((1, 3, TINY_SIZE, TINY_SIZE), 0.75))
    torch.testing.assert_close(out, torch.ones_like(out))


def test_any_image_tower_and_grey_frames():
    tower = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    enc = ClipImageEncoder(tower, 16, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
    assert enc(torch.rand(2, 1, 20, 30)).shape == (2, 4)
    with pytest.raises(VidplugError):
        enc(torch.rand(2, 2, 20, 30))


def test_load_local_safetensors_file_offline(tmp_path):
    from safetensors.torch import save_file

    model = tiny_clip(seed=4)
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    arch = {
        "embed_dim": 16,
        "quick_gelu": True,
        "vision_cfg": {"image_size": TINY_SIZE, "layers": 1, "width": 64, "head_width": 64, "patch_size": 8},
        "text_cfg": {"context_length": 8, "vocab_size": 100, "width": 64, "heads": 1, "layers": 1},
    }
    (cfg_dir / "vidplug-tiny-test.json").write_text(json.dumps(arch))
    open_clip.add_model_config(cfg_dir)
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    enc = load_clip_encoder("vidplug-tiny-test", str(weights), device="cpu")
    x = torch.rand(2, 3, TINY_SIZE, TINY_SIZE, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(enc(x), model.visual(enc.preprocess(x)))


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")
def test_load_openai_torchscript_file_offline(tmp_path):
    model = tiny_clip(seed=6)
    path = tmp_path / "tiny-openai.pt"
    torch.jit.script(_ScriptableCLIP(model)).save(str(path))
    enc = load_clip_encoder("ViT-B-32", str(path))  # the architecture comes from the archive
    assert enc.image_size == (TINY_SIZE, TINY_SIZE)
    x = torch.rand(2, 3, TINY_SIZE, TINY_SIZE, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        # OpenAI checkpoints are built through fp16, hence the tolerance
        torch.testing.assert_close(enc(x), model.visual(enc.preprocess(x)), atol=5e-3, rtol=5e-3)


def test_missing_default_weights_offline_name_the_file(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("VIDPLUG_OFFLINE", "1")
    monkeypatch.setenv("VIDPLUG_CACHE", str(tmp_path / "vidplug"))
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.cache/clip
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    assert find_clip_weights() is None
    with pytest.raises(MissingWeightsError) as info:
        load_clip_encoder()
    msg = str(info.value)
    assert "\n" not in msg
    for part in ("ViT-B-32.pt", "337.6 MB", CLIP_VIT_B_32_OPENAI.url, str(tmp_path / "vidplug" / "ViT-B-32.pt")):
        assert part in msg
    assert catalog()["clip-vit-b-32-openai"] is CLIP_VIT_B_32_OPENAI


def test_bad_model_tag_or_path_raise_one_line_errors(tmp_path):
    with pytest.raises(VidplugError, match="unknown CLIP weights"):
        load_clip_encoder("ViT-B-32", "no-such-tag")
    with pytest.raises(VidplugError, match="unknown CLIP model"):
        load_clip_encoder("ViT-Nope", "openai")
    with pytest.raises(VidplugError, match="does not exist"):
        load_clip_encoder("ViT-B-32", str(tmp_path / "missing.pt"))
    junk = tmp_path / "junk.safetensors"
    from safetensors.torch import save_file

    save_file({"nothing": torch.zeros(1)}, str(junk))
    with pytest.raises(VidplugError, match="cannot load CLIP weights"):
        load_clip_encoder("ViT-B-32", str(junk))
