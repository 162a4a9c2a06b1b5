"""Reading and writing videos: files through PyAV, folders of images (including DAVIS sequence folders).

Reading is streaming at heart: :func:`iter_frames` decodes one frame at a time and stops as soon as the selection
(start, end, stride, max_frames) is exhausted, so memory stays bounded however long the video; :func:`read_video`
simply stacks it. :func:`probe_video` reads the container header (or, when the container does not store a frame
count, counts packets without decoding them).

Writing: ``.mp4/.mkv/.avi/.mov`` are encoded with H.264 (libx264, CRF 18 by default) at the given fps; any other
path without a media extension becomes a folder of lossless PNGs. H.264's usual ``yuv420p`` halves the chroma
resolution and so needs even sizes; odd-sized frames are encoded as ``yuv444p`` instead (full chroma, exact size
back on reading, but some hardware players only play 4:2:0). Outputs are written to a hidden temporary sibling and
renamed into place on success, and an existing output is only replaced with ``overwrite=True``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import torch
from av.video.reformatter import Interpolation
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io.atomic import atomic_path
from vidplug.io.frames import (
    IMAGE_EXTENSIONS,
    PngFolderWriter,
    folder_fps,
    image_size,
    iter_image_folder,
    list_images,
)
from vidplug.io.transforms import (
    Size,
    center_crop_resize,
    check_frames,
    select_indices,
    to_rgb_tensor,
    to_uint8_hwc,
)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")  # read and written
_READ_ONLY_EXTENSIONS = (".m4v", ".webm")  # PyAV reads them too
_NOT_A_FOLDER = IMAGE_EXTENSIONS + _READ_ONLY_EXTENSIONS + (".gif", ".mpg", ".mpeg", ".flv", ".wmv", ".ts")
DEFAULT_CRF = 18  # x264 constant-rate factor: visually lossless for natural video, ~40 dB on smooth content
# swscale settings for YUV -> RGB on reading: bicubic, accurate rounding and full-resolution chroma interpolation.
# FFmpeg's default upsamples 4:2:0 chroma crudely (a colour ramp comes back at 41 dB instead of 47 dB); the cost
# is ~10 ms per 720p frame, nothing next to a diffusion step.
_SWS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
# RGB -> YUV on writing goes through FFmpeg's scale filter because only it can place the subsampled chroma where
# H.264 decoders assume it ("left": horizontally co-sited, out_h_chr_pos=0, vertically centred, 128/256). Without
# it, colours shift by half a chroma sample on reading (a horizontal colour sine comes back at 24 dB, not 36 dB).
# 4:4:4 has no subsampled chroma and must not be given a position (swscale would resample it by half a pixel).
_SCALE_FLAGS = "flags=bicubic+accurate_rnd+full_chroma_int+full_chroma_inp"
_SCALE_ENCODE = {"yuv420p": _SCALE_FLAGS + ":out_h_chr_pos=0:out_v_chr_pos=128", "yuv444p": _SCALE_FLAGS}
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
    if path.suffix.lower() not in VIDEO_EXTENSIONS + _READ_ONLY_EXTENSIONS:
        raise VidplugError(
            f"unsupported file type '{path.suffix}' for {path}; give a video ({', '.join(VIDEO_EXTENSIONS)}), "
            "a folder of images, or a DAVIS sequence folder"
        )
    return "video", path


def _frame_to_tensor(frame: av.VideoFrame) -> Tensor:
    # keep >8-bit sources (10-bit HEVC, ProRes) at 16 bits instead of truncating them to rgb24
    deep = any(c.bits > 8 for c in frame.format.components)
    return to_rgb_tensor(frame.to_ndarray(format="rgb48le" if deep else "rgb24", interpolation=_SWS))  # (3, H, W)


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
            info = VideoInfo(count, _video_fps(stream), stream.codec_context.height, stream.codec_context.width, str(source))
    except _DECODE_ERRORS as exc:
        raise _decode_error(path, exc) from None
    if info.num_frames <= 0:
        raise VidplugError(f"{path} has zero frames; give a non-empty video")
    return info


def _iter_video_file(path: Path, indices: range, size: Size | None) -> Iterator[Tensor]:
    wanted = iter(indices)
    target = next(wanted, None)
    yielded = 0
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
    chunk: list[Tensor] = []
    for frame in iter_frames(source, **read_kwargs):
        chunk.append(frame)
        if len(chunk) == chunk_size:
            yield torch.stack(chunk)
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


def _output_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in _NOT_A_FOLDER:
        raise VidplugError(
            f"cannot write '{suffix}' output {path}; use {', '.join(VIDEO_EXTENSIONS)} or a folder path for PNG frames"
        )
    return "folder"


class VideoWriter:
    """Streaming writer: append chunks of frames, the output appears complete at ``path`` on :meth:`close`.

    ``path`` ending in .mp4/.mkv/.avi/.mov gives an H.264 video at ``fps``; any other path a folder of
    ``00000.png, ...``. Use as a context manager; if the block raises, nothing is left at ``path``.

    Args:
        path: output video file or folder.
        fps: frames per second stored in the video (ignored for PNG folders).
        overwrite: replace an existing output; otherwise an existing ``path`` raises VidplugError at once.
        crf: x264 quality (0 = lossless luma, 18 = visually lossless, 23 = x264 default).
    """

    def __init__(
        self, path: str | os.PathLike, fps: float = 25.0, overwrite: bool = False, *, crf: int = DEFAULT_CRF
    ) -> None:
        self.path = Path(path).expanduser()
        self.kind = _output_kind(self.path)
        if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
            raise VidplugError(f"fps must be a positive number, got {fps!r}")
        self.fps, self.crf, self.count = float(fps), int(crf), 0
        self._hw: tuple[int, int] | None = None
        self._closed = False
        self._container = self._stream = self._atomic = None
        if self.kind == "folder":
            self._png = PngFolderWriter(self.path, overwrite)
        else:
            if self.path.exists() and not overwrite:
                raise VidplugError(
                    f"output {self.path} already exists; pass --overwrite (overwrite=True) or choose another path"
                )
            if self.path.is_dir():
                raise VidplugError(f"output {self.path} is a folder; remove it or choose another path")
            self._atomic = atomic_path(self.path)
            self._tmp = self._atomic.__enter__()  # hidden sibling with the same suffix, so the muxer is chosen right

    def _open_stream(self, h: int, w: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1001)
        # yuv420p subsamples chroma 2x2 and so needs even sizes; yuv444p keeps any size exactly
        pix_fmt = "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p"
        self._container = av.open(str(self._tmp), mode="w")
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height, self._stream.pix_fmt = w, h, pix_fmt
        self._stream.options = {"crf": str(self.crf)}
        graph = av.filter.Graph()  # rgb24 -> scale (chroma siting) -> pix_fmt
        nodes = [
            graph.add_buffer(width=w, height=h, format="rgb24", time_base=1 / rate),
            graph.add("scale", _SCALE_ENCODE[pix_fmt]),
            graph.add("format", pix_fmt),
            graph.add("buffersink"),
        ]
        for a, b in zip(nodes, nodes[1:], strict=False):
            a.link_to(b)
        graph.configure()
        self._graph = graph

    def write(self, frames: Tensor) -> None:
        """Append ``frames`` (T, C, H, W) or one (C, H, W) frame, float in [0, 1], C = 1 or 3. All frames must share
        the first frame's size."""
        if self._closed:
            raise VidplugError(f"writer for {self.path} is already closed")
        frames = check_frames(frames)
        hw = tuple(frames.shape[-2:])
        if self._hw is None:
            self._hw = hw
        elif hw != self._hw:
            raise VidplugError(f"frame size {hw} differs from the first frames' {self._hw} in {self.path}")
        if self.kind == "folder":
            self._png.write(frames)
        else:
            if self._container is None:
                self._open_stream(*hw)
            for i, pixels in enumerate(to_uint8_hwc(frames)):  # (H, W, 3) uint8
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts = self.count + i  # in units of 1/fps, as the filter graph and the encoder expect
                self._graph.push(frame)
                for packet in self._stream.encode(self._graph.pull()):
                    self._container.mux(packet)
        self.count += frames.shape[0]

    def close(self) -> Path:
        """Finish the file (flush the encoder) and move it onto ``path``. Raises VidplugError if nothing was
        written (and leaves nothing behind)."""
        if self._closed:
            return self.path
        if self.count == 0:
            self.abort()
            raise VidplugError(f"no frames were written to {self.path}; nothing saved")
        self._closed = True
        if self.kind == "folder":
            return self._png.commit()
        for packet in self._stream.encode(None):  # drain frames the encoder still buffers (B-frame lookahead)
            self._container.mux(packet)
        self._container.close()
        self._atomic.__exit__(None, None, None)  # rename onto path
        return self.path

    def abort(self) -> None:
        """Discard everything written; ``path`` is left as it was."""
        if self._closed:
            return
        self._closed = True
        if self.kind == "folder":
            self._png.abort()
            return
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:
                pass  # the partial file is deleted next anyway
        try:
            self._atomic.__exit__(VidplugError, VidplugError("aborted"), None)  # deletes the temporary file
        except VidplugError:
            pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(
    frames: Tensor, path: str | os.PathLike, fps: float = 25.0, overwrite: bool = False, *, crf: int = DEFAULT_CRF
) -> Path:
    """Write ``frames`` (T, C, H, W) float in [0, 1] to a video file or PNG folder (see :class:`VideoWriter`),
    atomically. Returns the output path."""
    frames = check_frames(frames)  # fail before anything is created
    with VideoWriter(path, fps, overwrite, crf=crf) as writer:
        writer.write(frames)
    return writer.path
