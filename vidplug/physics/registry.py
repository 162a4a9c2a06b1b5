"""Task names -> operators: :func:`build_operator` (what the pipeline and ``vidplug degrade`` call) and
:func:`degrade` (simulate an observation of a clean video)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.physics.base import VideoOperator
from vidplug.physics.blur import MotionBlur
from vidplug.physics.compose import ComposedOperator
from vidplug.physics.inpaint import Inpainting
from vidplug.physics.noise import NoiseModel
from vidplug.physics.sr import SuperResolution
from vidplug.physics.temporal import TemporalAverage


def _sr4(num_frames, frame_size, **common) -> VideoOperator:
    return SuperResolution(num_frames, frame_size, factor=4, task="sr4", **common)


def _sr(num_frames, frame_size, *, factor: int = 4, **common) -> VideoOperator:
    return SuperResolution(num_frames, frame_size, factor=factor, task="sr", **common)


def _temporal_deblur(
    num_frames,
    frame_size,
    *,
    k: int = 7,
    kernel_size: int = 61,
    gp_length_scale: float = 0.3,
    gp_sigma: float = 0.25,
    padding: str = "reflect",
    kernels: Tensor | None = None,
    dagger_steps: int = 0,
    noise_sigma: float = 0.01,
    noise=None,
    **common,
) -> VideoOperator:
    blur = MotionBlur(
        num_frames,
        frame_size,
        kernel_size=kernel_size,
        gp_length_scale=gp_length_scale,
        gp_sigma=gp_sigma,
        padding=padding,
        kernels=kernels,
        noise_sigma=0.0,
        **common,
    )
    temporal = TemporalAverage(num_frames, frame_size, k=k, noise_sigma=0.0, **common)
    return ComposedOperator(
        "temporal+deblur", [blur, temporal], dagger_steps=dagger_steps, noise_sigma=noise_sigma, noise=noise
    )


# task name -> builder(num_frames, frame_size, *, channels, noise_sigma, noise, seed, frame_offset, **task options)
_BUILDERS: dict[str, Callable[..., VideoOperator]] = {
    "sr4": _sr4,
    "sr": _sr,
    "inpaint": Inpainting,
    "temporal": TemporalAverage,
    "deblur": MotionBlur,
    "temporal+deblur": _temporal_deblur,
}
TASKS: tuple[str, ...] = tuple(_BUILDERS)

# options every builder takes, not task options
_COMMON = {"num_frames", "frame_size", "channels", "noise_sigma", "noise", "seed", "frame_offset"}


def task_options(task: str) -> dict[str, object]:
    """The options ``task`` accepts with their defaults, e.g. ``{"factor": 4}`` for ``"sr"``."""
    # one source of truth: the builders' own keyword defaults
    params = inspect.signature(_builder(task)).parameters.values()
    return {p.name: p.default for p in params if p.name not in _COMMON and p.kind not in (p.VAR_KEYWORD,)}


def _builder(task: str) -> Callable[..., VideoOperator]:
    try:
        return _BUILDERS[task]
    except KeyError:
        raise VidplugError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}") from None


def build_operator(
    task: str,
    num_frames: int,
    frame_size: tuple[int, int],
    *,
    seed: int = 0,
    noise_sigma: float = 0.01,
    frame_offset: int = 0,
    channels: int = 3,
    noise: NoiseModel | str | float | None = None,
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
    ``noise_sigma`` is on the [-1, 1] scale (std on [0, 1] frames = noise_sigma / 2). ``noise`` (a
    :class:`~vidplug.physics.noise.NoiseModel` or text such as ``"impulse:high"``) replaces it when given.

    Raises:
        VidplugError: unknown task or option, or a frame size the operator cannot take.
    """
    builder = _builder(task)
    unknown = sorted(set(task_opts) - set(task_options(task)))
    if unknown:
        known = ", ".join(task_options(task)) or "none"
        raise VidplugError(f"task {task!r} has no option {', '.join(unknown)}; its options: {known}")
    return builder(
        num_frames=num_frames,
        frame_size=tuple(frame_size),
        channels=channels,
        noise_sigma=noise_sigma,
        noise=noise,
        seed=seed,
        frame_offset=frame_offset,
        **task_opts,
    )


def degrade(
    frames: Tensor, task: str, *, seed: int = 0, noise_sigma: float = 0.01, frame_offset: int = 0,
    noise: NoiseModel | str | float | None = None, **opts,
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
