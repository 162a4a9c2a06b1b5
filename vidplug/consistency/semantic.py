"""Semantic temporal consistency: neighbouring frames should have similar CLIP image features.

:class:`ClipImageEncoder` wraps any image tower (an open_clip ``model.visual`` or, in tests, a tiny random network)
with CLIP's preprocessing done on tensors, so gradients flow from the features back to the frames.
:func:`load_clip_encoder` builds it from open_clip weights (default ViT-B-32, OpenAI weights) or a local file.
:class:`SemanticConsistency` is the loss term the solver adds: ``1 - cos`` between neighbouring frames' features.

A semantic weight of 0 means "off": the pipeline only builds the term (and only loads CLIP) for weight > 0.
"""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidplug.errors import MissingWeightsError, VidplugError
from vidplug.weights import WeightSpec, find, offline, register, require

log = logging.getLogger(__name__)

# OpenAI's own ViT-B/32 checkpoint (a TorchScript archive, fp16), the file open_clip's "openai" tag and OpenAI's
# clip package download; its URL carries the full sha256.
CLIP_VIT_B_32_OPENAI = register(
    WeightSpec(
        name="clip-vit-b-32-openai",
        filename="ViT-B-32.pt",
        url="https://openaipublic.azureedge.net/clip/models/"
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
        size_bytes=353_976_522,
        description="CLIP ViT-B/32 (OpenAI) image encoder for the semantic consistency loss",
        sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    )
)
# (open_clip model name, tag) -> the spec vidplug downloads; other tags go through open_clip's own downloader
_SPECS = {("ViT-B-32", "openai"): CLIP_VIT_B_32_OPENAI}
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


