"""vidplug: zero-shot video restoration with a pretrained image diffusion model (DMPlug + temporal consistency).

Frames at every public API boundary are float32 tensors ``(T, C, H, W)`` in [0, 1]. The diffusion prior works in
[-1, 1]; the conversion happens only in :mod:`vidplug.prior.base` (``to_model_range`` / ``to_unit_range``).
"""

from vidplug.errors import VidplugError

__version__ = "0.1.0"
__all__ = ["VidplugError", "__version__"]
