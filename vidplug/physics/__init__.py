"""Video degradation operators (forward models) for simulation and for the solver's data term.

Frames are ``(T, C, H, W)`` float tensors in [0, 1]; see :class:`~vidplug.physics.base.VideoOperator` for the
contract and :func:`~vidplug.physics.registry.build_operator` for the task names.
"""

from vidplug.physics.base import VideoOperator
from vidplug.physics.blur import MotionBlur, motion_blur_kernels
from vidplug.physics.compose import ComposedOperator
from vidplug.physics.inpaint import Inpainting, fill_missing, random_pixel_masks
from vidplug.physics.noise import NAMED_LEVELS, NOISE_TYPES, NoiseModel, add_gaussian_noise, parse_noise
from vidplug.physics.registry import TASKS, build_operator, degrade, task_options
from vidplug.physics.sr import SuperResolution
from vidplug.physics.temporal import TemporalAverage, temporal_average_matrix

__all__ = [
    "NAMED_LEVELS",
    "NOISE_TYPES",
    "TASKS",
    "ComposedOperator",
    "Inpainting",
    "MotionBlur",
    "NoiseModel",
    "SuperResolution",
    "TemporalAverage",
    "VideoOperator",
    "add_gaussian_noise",
    "build_operator",
    "degrade",
    "fill_missing",
    "motion_blur_kernels",
    "parse_noise",
    "random_pixel_masks",
    "task_options",
    "temporal_average_matrix",
]