class ClipImageEncoder(nn.Module):
    """A frozen image tower with CLIP's preprocessing done on tensors (differentiable w.r.t. the input).

    Preprocessing follows open_clip's eval transform: resize so the image covers ``image_size`` (the shorter side
    for square sizes) with bicubic + antialias, center crop, normalise with ``mean``/``std``. Unlike the PIL
    transform it neither quantises nor clamps, so gradients reach every input pixel.

    Args:
        tower: module mapping ``(N, 3, S, S)`` normalised images to ``(N, D)`` features (open_clip ``model.visual``).
        image_size: the tower's input size ``S`` (int) or ``(height, width)``.
        mean, std: per-channel normalisation, from the model's preprocess config.
        name: identifier for reports.

    The tower's parameters are frozen and it always stays in eval mode, whatever ``train()`` is called with.
    """

    def __init__(
        self,
        tower: nn.Module,
        image_size: int | Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        name: str = "custom",
    ) -> None:
        super().__init__()
        self.tower = tower.eval().requires_grad_(False)
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(int(s) for s in image_size)
        self.image_size: tuple[int, int] = size  # (height, width)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.name = name

    @classmethod
    def from_open_clip(cls, model: nn.Module, name: str = "open_clip") -> ClipImageEncoder:
        """Keep only the image tower of an open_clip model; size/mean/std come from its preprocess config."""
        import open_clip

        cfg = open_clip.get_model_preprocess_cfg(model)
        visual = model.visual
        size = cfg.get("size", getattr(visual, "image_size", 224))
        return cls(visual, size, cfg["mean"], cfg["std"], name=name)

    def train(self, mode: bool = True) -> ClipImageEncoder:
        # the encoder is a fixed feature extractor: dropout / norm statistics must never switch to training
        return self

    def preprocess(self, x: Tensor) -> Tensor:
        """Frames ``(N, C, H, W)`` in [0, 1] (C = 3, or 1 = grey, repeated) -> ``(N, 3, S_h, S_w)`` normalised."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise VidplugError(
                f"the CLIP encoder expects frames (N, 3, H, W) or (N, 1, H, W), got shape {tuple(x.shape)}; "
                "pass RGB or grey frames"
            )
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        th, tw = self.image_size
        h, w = x.shape[-2:]
        if (h, w) != (th, tw):
            scale = max(th / h, tw / w)  # cover the target, like torchvision's Resize(shorter side)
            nh, nw = max(th, int(h * scale)), max(tw, int(w * scale))  # truncation, as torchvision does
            x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
            top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
            x = x[:, :, top : top + th, left : left + tw]  # (N, 3, S_h, S_w) center crop
        mean, std = self.mean.to(x), self.std.to(x)
        return (x - mean) / std

    def forward(self, x: Tensor) -> Tensor:
        """Frames ``(N, C, H, W)`` in [0, 1] -> image features ``(N, D)`` (not normalised)."""
        param = next(self.tower.parameters(), None)
        dtype = param.dtype if param is not None else x.dtype
        return self.tower(self.preprocess(x).to(dtype)).float()


class SemanticConsistency:
    """CLIP feature consistency between neighbouring frames, a solver loss term.

    ``loss = mean_t (1 - cos(f_t, f_{t+1}))`` over the ``T - 1`` neighbouring pairs; with ``to_mean`` also
    ``+ mean_t (1 - cos(f_t, mean_s f_s))``, pulling every frame towards the chunk's mean feature (the mean of the
    unit-normalised features). Zero for identical frames and for a single frame; in [0, 2] per part.

    Build it only for ``weight > 0``: the pipeline never loads CLIP when the semantic weight is 0. A term built with
    ``weight == 0`` anyway returns 0 without running the encoder.

    Args:
        encoder: a :class:`ClipImageEncoder` (or any module mapping frames ``(T, C, H, W)`` in [0, 1] to ``(T, D)``).
        weight: multiplies the term in the solver's total loss (the solver applies it).
        to_mean: add the term towards the chunk's mean feature.
        cuts: pairs ``t`` (frames ``t`` and ``t + 1``) that are not tied, scene cuts: the means run over the other
            pairs, and ``to_mean`` pulls each frame towards its own shot's mean feature.
    """

    name = "semantic"

    def __init__(self, encoder: nn.Module, weight: float = 1.0, to_mean: bool = False,
                 cuts: list[int] | tuple[int, ...] = ()) -> None:
        self.encoder = encoder
        self.weight = float(weight)
        self.to_mean = bool(to_mean)
        self.cuts = sorted({int(t) for t in cuts})

    def __call__(self, x: Tensor, iteration: int = 0) -> Tensor:
        """``x (T, C, H, W)`` in [0, 1], differentiable -> scalar loss (unweighted)."""
        tied = [t for t in range(x.shape[0] - 1) if t not in self.cuts]
        if not tied or self.weight == 0:
            return x.new_zeros(())
        f = F.normalize(self.encoder(x), dim=-1)  # (T, D) unit features
        loss = (1.0 - (f[tied] * f[[t + 1 for t in tied]]).sum(-1)).mean()  # neighbouring pairs within a shot
        if self.to_mean:
            bounds = [0] + [t + 1 for t in self.cuts if t < x.shape[0] - 1] + [x.shape[0]]
            shots = [f[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            centres = [F.normalize(g.mean(0, keepdim=True), dim=-1).expand_as(g) for g in shots]  # (T, D) in all
            loss = loss + (1.0 - (f * torch.cat(centres)).sum(-1)).mean()
        return loss.to(x.dtype)


def _looks_like_path(pretrained: str) -> bool:
    return pretrained.lower().endswith(_WEIGHT_SUFFIXES) or os.sep in pretrained or pretrained.startswith("~")


def _cached_by_open_clip(cfg: dict) -> Path | None:
    """A copy open_clip (Hugging Face cache) or OpenAI's clip package (``~/.cache/clip``) already downloaded."""
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(hub)  # "org/repo/" -> ("org/repo", ""): open_clip's default names
        for name in [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]:
            hit = try_to_load_from_cache(repo_id, name)
            if isinstance(hit, str) and os.path.isfile(hit):
                return Path(hit)
    url = cfg.get("url", "")
    if url:
        path = Path.home() / ".cache" / "clip" / os.path.basename(url)
        if path.is_file():
            return path
    return None


def _pretrained_cfg(model: str, pretrained: str) -> dict:
    import open_clip

    if model not in open_clip.list_models():
        raise VidplugError(
            f"unknown CLIP model '{model}'; use an open_clip architecture name such as ViT-B-32 "
            "(see open_clip.list_models())"
        )
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
        raise VidplugError(
            f"unknown CLIP weights '{pretrained}' for {model}; use one of its open_clip tags ({tags}) "
            "or a local .pt/.bin/.safetensors file path"
        )
    return cfg


