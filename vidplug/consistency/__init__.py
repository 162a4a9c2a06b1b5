"""Temporal consistency between frames: optical flow and warping (``flow``, ``warp``), the flow-warping pixel loss and
the overlap anchor (``pixel``), and the CLIP semantic loss (``semantic``).

The losses follow the solver's loss-term protocol: ``name``, ``weight`` and ``term(x, iteration) -> scalar`` with
``x (T, C, H, W)`` in [0, 1]. Heavy models (RAFT, CLIP) load only when asked for, never at import.
"""

from vidplug.consistency.flow import FlowModel, load_flow_model
from vidplug.consistency.pixel import AnchorConsistency, PixelConsistency
from vidplug.consistency.semantic import ClipImageEncoder, SemanticConsistency, load_clip_encoder
from vidplug.consistency.warp import flow_warp, inside_mask, occlusion_mask

__all__ = [
    "AnchorConsistency",
    "ClipImageEncoder",
    "FlowModel",
    "PixelConsistency",
    "SemanticConsistency",
    "flow_warp",
    "inside_mask",
    "load_clip_encoder",
    "load_flow_model",
    "occlusion_mask",
]
