"""Video degradation operators (forward models) for simulation and for the solver's data term.

Frames are ``(T, C, H, W)`` float tensors in [0, 1]; see :class:`~vidplug.physics.base.VideoOperator` for the
contract and :func:`~vidplug.physics.registry.build_operator` for the task names.
"""

from vidplug.physics.base import Geometry, VideoOperator
from vidplug.physics.blur import MotionBlur, motion_blur_kernels
from vidplug.physics.compose import ComposedOperator
from vidplug.physics.inpaint import Inpainting, fill_missing, random_pixel_masks
from vidplug.physics.noise import (
    LEVEL_NAMES,
    NAMED_LEVELS,
    NOISE_TYPES,
    GaussianNoise,
    Noise,
    NoiseModel,
    add_gaussian_noise,
    parse_noise,
)
from vidplug.physics.registry import (
    TASKS,
    Task,
    build_operator,
    check_task_options,
    degrade,
    task_geometry,
    task_options,
    task_options_type,
)
from vidplug.physics.sr import SuperResolution
from vidplug.physics.temporal import TemporalAverage, temporal_average_matrix

__all__ = [
    "LEVEL_NAMES",
    "NAMED_LEVELS",
    "NOISE_TYPES",
    "TASKS",
    "Task",
    "ComposedOperator",
    "GaussianNoise",
    "Geometry",
    "Inpainting",
    "MotionBlur",
    "Noise",
    "NoiseModel",
    "SuperResolution",
    "TemporalAverage",
    "VideoOperator",
    "add_gaussian_noise",
    "build_operator",
    "check_task_options",
    "degrade",
    "fill_missing",
    "motion_blur_kernels",
    "parse_noise",
    "random_pixel_masks",
    "task_options",
    "task_geometry",
    "task_options_type",
    "temporal_average_matrix",
]
