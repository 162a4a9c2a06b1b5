"""Reading videos: files through PyAV, folders of images (including DAVIS sequence folders).

Reading is streaming at heart: :func:`iter_frames` decodes one frame at a time and stops as soon as the selection
(start, end, stride, max_frames) is exhausted, so memory stays bounded however long the video; :func:`read_video`
simply stacks it. :func:`probe_video` reads the container header (or, when the container does not store a frame
count, counts packets without decoding them). Writing lives in :mod:`vidplug.io.writer`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import torch
from av.video.reformatter import Interpolation
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io.frames import folder_fps, image_size, iter_image_folder, list_images
from vidplug.io.media import first_frame, frame_colour
from vidplug.io.transforms import Size, center_crop_resize, select_indices, to_rgb_tensor

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")  # read and written
READABLE_EXTENSIONS = VIDEO_EXTENSIONS + (".m4v", ".webm")  # PyAV reads these too
# swscale settings for YUV -> RGB on reading: bicubic, accurate rounding and full-resolution chroma interpolation.
# FFmpeg's default upsamples 4:2:0 chroma crudely (a colour ramp comes back at 41 dB instead of 47 dB); the cost
# is ~10 ms per 720p frame, nothing next to a diffusion step.
_SWS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
# Exceptions PyAV/FFmpeg raise on damaged input: its own FFmpegError family, plus plain errors from header fields
# that decode to nonsense (odd metadata bytes, absurd dimensions).
_DECODE_ERRORS = (av.FFmpegError, ValueError, IndexError, OverflowError, UnicodeDecodeError, MemoryError)


@dataclass
class Video:
    """Decoded frames with their timing."""

    frames: Tensor  # (T, 3, H, W) float32 in [0, 1]
    fps: float  # frames per second of *these* frames (source fps / stride)
    source: str  # where they came from (path as given)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


@dataclass
class VideoInfo:
    """What :func:`probe_video` learns without decoding."""

    num_frames: int  # frames in the whole source (before any start/end/stride selection)
    fps: float  # frames per second (folders: 24 for DAVIS sequences, else 25)
    height: int  # pixels
    width: int  # pixels
    source: str  # path as given


def _one_line(exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(reason).split())


def _decode_error(path: Path, exc: BaseException) -> VidplugError:
    return VidplugError(f"cannot decode {path}: {_one_line(exc)}; check the file or re-encode it with ffmpeg")


def _resolve(source: str | os.PathLike) -> tuple[str, Path]:
    """``("video", path)`` or ``("folder", path)``; raises VidplugError for missing paths or unknown extensions."""
    path = Path(source).expanduser()
    if path.is_dir():
        return "folder", path
    if not path.exists():
        raise VidplugError(f"no such file or folder: {path}; check the path")
    if path.suffix.lower() not in READABLE_EXTENSIONS:
        raise VidplugError(
            f"unsupported file type '{path.suffix}' for {path}; give a video ({', '.join(VIDEO_EXTENSIONS)}), "
            "a folder of images, or a DAVIS sequence folder"
        )
    return "video", path


def _frame_to_tensor(frame: av.VideoFrame) -> Tensor:
    """One decoded frame -> (3, H, W) float32 in [0, 1], upright, converted with the stream's own colour matrix and
    range (an untagged stream gets the size convention's: BT.709 for HD, BT.601 for SD; see media.guess_matrix)."""
    # keep >8-bit sources (10-bit HEVC, ProRes) at 16 bits instead of truncating them to rgb24
    deep = any(c.bits > 8 for c in frame.format.components)
    colour = {}
    if frame.format.name.startswith(("yuv", "nv", "p01", "p21")):  # RGB-coded streams have no matrix
        c = frame_colour(frame)
        colour = {"src_colorspace": c.matrix, "src_color_range": c.range}
    pixels = frame.to_ndarray(format="rgb48le" if deep else "rgb24", interpolation=_SWS, **colour)  # (H, W, 3)
    tensor = to_rgb_tensor(pixels)  # (3, H, W)
    k = int(round((frame.rotation or 0) / 90)) % 4  # display matrix: turn counter-clockwise to show it upright
    return torch.rot90(tensor, k, dims=(-2, -1)).contiguous() if k else tensor


def _video_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    return fps if math.isfinite(fps) and fps > 0 else 25.0


def probe_video(source: str | os.PathLike) -> VideoInfo:
    """Frame count, fps and size of a video file or image folder, without decoding frames.

    The frame count comes from the container header when it has one (mp4, mov), otherwise from counting packets
    (mkv, avi): no pixels are decoded either way. Raises VidplugError for missing/unreadable sources or zero frames.
    """
    kind, path = _resolve(source)
    if kind == "folder":
        files = list_images(path)
        h, w = image_size(files[0])
        return VideoInfo(len(files), folder_fps(path), h, w, str(source))
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VidplugError(f"{path} has no video stream; give a video file")
            stream = container.streams.video[0]
            count = int(stream.frames or 0)
            if count <= 0:
                # empty packets are end-of-stream flush markers, not frames
                count = sum(1 for packet in container.demux(stream) if packet.size > 0)
            ctx = stream.codec_context  # None when the header names no codec FFmpeg knows
            if ctx is None or ctx.width <= 0 or ctx.height <= 0:
                raise _decode_error(path, ValueError("unknown codec or frame size in the header"))
            h, w = ctx.height, ctx.width
            info = VideoInfo(count, _video_fps(stream), h, w, str(source))
        first = first_frame(path) if info.num_frames > 0 else None  # the display rotation travels with the frames
        if first is not None and int(round((first.rotation or 0) / 90)) % 2:
            info.height, info.width = w, h  # frames are read upright
    except _DECODE_ERRORS as exc:
        raise _decode_error(path, exc) from None
    if info.num_frames <= 0:
        raise VidplugError(f"{path} has zero frames; give a non-empty video")
    return info


def _iter_video_file(path: Path, indices: range, size: Size | None) -> Iterator[Tensor]:
    wanted = iter(indices)
    target = next(wanted, None)
    yielded = 0
    first_hw = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VidplugError(f"{path} has no video stream; give a video file")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if target is None:
                    break  # selection exhausted: stop decoding, however long the file
                if i < target:
                    continue  # decoded (needed by the codec) but not converted
                if first_hw is None:
                    first_hw = (frame.height, frame.width)
                elif size is None and (frame.height, frame.width) != first_hw:
                    raise VidplugError(
                        f"frame size changes inside {path} at frame {i} ({frame.width}x{frame.height} after "
                        f"{first_hw[1]}x{first_hw[0]}); pass size=... or re-encode it to one size with ffmpeg"
                    )
                yield center_crop_resize(_frame_to_tensor(frame), size)  # (3, H, W)
                yielded += 1
                target = next(wanted, None)
    except _DECODE_ERRORS as exc:
        raise _decode_error(path, exc) from None
    if yielded == 0:
        raise VidplugError(
            f"no frames decoded from {path} (start={indices.start}); the video is empty or shorter than start"
        )


def iter_frames(
    source: str | os.PathLike,
    *,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    max_frames: int | None = None,
    size: Size | None = None,
) -> Iterator[Tensor]:
    """Yield frames one at a time, each (3, H, W) float32 in [0, 1], with bounded memory.

    Args:
        source: a video file (.mp4 .avi .mkv .mov), a folder of images, or a DAVIS sequence folder.
        start: first frame index (0-based). end: one past the last index (None = to the end).
        stride: keep every ``stride``-th frame. max_frames: stop after this many frames.
        size: None (native size), an int (square) or (height, width): center-crop to that aspect ratio, then
            resize with antialiasing.

    The source and options are checked when called; decoding errors surface as VidplugError while iterating.
    """
    kind, path = _resolve(source)
    if kind == "folder":
        return iter_image_folder(path, start=start, end=end, stride=stride, max_frames=max_frames, size=size)
    indices = select_indices(None, start, end, stride, max_frames)
    if len(indices) == 0:
        raise VidplugError(f"no frames selected from {path}: start={start}, end={end}; make end larger than start")
    return _iter_video_file(path, indices, size)


def iter_chunks(source: str | os.PathLike, chunk_size: int, **read_kwargs) -> Iterator[Tensor]:
    """Yield consecutive chunks (t, 3, H, W) with t = ``chunk_size`` (the last may be shorter); ``read_kwargs`` as
    for :func:`iter_frames`. Only one chunk is held in memory at a time."""
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise VidplugError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    return _chunked(iter_frames(source, **read_kwargs), chunk_size)  # checks the source now, not at first next()


def _chunked(frames: Iterator[Tensor], chunk_size: int) -> Iterator[Tensor]:
    chunk: list[Tensor] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == chunk_size:
            yield torch.stack(chunk)  # (chunk_size, 3, H, W)
            chunk = []
    if chunk:
        yield torch.stack(chunk)


def read_video(
    source: str | os.PathLike,
    *,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    max_frames: int | None = None,
    size: Size | None = None,
) -> Video:
    """Read a whole video (file, image folder or DAVIS sequence folder) into memory.

    Options as for :func:`iter_frames`. Returns a :class:`Video` with frames (T, 3, H, W) float32 in [0, 1] and
    fps = source fps / stride.
    """
    kind, path = _resolve(source)
    if kind == "folder":
        fps = folder_fps(path)
    else:
        try:
            with av.open(str(path)) as container:
                fps = _video_fps(container.streams.video[0]) if container.streams.video else 25.0
        except _DECODE_ERRORS as exc:
            raise _decode_error(path, exc) from None
    frames = list(iter_frames(path, start=start, end=end, stride=stride, max_frames=max_frames, size=size))
    return Video(torch.stack(frames), fps / stride, str(source))
