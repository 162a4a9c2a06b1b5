"""Where model weights come from: one catalog, one way to find or fetch a file, one message when it is missing.

Each module that needs weights declares a :class:`WeightSpec` next to the code that uses it and calls
:func:`register`; ``vidplug weights`` lists everything registered. :func:`require` returns a local path: a cached
file, or a download when online; offline with nothing cached it raises :class:`MissingWeightsError` naming the file,
its size, where to get it and where to put it.

Online/offline: downloads are attempted unless ``VIDPLUG_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` is set, or
``allow_download=False`` is passed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from vidplug.errors import MissingWeightsError


def torch_hub_checkpoints() -> Path:
    """The torch hub checkpoint cache (``$TORCH_HOME/hub/checkpoints``), where torchvision keeps RAFT and AlexNet."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def vidplug_cache() -> Path:
    """vidplug's own cache (``$VIDPLUG_CACHE`` or ``~/.cache/vidplug``)."""
    return Path(os.environ.get("VIDPLUG_CACHE", Path.home() / ".cache" / "vidplug"))


def offline() -> bool:
    """True when downloads must not be attempted."""
    return any(os.environ.get(v, "").lower() in {"1", "true", "yes"} for v in ("VIDPLUG_OFFLINE", "HF_HUB_OFFLINE"))


@dataclass(frozen=True)
class WeightSpec:
    """One downloadable weight file.

    ``cache_dir`` is a zero-argument callable so environment variables are read when used, not at import.
    ``sha256`` may be a full hex digest, a prefix (torchvision embeds 8-10 hex digits in file names), or None.
    """

    name: str  # catalog key, e.g. "raft-large"
    filename: str  # file name in the cache directory
    url: str  # where to download it from
    size_bytes: int | None  # expected size (for messages and checks)
    description: str  # what uses it
    cache_dir: object = field(default=vidplug_cache, compare=False)  # callable -> Path
    sha256: str | None = None
    approx_bytes: int | None = None  # for messages when the exact size is not pinned (downloads not size-checked)
    hf_repo: str | None = None  # a Hugging Face Hub repository: fetched into the HF cache by huggingface_hub

    @property
    def path(self) -> Path:
        return Path(self.cache_dir()) / self.filename

    def human_size(self) -> str:
        if self.size_bytes:
            return f"{self.size_bytes / 2**20:.1f} MB"
        if self.approx_bytes:
            return f"about {self.approx_bytes / 2**20:.0f} MB"
        return "size unknown"

    def missing_message(self) -> str:
        return (
            f"{self.description} weights '{self.filename}' ({self.human_size()}) are not in {self.path.parent} and "
            f"cannot be downloaded (offline); download {self.url} and place it at {self.path}"
        )


_REGISTRY: dict[str, WeightSpec] = {}


def register(spec: WeightSpec) -> WeightSpec:
    """Add ``spec`` to the catalog (idempotent) and return it."""
    _REGISTRY[spec.name] = spec
    return spec


def catalog() -> dict[str, WeightSpec]:
    """All registered weights, importing the modules that declare them."""
    import importlib

    for module in ("vidplug.prior.registry", "vidplug.prior.latent_hub", "vidplug.consistency.flow",
                   "vidplug.consistency.semantic", "vidplug.metrics.lpips"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            pass
    return dict(_REGISTRY)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def find(spec: WeightSpec) -> Path | None:
    """The local file for ``spec`` if present, else None."""
    return spec.path if spec.path.is_file() else None


def require(spec: WeightSpec, allow_download: bool | None = None) -> Path:
    """Return a local path for ``spec``, downloading it when allowed; raise MissingWeightsError otherwise."""
    path = find(spec)
    if path is not None:
        return path
    if allow_download is None:
        allow_download = not offline()
    if not allow_download:
        raise MissingWeightsError(spec.missing_message())
    return download(spec)


def download(spec: WeightSpec) -> Path:
    """Download ``spec`` to its cache path atomically, verifying size and checksum when known (a Hub file: into the
    Hugging Face cache, by huggingface_hub)."""
    import urllib.error

    if spec.hf_repo is not None:
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(spec.hf_repo, spec.filename))
        except OSError as exc:
            raise MissingWeightsError(f"{spec.missing_message()} (download failed: {type(exc).__name__})") from exc

    import torch.hub

    from vidplug.io.atomic import atomic_path

    try:
        with atomic_path(spec.path) as tmp:
            torch.hub.download_url_to_file(spec.url, str(tmp), progress=True)
            if spec.size_bytes and tmp.stat().st_size != spec.size_bytes:
                raise MissingWeightsError(
                    f"download of {spec.url} has {tmp.stat().st_size} bytes, expected {spec.size_bytes}; try again"
                )
            if spec.sha256 and not sha256_of(tmp).startswith(spec.sha256):
                raise MissingWeightsError(f"checksum mismatch for {spec.url}; delete {tmp} and try again")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise MissingWeightsError(f"{spec.missing_message()} (download failed: {exc})") from exc
    return spec.path
