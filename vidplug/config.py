"""Typed run configuration: dataclasses, YAML loading, dotted ``--set key=value`` overrides.

An experiment is a YAML file (see ``configs/``); an ablation is a second YAML that changes one weight. Every field
carries a one-line comment with its unit or meaning. Unknown keys and values of the wrong type are errors with a
one-line message, never silently ignored. The resolved config is saved next to every output.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vidplug.errors import VidplugError
from vidplug.physics.noise import NoiseModel, parse_noise
from vidplug.solver.dmplug import SolverConfig


@dataclass
class TaskConfig:
    name: str = "sr4"  # degradation: sr4 | sr | inpaint | temporal | deblur | temporal+deblur
    noise_sigma: float = 0.01  # measurement noise std on the [-1, 1] scale (DMPlug: 0.01); 0 = noiseless
    # noise model TYPE[:LEVEL]: gaussian | impulse | shot | speckle, LEVEL low | high | a number (impulse:high,
    # shot:25); a bare number = Gaussian sigma on [-1, 1]; "" = Gaussian noise_sigma. Simulation only: the solver
    # never sees it (vidplug/physics/noise.py)
    noise: str | float = ""
    seed: int = 0  # seeds masks, blur kernels and noise (operators are rebuilt exactly from it)
    options: dict[str, Any] = field(default_factory=dict)  # task-specific: factor, ratio, k, kernel_size, ...

    def __post_init__(self) -> None:
        self.noise_model  # noqa: B018 -- a bad task.noise fails here, before any model loads

    @property
    def noise_model(self) -> NoiseModel:
        """The simulated measurement noise: ``noise`` if set, else Gaussian ``noise_sigma``."""
        return parse_noise(self.noise, default_sigma=self.noise_sigma)


@dataclass
class PriorConfig:
    name: str = "tiny"  # tiny | adm-imagenet256 | adm-ffhq256 | hub id | local directory | .pt file


@dataclass
class ConsistencyConfig:
    # The defaults are the full method. Data term = MSE on [0,1] frames (~1e-4 at convergence), so the terms are small:
    # pixel 0.05 measured on the bundled clip (benchmarks/RESULTS.md); semantic 0.05 is untuned (no CLIP weights here).
    semantic_weight: float = 0.05  # weight of the CLIP feature term between neighbouring frames; 0 = off, CLIP not loaded
    semantic_to_mean: bool = False  # also pull each frame's CLIP feature towards the chunk mean
    clip_model: str = "ViT-B-32"  # open_clip architecture
    clip_pretrained: str = "openai"  # open_clip weights tag or a local file path
    pixel_weight: float = 0.05  # weight of the occlusion-masked L1 flow-warping term between neighbours; 0 = off
    pixel_norm: str = "l1"  # l1 | l2
    flow_model: str = "auto"  # auto (RAFT if its weights are present, else OpenCV DIS) | raft | dis
    flow_refresh_every: int = 50  # re-estimate flow from the current restoration every N iterations; 0 = never
    anchor_weight: float = 1.0  # weight tying a chunk's overlap frames to the previous chunk's result


@dataclass
class ChunkConfig:
    size: int = 0  # frames optimised jointly per chunk (overlap included); 0 = auto (8 on CPU, free GPU memory)
    overlap: int = 2  # frames shared with the previous chunk
    seam: str = "anchor"  # anchor: overlap tied to the previous chunk's result (sequential) | blend: independent
    # chunks whose overlaps are cross-faded (any order: what multi-process runs use)


@dataclass
class RestoreConfig:
    method: str = "dmplug"  # dmplug | bicubic (the operator's pseudo-inverse / bicubic baseline)
    task: TaskConfig = field(default_factory=TaskConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    seed: int = 0  # seeds the initial diffusion seeds z (per absolute frame index)
    device: str = "auto"  # auto | cpu | cuda | cuda:N


# ---------------------------------------------------------------------------------------------------------------
# generic machinery


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check / convert ``value`` to the annotated type ``tp``; raise VidplugError naming ``key`` otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(tp)):
            return None
        errors = []
        for a in args:
            try:
                return _coerce(value, a, key)
            except VidplugError as exc:
                errors.append(str(exc))
        raise VidplugError(errors[0] if errors else f"bad value {value!r} for {key}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise VidplugError(f"config key '{key}' must be a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise VidplugError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if origin is tuple or origin is list:
        if not isinstance(value, list | tuple):
            raise VidplugError(f"config key '{key}' must be a list, got {value!r}")
        return type(value)(value) if origin is list else tuple(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise VidplugError(f"config key '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise VidplugError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise VidplugError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise VidplugError(f"config key '{key}' must be a string, got {value!r}")
        return value
    if tp is Any:
        return value
    return value


def from_dict(cls, data: dict[str, Any], prefix: str = ""):
    """Build dataclass ``cls`` from a nested dict; unknown keys and wrong types raise VidplugError."""
    hints = _hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise VidplugError(
            f"unknown config key '{prefix}{unknown[0]}'; known keys here: {', '.join(sorted(known))}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg) -> dict[str, Any]:
    """Nested plain-dict form of a config dataclass (YAML/JSON-ready)."""
    return dataclasses.asdict(cfg)


def merge(cfg, data: dict[str, Any]):
    """Return a copy of ``cfg`` with the (nested, partial) mapping ``data`` applied on top."""
    return from_dict(type(cfg), _deep_merge(to_dict(cfg), data))


def _deep_merge(a: dict, b: dict) -> dict:
    """``b`` on top of ``a``, recursing into mappings present in both."""
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return out


def parse_override(item: str) -> tuple[str, Any]:
    """``'solver.lr=5e-3'`` -> ``('solver.lr', 0.005)``; the value is parsed as YAML (numbers, bools, lists)."""
    if "=" not in item:
        raise VidplugError(f"--set expects key=value (e.g. solver.lr=0.005), got '{item}'")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(cfg, items: list[str] | dict[str, Any]):
    """Apply dotted overrides (``"key=value"`` strings, or a ``{dotted key: typed value}`` mapping), checking each
    key exists and each value has the field's type."""
    pairs = items.items() if isinstance(items, dict) else [parse_override(i) for i in items]
    for key, value in pairs:
        nested: dict[str, Any] = {}
        node = nested
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
        _check_path(type(cfg), parts)
        cfg = merge(cfg, nested)
    return cfg


