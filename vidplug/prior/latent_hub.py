"""Stable Diffusion priors from the Hugging Face Hub: the named ones (``sd15``, ``sd-turbo``), any diffusers SD repo id,
their files in ``vidplug weights``, and the one-line message when they are missing offline.

Only the diffusers-layout files vidplug uses are fetched: configs, tokenizer, and one weight file each for ``unet/``,
``vae/`` and ``text_encoder/`` (full precision safetensors; no fp16 variants, no single-file checkpoints, no
safety checker). Licences: SD 1.5 is CreativeML OpenRAIL-M, SD-Turbo the Stability AI non-commercial research
community licence; the user downloads the weights and accepts the licence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vidplug.errors import MissingWeightsError
from vidplug.weights import WeightSpec, offline, register

WEIGHT_FILES = ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                "text_encoder/model.safetensors")
SMALL_FILES = ["model_index.json", "*/config.json", "scheduler/*.json", "tokenizer/*"]  # configs + tokenizer, < 2 MB


@dataclass(frozen=True)
class LatentRepo:
    """A named Stable Diffusion prior on the Hub and the approximate sizes of its weight files (bytes)."""

    repo_id: str
    description: str
    sizes: tuple[int, int, int]  # unet, vae, text encoder: approximate (fp32 safetensors ~ parameter count x 4 bytes)
    licence: str


LATENT_REPOS = {
    "sd15": LatentRepo(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "Stable Diffusion 1.5 (latent, 512x512, epsilon): general images; use K=4 (configs/priors/sd15.yaml)",
        (3_440_000_000, 335_000_000, 492_000_000), "CreativeML OpenRAIL-M",
    ),
    "sd-turbo": LatentRepo(
        "stabilityai/sd-turbo",
        "SD-Turbo (latent, distilled few-step SD 2.1, 512x512): K=1-2, trailing (configs/priors/sd-turbo.yaml)",
        (3_460_000_000, 335_000_000, 1_360_000_000), "Stability AI non-commercial research community licence",
    ),
}


def hf_snapshot_dir(repo_id: str) -> Path:
    """The cached snapshot folder of ``repo_id`` (where its files are), or where the Hub client would put one."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    hit = try_to_load_from_cache(repo_id, "model_index.json")
    if isinstance(hit, str):
        return Path(hit).parent
    return Path(HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "snapshots" / "<commit>"


def _register_catalog() -> None:
    for key, repo in LATENT_REPOS.items():
        for part, filename, size in zip(("unet", "vae", "text-encoder"), WEIGHT_FILES, repo.sizes, strict=True):
            register(WeightSpec(
                name=f"{key}-{part}", filename=filename,
                url=f"https://huggingface.co/{repo.repo_id}/resolve/main/{filename}", size_bytes=None,
                approx_bytes=size, description=f"{repo.description}; {repo.licence}",
                cache_dir=lambda r=repo.repo_id: hf_snapshot_dir(r), hf_repo=repo.repo_id,
            ))


_register_catalog()


def missing_message(repo_id: str, root: Path | None = None, reason: str = "offline") -> str:
    """One line: the repo, the files missing from it (with sizes when known), and where they go."""
    from huggingface_hub.constants import HF_HUB_CACHE

    named = next((r for r in LATENT_REPOS.values() if r.repo_id == repo_id), None)
    sizes = dict(zip(WEIGHT_FILES, named.sizes, strict=True)) if named else {}
    files = [f for f in WEIGHT_FILES if root is None or not (root / f).is_file()]
    listed = ", ".join(f"{f} (about {sizes[f] / 1e9:.2f} GB)" if f in sizes else f for f in files)
    where = Path(HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    return (
        f"Stable Diffusion prior '{repo_id}' is missing {listed} plus its configs and tokenizer (under 2 MB) and they "
        f"cannot be downloaded ({reason}); while online run `hf download {repo_id} --include "
        f"{' '.join(repr(f) for f in SMALL_FILES + list(WEIGHT_FILES))}` (they go to {where}) or pass a local "
        "diffusers folder"
    )


def load_latent_hub(repo_id: str, name: str | None = None, *, prompt: str = "", guidance: float = 1.0):
    """Load a Stable Diffusion prior from the Hub (or only the Hugging Face cache when offline).

    Raises:
        MissingWeightsError: files are missing and cannot be downloaded (one line: repo, files, sizes, where).
    """
    from huggingface_hub import snapshot_download

    from vidplug.prior.latent import load_latent_dir

    try:
        root = Path(snapshot_download(repo_id, allow_patterns=SMALL_FILES + list(WEIGHT_FILES),
                                      local_files_only=offline()))
    except OSError as exc:  # huggingface_hub's offline, not-found and HTTP errors are all OSErrors
        reason = "offline" if offline() else f"download failed: {type(exc).__name__}"
        raise MissingWeightsError(missing_message(repo_id, None, reason)) from exc
    if any(not (root / f).is_file() for f in WEIGHT_FILES):
        raise MissingWeightsError(missing_message(repo_id, root, "not in the snapshot" if not offline() else "offline"))
    return load_latent_dir(root, name=name or repo_id, prompt=prompt, guidance=guidance)
