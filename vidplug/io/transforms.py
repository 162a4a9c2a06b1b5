"""Frame conversions shared by every reader and writer: pixels to RGB float, frame selection, crop/resize, uint8.

Readers decode one frame at a time into a numpy array, call :func:`to_rgb_tensor` and, when a target size is asked
for, :func:`center_crop_resize`; writers go back through :func:`to_uint8_hwc`. Nothing here touches files.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidplug.errors import VidplugError

Size = int | tuple[int, int]  # an int is a square side; a tuple is (height, width)


def to_rgb_tensor(pixels: np.ndarray) -> Tensor:
    """Decoded pixels -> one RGB frame.

    Args:
        pixels: ``(H, W)`` grayscale, ``(H, W, 1)``, ``(H, W, 2)`` gray+alpha, ``(H, W, 3)`` RGB or ``(H, W, 4)``
            RGBA; ``uint8``, ``uint16`` (full 16-bit range) or float (already in [0, 1]). Alpha is dropped (no
            compositing: restoration works on the colour values as stored).

    Returns:
        Tensor: (3, H, W) float32 in [0, 1].
    """
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise VidplugError(f"unsupported pixel layout {arr.shape}; expected (H, W) or (H, W, 1-4) channels")
    arr = arr[:, :, :1] if arr.shape[2] in (1, 2) else arr[:, :, :3]  # drop alpha
    if arr.dtype == np.uint8:
        scale = 255.0
    elif arr.dtype == np.uint16:
        scale = 65535.0
    elif np.issubdtype(arr.dtype, np.integer):  # e.g. PIL's 32-bit "I" mode holding 16-bit data
        scale = 65535.0 if arr.max(initial=0) > 255 else 255.0
    else:
        scale = 1.0
    frame = torch.from_numpy(np.ascontiguousarray(arr).astype(np.float32)).permute(2, 0, 1)  # (c, H, W)
    frame = (frame / scale).clamp_(0.0, 1.0)
    return frame.expand(3, -1, -1).contiguous() if frame.shape[0] == 1 else frame


def to_uint8_hwc(frames: Tensor) -> np.ndarray:
    """Frames -> 8-bit pixels for encoders.

    Args:
        frames (Tensor): (T, C, H, W) float in [0, 1] (values outside are clipped), C = 1 or 3.

    Returns:
        np.ndarray: (T, H, W, 3) uint8, rounded to nearest.
    """
    frames = check_frames(frames)
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    arr = (frames.detach().to("cpu", torch.float32).clamp(0, 1) * 255.0).round_().to(torch.uint8)
    return arr.permute(0, 2, 3, 1).contiguous().numpy()  # (T, H, W, 3)


def check_frames(frames: Tensor) -> Tensor:
    """Check that ``frames`` is a (T, C, H, W) tensor with C in {1, 3} and T, H, W >= 1; a (C, H, W) frame is
    promoted to T = 1. Raises :class:`VidplugError` otherwise."""
    if not torch.is_tensor(frames):
        raise VidplugError(f"frames must be a torch.Tensor of shape (T, C, H, W), got {type(frames).__name__}")
    if frames.ndim == 3:
        frames = frames.unsqueeze(0)
    if frames.ndim != 4 or frames.shape[1] not in (1, 3) or min(frames.shape) < 1:
        raise VidplugError(
            f"frames must have shape (T, C, H, W) with C = 1 or 3 and no empty dimension, got {tuple(frames.shape)}"
        )
    if frames.is_complex() or not frames.is_floating_point():
        raise VidplugError(f"frames must be a float tensor in [0, 1], got dtype {frames.dtype}")
    return frames


def parse_size(size: Size | None) -> tuple[int, int] | None:
    """``None`` -> None, ``n`` -> ``(n, n)``, ``(h, w)`` -> ``(h, w)``; rejects non-positive sizes."""
    if size is None:
        return None
    if isinstance(size, int | np.integer):
        hw = (int(size), int(size))
    else:
        try:
            h, w = size
            hw = (int(h), int(w))
        except (TypeError, ValueError):
            raise VidplugError(f"size must be an int or (height, width), got {size!r}") from None
    if min(hw) < 1:
        raise VidplugError(f"size must be positive, got {size!r}")
    return hw


def center_crop_resize(frames: Tensor, size: Size | None) -> Tensor:
    """Center-crop to the aspect ratio of ``size``, then resize to exactly ``size`` (bicubic, antialiased).

    This is the usual zero-shot protocol (e.g. DAVIS 854x480 -> 256x256 keeps the central 480x480 square): no
    stretching, no padding. The result is clamped to [0, 1] because bicubic overshoots at edges.

    Args:
        frames (Tensor): (..., C, H, W) float in [0, 1].
        size: ``None`` (returned unchanged), an int (square) or ``(height, width)``.

    Returns:
        Tensor: (..., C, size_h, size_w).
    """
    hw = parse_size(size)
    if hw is None:
        return frames
    th, tw = hw
    h, w = frames.shape[-2:]
    # largest window with the target aspect ratio; compare h/w with th/tw by cross-multiplying (exact for ints)
    if h * tw > th * w:
        ch, cw = max(1, round(w * th / tw)), w
    else:
        ch, cw = h, max(1, round(h * tw / th))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = frames[..., top : top + ch, left : left + cw]
    if (ch, cw) == (th, tw):
        return out.contiguous()
    lead = out.shape[:-3]
    flat = out.reshape(-1, *out.shape[-3:]).float()  # (N, C, ch, cw): interpolate wants a batch
    flat = F.interpolate(flat, size=(th, tw), mode="bicubic", align_corners=False, antialias=True)
    return flat.clamp_(0.0, 1.0).reshape(*lead, -1, th, tw).to(frames.dtype)


def resize_nearest_to_height(frames: Tensor, height: int) -> Tensor:
    """Upscale (or downscale) ``frames`` (T, C, H, W) with nearest neighbour to ``height``, keeping the aspect ratio
    (width rounded). Nearest keeps pixels visibly blocky, which is what a side-by-side of a low-res observation
    should show."""
    h, w = frames.shape[-2:]
    if h == height:
        return frames
    width = max(1, round(w * height / h))
    return F.interpolate(frames.float(), size=(height, width), mode="nearest-exact")


def select_indices(
    num_frames: int | None, start: int = 0, end: int | None = None, stride: int = 1, max_frames: int | None = None
) -> range:
    """The frame indices kept by the read options, as a ``range``.

    Args:
        num_frames: frames in the source, or None when unknown (then ``end``/``max_frames`` bound the range, and
            an unbounded range stops at ``2**62``; readers stop at the real end of the stream).
        start: first frame (0-based). end: one past the last frame (None = to the end). stride: keep every
            ``stride``-th frame. max_frames: keep at most this many.
    """
    for name, value, low in (("start", start, 0), ("stride", stride, 1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise VidplugError(f"{name} must be an integer >= {low}, got {value!r}")
    if end is not None and (not isinstance(end, int | np.integer) or end < 0):
        raise VidplugError(f"end must be None or an integer >= 0, got {end!r}")
    if max_frames is not None and (not isinstance(max_frames, int | np.integer) or max_frames < 1):
        raise VidplugError(f"max_frames must be None or an integer >= 1, got {max_frames!r}")
    stop = 2**62 if num_frames is None else num_frames
    if end is not None:
        stop = min(stop, int(end))
    indices = range(int(start), max(int(start), stop), int(stride))
    return indices if max_frames is None else indices[: int(max_frames)]