def _check_path(cls, parts: list[str]) -> None:
    node = cls
    for i, p in enumerate(parts):
        if not dataclasses.is_dataclass(node):
            if node is dict or typing.get_origin(node) is dict:
                return  # free-form options mapping
            raise VidplugError(f"config key '{'.'.join(parts[: i + 1])}' does not exist ('{'.'.join(parts[:i])}' is a value)")
        names = {f.name for f in dataclasses.fields(node)}
        if p not in names:
            where = ".".join(parts[:i]) or "top level"
            raise VidplugError(f"unknown config key '{'.'.join(parts[: i + 1])}'; known at {where}: {', '.join(sorted(names))}")
        node = _hints(node)[p]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for a missing file or malformed YAML."""
    path = Path(path)
    if not path.is_file():
        raise VidplugError(f"config file {path} does not exist; check the path (examples in configs/)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise VidplugError(f"malformed YAML in {path}{where}: {getattr(exc, 'problem', exc)}; fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VidplugError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: RestoreConfig | None = None,
    flags: dict[str, Any] | None = None,
):
    """Defaults <- YAML file (optional; may name a ``base:`` file relative to itself) <- ``flags`` (typed values by
    dotted key, from command-line shortcuts) <- dotted ``key=value`` overrides."""
    cfg = base or RestoreConfig()
    if path is not None:
        cfg = merge(cfg, _load_with_bases(Path(path)))
    cfg = apply_overrides(cfg, flags or {})
    return apply_overrides(cfg, overrides or [])


def _load_with_bases(path: Path, depth: int = 0) -> dict[str, Any]:
    if depth > 8:
        raise VidplugError(f"config {path}: 'base:' chain deeper than 8 files; is there a cycle?")
    data = load_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    return _deep_merge(_load_with_bases((path.parent / base).resolve(), depth + 1), data)


def dump_yaml(cfg) -> str:
    """YAML text of a config (what is saved beside every output)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
