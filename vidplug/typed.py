"""Typed dataclasses from plain data: build them from nested dicts (YAML), apply dotted ``key=value`` overrides,
merge partial mappings, check ``Literal`` choices. Every error is one line naming the key.

This module knows no vidplug config: each layer owns its dataclasses (``SolverConfig`` in the solver, task options
in physics, ``RestoreConfig`` in :mod:`vidplug.config`), and all of them are loaded and checked here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

import yaml

from vidplug.errors import VidplugError


def hints(cls) -> dict[str, Any]:
    """Resolved field annotations of dataclass ``cls``."""
    return typing.get_type_hints(cls)


def choices(tp: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal[...]`` annotation (None for any other type)."""
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def check_choices(obj) -> None:
    """Raise VidplugError for the first ``Literal`` field of dataclass ``obj`` holding a value outside its choices
    (for dataclasses built in Python rather than loaded)."""
    for name, tp in hints(type(obj)).items():
        allowed = choices(tp)
        if allowed is not None and getattr(obj, name) not in allowed:
            prefix = getattr(obj, "config_prefix", "")
            raise choice_error(f"{prefix}.{name}" if prefix else name, getattr(obj, name), allowed)


def choice_error(key: str, value: Any, allowed: tuple[Any, ...]) -> VidplugError:
    """``unknown solver.optimizer 'sgd'; use one of: adam, lbfgs``; a ``X.name`` key reads ``unknown X 'v'; known
    Xs: ...`` (``unknown task 'sr3'; known tasks: sr4, sr, ...``)."""
    listed = ", ".join(map(str, allowed))
    if key.endswith(".name"):
        noun = key[: -len(".name")].rsplit(".", 1)[-1]
        return VidplugError(f"unknown {noun} {value!r}; known {noun}s: {listed}")
    return VidplugError(f"unknown {key} {value!r}; use one of: {listed}")


def _coerce_union(value: Any, tp: Any, key: str) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if value is None and len(args) < len(typing.get_args(tp)):
        return None
    errors = []
    for a in args:
        try:
            return coerce(value, a, key)
        except VidplugError as exc:
            errors.append(str(exc))
    raise VidplugError(errors[0] if errors else f"bad value {value!r} for {key}")


def _coerce_scalar(value: Any, tp: Any, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise VidplugError(f"config key '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise VidplugError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-6 (no dot) as a string: take what float() takes
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise VidplugError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise VidplugError(f"config key '{key}' must be a string, got {value!r}")
        return value
    return value


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check / convert ``value`` to the annotated type ``tp``; raise VidplugError naming ``key`` otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, tp, key)
    allowed = choices(tp)
    if allowed is not None:
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            raise choice_error(key, value, allowed)
        return value
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
        return list(value) if origin is list else tuple(value)
    return _coerce_scalar(value, tp, key)


def from_dict(cls, data: dict[str, Any], prefix: str = ""):
    """Build dataclass ``cls`` from a nested dict; unknown keys and wrong types raise VidplugError."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise VidplugError(
            f"unknown config key '{prefix}{unknown[0]}'; known keys here: {', '.join(sorted(known)) or 'none'}"
        )
    types_ = hints(cls)
    kwargs = {k: coerce(v, types_[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg) -> dict[str, Any]:
    """Nested plain-dict form of a config dataclass (YAML/JSON-ready)."""
    return dataclasses.asdict(cfg)


def deep_merge(a: dict, b: dict) -> dict:
    """``b`` on top of ``a``, recursing into mappings present in both."""
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return out


def merge(cfg, data: dict[str, Any]):
    """Return a copy of ``cfg`` with the (nested, partial) mapping ``data`` applied on top.

    A config class may define ``rebase(old: dict, change: dict) -> dict`` to drop settings of ``old`` that the
    change makes meaningless (a new task's options do not inherit the old task's)."""
    old = to_dict(cfg)
    rebase = getattr(type(cfg), "rebase", None)
    if rebase is not None:
        old = rebase(old, data)
    return from_dict(type(cfg), deep_merge(old, data))


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


def nest(key: str, value: Any) -> dict[str, Any]:
    """``("a.b.c", v)`` -> ``{"a": {"b": {"c": v}}}``."""
    nested: dict[str, Any] = {}
    node = nested
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return nested


def apply_overrides(cfg, items: list[str] | dict[str, Any]):
    """Apply dotted overrides (``"key=value"`` strings, or a ``{dotted key: typed value}`` mapping), checking each
    key exists and each value has the field's type."""
    pairs = items.items() if isinstance(items, dict) else [parse_override(i) for i in items]
    for key, value in pairs:
        _check_path(type(cfg), key.split("."))
        cfg = merge(cfg, nest(key, value))
    return cfg


def _check_path(cls, parts: list[str]) -> None:
    node = cls
    for i, p in enumerate(parts):
        if not dataclasses.is_dataclass(node):
            if node is dict or typing.get_origin(node) is dict or node is Any:
                return  # free-form mapping, or one typed later (task options: by the task's name)
            raise VidplugError(f"config key '{'.'.join(parts[: i + 1])}' does not exist ('{'.'.join(parts[:i])}' is a value)")
        names = {f.name for f in dataclasses.fields(node)}
        if p not in names:
            where = ".".join(parts[:i]) or "top level"
            raise VidplugError(f"unknown config key '{'.'.join(parts[: i + 1])}'; known at {where}: {', '.join(sorted(names))}")
        node = hints(node)[p]


def load_yaml(path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for a missing file or malformed YAML."""
    from pathlib import Path

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


def load_with_bases(path, depth: int = 0, rebase=None) -> dict[str, Any]:
    """A YAML mapping with its ``base:`` chain (paths relative to each file) merged underneath (``rebase`` as in
    :func:`merge`)."""
    from pathlib import Path

    path = Path(path)
    if depth > 8:
        raise VidplugError(f"config {path}: 'base:' chain deeper than 8 files; is there a cycle?")
    data = load_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    under = load_with_bases((path.parent / base).resolve(), depth + 1, rebase)
    return deep_merge(rebase(under, data) if rebase else under, data)


def dump_yaml(cfg) -> str:
    """YAML text of a config (what is saved beside every output)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
