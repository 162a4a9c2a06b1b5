"""Folders of images as videos: natural-order listing, decoding to RGB, and atomic PNG-folder writing.

A folder is read in natural order (``frame2.png`` before ``frame10.png``, via natsort); files with other extensions
and hidden files are ignored. All images must share one size. Output folders hold lossless 8-bit PNGs named
``00000.png, 00001.png, ...`` and appear all at once: they are written into a hidden sibling folder and renamed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from natsort import natsorted
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io.transforms import Size, center_crop_resize, select_indices, to_rgb_tensor, to_uint8_hwc

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# PIL modes whose raw arrays to_rgb_tensor understands; anything else (P, 1, CMYK, YCbCr, ...) goes through RGB(A).
_RAW_MODES = {"L", "LA", "RGB", "RGBA", "I", "I;16", "I;16L", "I;16B", "F"}
DAVIS_FPS = 24.0  # DAVIS frames were extracted from 24 fps footage
DEFAULT_FOLDER_FPS = 25.0  # image folders carry no timing; 25 is what most restoration datasets assume


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (extensions :data:`IMAGE_EXTENSIONS`, any case), naturally sorted.

    Raises VidplugError when the folder holds no images.
    """
    folder = Path(folder)
    files = [
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    if not files:
        raise VidplugError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {folder}; point to a folder of frames or a video file"
        )
    return natsorted(files, key=lambda p: p.name)


def folder_fps(folder: str | os.PathLike) -> float:
    """Frame rate assumed for an image folder: 24 for a DAVIS sequence (``.../JPEGImages/<resolution>/<seq>``),
    otherwise 25."""
    return DAVIS_FPS if Path(folder).resolve().parent.parent.name == "JPEGImages" else DEFAULT_FOLDER_FPS


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image from its header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise VidplugError(f"cannot decode image {path}: {exc}; check or re-save the file") from None


def load_image(path: Path) -> Tensor:
    """Decode one image file to (3, H, W) float32 in [0, 1]: grayscale is repeated, alpha dropped, palettes expanded,
    16-bit images keep their precision."""
    try:
        with Image.open(path) as img:
            if img.mode not in _RAW_MODES:
                has_alpha = "A" in img.getbands() or "transparency" in img.info
                img = img.convert("RGBA" if has_alpha else "RGB")
            pixels = np.asarray(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # PIL reports truncated/corrupt files as OSError, unknown formats as UnidentifiedImageError
        raise VidplugError(f"cannot decode image {path}: {exc}; check or re-save the file") from None
    return to_rgb_tensor(pixels)


def iter_image_folder(
    folder: str | os.PathLike,
    *,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    max_frames: int | None = None,
    size: Size | None = None,
) -> Iterator[Tensor]:
    """Yield the selected frames of an image folder one at a time, each (3, H, W) float32 in [0, 1] (or resized to
    ``size``). Only the selected files are decoded. The folder and options are checked when called; while
    iterating, VidplugError names the first image whose size differs from the first selected one."""
    files = list_images(folder)
    indices = select_indices(len(files), start, end, stride, max_frames)
    if len(indices) == 0:
        raise VidplugError(
            f"no frames selected from {folder}: it has {len(files)} images, start={start}, end={end}, stride={stride}"
        )
    return _decode_images(folder, files, indices, size)


def _decode_images(folder: str | os.PathLike, files: list[Path], indices: range, size: Size | None) -> Iterator[Tensor]:
    first_hw = None
    for i in indices:
        frame = load_image(files[i])  # (3, H, W)
        hw = tuple(frame.shape[-2:])
        if first_hw is None:
            first_hw = hw
        elif hw != first_hw:
            raise VidplugError(
                f"images in {folder} have different sizes: {files[i].name} is {hw[1]}x{hw[0]} but "
                f"{files[indices[0]].name} is {first_hw[1]}x{first_hw[0]} (WxH); resize them to one size"
            )
        yield center_crop_resize(frame, size)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise VidplugError(f"output {path} already exists; pass --overwrite (overwrite=True) or choose another path")


class PngFolderWriter:
    """Append frames to a PNG folder that appears at ``path`` only when :meth:`commit` is called.

    Frames are written into a hidden temporary sibling folder; :meth:`commit` renames it onto ``path`` (replacing
    an existing output only when ``overwrite``), :meth:`abort` deletes it.
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        self.path = Path(path)
        _refuse_existing(self.path, overwrite)
        self.overwrite = overwrite
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self.count = 0

    def write(self, frames: Tensor) -> None:
        """Append ``frames`` (T, C, H, W) in [0, 1] as 8-bit PNGs."""
        for pixels in to_uint8_hwc(frames):  # (H, W, 3) uint8
            Image.fromarray(pixels, mode="RGB").save(self._tmp / f"{self.count:05d}.png", compress_level=1)
            self.count += 1

    def commit(self) -> Path:
        """Move the finished folder onto ``path``."""
        _refuse_existing(self.path, self.overwrite)  # another process may have created it meanwhile
        if self.path.exists():
            # move the old output aside first so there is never a moment without a complete output at path
            trash = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.old.", dir=self.path.parent))
            os.replace(self.path, trash / "old")
            os.replace(self._tmp, self.path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Delete the temporary folder; ``path`` is left untouched."""
        shutil.rmtree(self._tmp, ignore_errors=True)