def find_clip_weights(model: str = "ViT-B-32", pretrained: str = "openai") -> Path | None:
    """The local weight file for ``(model, pretrained)`` if one is present (never downloads), else None."""
    if _looks_like_path(pretrained):
        path = Path(pretrained).expanduser()
        return path if path.is_file() else None
    spec = _SPECS.get((model, pretrained.lower()))
    return (find(spec) if spec else None) or _cached_by_open_clip(_pretrained_cfg(model, pretrained))


def resolve_clip_weights(model: str = "ViT-B-32", pretrained: str = "openai") -> Path:
    """A local weight file for ``(model, pretrained)``: the file itself, a cached copy, or a download.

    Raises:
        VidplugError: unknown model/tag, or a path that does not exist.
        MissingWeightsError: offline (or the download failed) and nothing cached; names the file to fetch.
    """
    if _looks_like_path(pretrained):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise VidplugError(
                f"CLIP weights file {path} does not exist; pass an existing .pt/.bin/.safetensors file "
                "or an open_clip tag such as 'openai'"
            )
        return path
    found = find_clip_weights(model, pretrained)
    if found is not None:
        return found
    spec = _SPECS.get((model, pretrained.lower()))
    if spec is not None:
        return require(spec)
    cfg = _pretrained_cfg(model, pretrained)
    where = cfg.get("hf_hub") or cfg.get("url")
    if offline():
        raise MissingWeightsError(
            f"CLIP weights {model}/{pretrained} are not cached and cannot be downloaded (offline); fetch them from "
            f"{where} with open_clip, or pass the downloaded file's path as the CLIP weights"
        )
    import open_clip

    try:
        return Path(open_clip.download_pretrained(cfg))
    except Exception as exc:  # open_clip wraps hub/URL failures in several exception types
        raise MissingWeightsError(
            f"CLIP weights {model}/{pretrained} could not be downloaded from {where} ({exc}); "
            "download them and pass the file's path as the CLIP weights"
        ) from exc


def _is_torchscript(path: Path) -> bool:
    # OpenAI's .pt checkpoints are TorchScript archives, which torch.load(weights_only=True) refuses
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in z.namelist())


def load_clip_encoder(
    model: str = "ViT-B-32",
    pretrained: str = "openai",
    device: str | torch.device = "cpu",
    quick_gelu: bool | None = None,
) -> ClipImageEncoder:
    """Load a CLIP image encoder through open_clip.

    Args:
        model: open_clip architecture name (``ViT-B-32``, ``ViT-B-16``, ``ViT-L-14``, ...).
        pretrained: open_clip weights tag (``openai``, ``laion2b_s34b_b79k``, ...) or a local
            ``.pt``/``.pth``/``.bin``/``.safetensors`` file. OpenAI ``.pt`` TorchScript files load with the
            architecture stored in them.
        device: where the encoder runs.
        quick_gelu: use QuickGELU activations (OpenAI-trained weights need it). None: True for the ``openai`` tag
            (from open_clip's tag config) and for files whose path contains "openai", else the architecture's default.

    Returns:
        ClipImageEncoder: frozen, eval mode, fp32, on ``device``.

    Raises:
        MissingWeightsError: weights absent offline (the message names the file, size, URL and destination).
        VidplugError: unknown model/tag, or a file that does not fit the architecture.
    """
    import open_clip

    path = resolve_clip_weights(model, pretrained)
    label = f"{model}:{pretrained if not _looks_like_path(pretrained) else path.name}"
    if quick_gelu is None:
        if _looks_like_path(pretrained):
            quick_gelu = "openai" in str(path).lower()
        else:
            quick_gelu = bool(open_clip.get_pretrained_cfg(model, pretrained).get("quick_gelu", False))
    try:
        if _is_torchscript(path):
            with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not actionable for users
                warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
                net = open_clip.load_openai_model(str(path), precision="fp32", device="cpu")
        else:
            net = open_clip.create_model(
                model, pretrained=str(path), force_quick_gelu=quick_gelu, device="cpu", weights_only=True
            )
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VidplugError(
            f"cannot load CLIP weights {path} into {model} ({first}); check that the file matches the architecture"
        ) from exc
    log.info("CLIP image encoder %s from %s", label, path)
    return ClipImageEncoder.from_open_clip(net, name=label).to(device)
