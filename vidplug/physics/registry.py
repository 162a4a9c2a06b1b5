"""Task names -> operators: :func:`build_operator` (what the pipeline and ``vidplug degrade`` call), the typed
options of each task (:func:`task_options_type`, checked when a config is loaded) and :func:`degrade` (simulate an
observation of a clean video).

One source of truth for a task's options: its builder's keyword arguments (name, type annotation, default). Options
typed as tensors (a given inpainting mask, given blur kernels) are inputs of a run, not config settings.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.physics.base import Geometry, VideoOperator
from vidplug.physics.blur import KERNEL_SIZE, MotionBlur, Padding
from vidplug.physics.compose import ComposedOperator
from vidplug.physics.inpaint import Inpainting
from vidplug.physics.noise import GaussianNoise, Noise, NoiseModel, parse_noise
from vidplug.physics.sr import SuperResolution
from vidplug.physics.temporal import TemporalAverage


def _sr4(num_frames, frame_size, *, factor: Literal[4] = 4, **common) -> VideoOperator:
    return SuperResolution(num_frames, frame_size, factor=factor, task="sr4", **common)


def _sr(num_frames, frame_size, *, factor: int = 4, **common) -> VideoOperator:
    return SuperResolution(num_frames, frame_size, factor=factor, task="sr", **common)


def _temporal_deblur(
    num_frames,
    frame_size,
    *,
    k: int = 7,
    kernel_size: int = KERNEL_SIZE,
    gp_length_scale: float = 0.3,
    gp_sigma: float = 0.25,
    padding: Padding = "reflect",
    kernels: Tensor | None = None,
    dagger_steps: int = 0,
    **common,
) -> VideoOperator:
    # the parts are noiseless: the composition's noise model is the measurement noise
    blur = MotionBlur(num_frames, frame_size, kernel_size=kernel_size, gp_length_scale=gp_length_scale,
                      gp_sigma=gp_sigma, padding=padding, kernels=kernels, **common)
    temporal = TemporalAverage(num_frames, frame_size, k=k, **common)
    return ComposedOperator("temporal+deblur", [blur, temporal], dagger_steps=dagger_steps)


# task name -> builder(num_frames, frame_size, *, channels, seed, frame_offset, **task options)
_BUILDERS: dict[str, Callable[..., VideoOperator]] = {
    "sr4": _sr4,
    "sr": _sr,
    "inpaint": Inpainting,
    "temporal": TemporalAverage,
    "deblur": MotionBlur,
    "temporal+deblur": _temporal_deblur,
}
TASKS: tuple[str, ...] = tuple(_BUILDERS)
# task name -> the operator families it chains (first acts on the clean video): what answers its geometry
_FAMILIES: dict[str, tuple[type[VideoOperator], ...]] = {
    "sr4": (SuperResolution,),
    "sr": (SuperResolution,),
    "inpaint": (Inpainting,),
    "temporal": (TemporalAverage,),
    "deblur": (MotionBlur,),
    "temporal+deblur": (MotionBlur, TemporalAverage),
}
Task = Literal["sr4", "sr", "inpaint", "temporal", "deblur", "temporal+deblur"]
assert typing.get_args(Task) == TASKS  # noqa: S101 (the Literal is the config's view of the registry)

# options every builder takes, not task options
_COMMON = {"self", "num_frames", "frame_size", "channels", "seed", "frame_offset", "noise_model"}


def _builder(task: str) -> Callable[..., VideoOperator]:
    try:
        return _BUILDERS[task]
    except KeyError:
        raise VidplugError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}") from None


def _option_params(task: str) -> list[inspect.Parameter]:
    builder = _builder(task)
    params = inspect.signature(builder).parameters.values()
    return [p for p in params if p.name not in _COMMON and p.kind is not p.VAR_KEYWORD]


def task_options(task: str) -> dict[str, object]:
    """The options ``task`` accepts with their defaults, e.g. ``{"factor": 4}`` for ``"sr"``."""
    return {p.name: p.default for p in _option_params(task)}


@cache
def task_options_type(task: str) -> type:
    """A dataclass of the config-settable options of ``task`` (typed, with defaults), made from its builder's
    signature, e.g. ``SrOptions(factor: int = 4)``; tensor-valued options are left out."""
    builder = _builder(task)
    hints = typing.get_type_hints(builder.__init__ if inspect.isclass(builder) else builder)
    fields = []
    for p in _option_params(task):
        tp = hints.get(p.name, Any)
        if Tensor in (typing.get_args(tp) or (tp,)):
            continue  # a run input (mask, kernels), not a setting
        fields.append((p.name, tp, dataclasses.field(default=p.default)))
    name = "".join(part.capitalize() for part in task.replace("+", "_").split("_")) + "Options"
    return dataclasses.make_dataclass(name, fields)


def task_geometry(task: str, **options) -> Geometry:
    """Temporal context and spatial scale of ``task`` with ``options``, as its operator families answer them (the
    pipeline asks before reading frames: chunk windows need the context, real observations the scale)."""
    _builder(task)
    check_task_options(task, options)
    context, scale = 0, 1
    for family in _FAMILIES[task]:
        g = family.geometry(**options)
        context, scale = context + g.context, scale * g.scale
    return Geometry(context=context, scale=scale)


def check_task_options(task: str, options: dict[str, Any]) -> None:
    """Raise the one-line error for an option ``task`` does not have (the one place options are checked)."""
    unknown = sorted(set(options) - set(task_options(task)))
    if unknown:
        known = ", ".join(task_options(task)) or "none"
        raise VidplugError(f"task {task!r} has no option {', '.join(unknown)}; its options: {known}")


def build_operator(
    task: str,
    num_frames: int,
    frame_size: tuple[int, int],
    *,
    seed: int = 0,
    noise_sigma: float = 0.01,
    noise_model: NoiseModel | None = None,
    frame_offset: int = 0,
    channels: int = 3,
    noise: Noise | str | float | None = None,
    **task_opts,
) -> VideoOperator:
    """Build the degradation ``task`` for ``num_frames`` frames of ``frame_size = (H, W)``.

    Deterministic given (task, options, seed, frame indices, frame size). ``frame_offset`` is the absolute index of
    the first frame, so a chunk's masks/kernels/noise equal the matching slice of the whole video's.

    Tasks and options (defaults): ``sr4``; ``sr`` (factor=4); ``inpaint`` (ratio=0.5, mask=None);
    ``temporal`` (k=7, dagger_steps=0); ``deblur`` (kernel_size=61, gp_length_scale=0.3, gp_sigma=0.25,
    padding="reflect", kernels=None, dagger_steps=0); ``temporal+deblur`` (the union of temporal's and deblur's).
    :func:`task_options` lists them. A temporal operator built for a chunk replicates the chunk's end frames: give
    it ``operator.context`` extra frames on each side to match the whole video's operator.
    The measurement noise is ``noise_model`` when given, else Gaussian of ``noise_sigma`` on the [-1, 1] scale (std
    on [0, 1] frames = noise_sigma / 2) seeded by ``seed``; ``noise`` (text such as ``"impulse:high"``, see
    :func:`~vidplug.physics.noise.parse_noise`) builds the noise model seeded by ``seed`` in its place.

    Raises:
        VidplugError: unknown task or option, or a frame size the operator cannot take.
    """
    builder = _builder(task)
    check_task_options(task, task_opts)
    op = builder(num_frames=num_frames, frame_size=tuple(frame_size), channels=channels, seed=seed,
                 frame_offset=frame_offset, **task_opts)
    if noise_model is None:
        noise_model = GaussianNoise(noise_sigma, seed) if noise is None else parse_noise(noise, noise_sigma, seed)
    op.noise_model = noise_model
    return op


def degrade(
    frames: Tensor, task: str, *, seed: int = 0, noise_sigma: float = 0.01, frame_offset: int = 0,
    noise: Noise | str | float | None = None, **opts,
) -> tuple[Tensor, VideoOperator]:
    """Simulate an observation of ``frames (T, C, H, W)`` in [0, 1]: ``(y, operator)`` with ``y = operator(frames)``.

    The operator is built on ``frames``' device and dtype; the noise is drawn per frame from ``(seed, absolute frame
    index)``, so degrading a chunk (with its ``frame_offset``) gives the slice of degrading the whole video (for
    temporal tasks only for frames at least ``operator.context`` from the chunk's ends).
    ``y`` is not clamped (noise may leave [0, 1]); clamp when saving as images.
    """
    if frames.ndim != 4:
        raise VidplugError(f"frames must be a (T, C, H, W) tensor, got shape {tuple(frames.shape)}")
    t, c, h, w = frames.shape
    op = build_operator(
        task, t, (h, w), seed=seed, noise_sigma=noise_sigma, frame_offset=frame_offset, channels=c, noise=noise,
        **opts,
    )
    op = op.to(device=frames.device, dtype=frames.dtype)
    return op(frames), op
