"""Writing videos: H.264 files or PNG folders, whole (:func:`write_video`) or streamed chunk by chunk
(:class:`VideoWriter`).

``.mp4/.mkv/.avi/.mov`` are encoded with H.264 (libx264, CRF 10 by default) at the given fps; any other path
without a media extension becomes a folder of lossless PNGs. H.264's usual ``yuv420p`` halves the chroma
resolution and so needs even sizes; odd-sized frames are encoded as ``yuv444p`` instead (full chroma, exact size
back on reading, but some hardware players only play 4:2:0). Outputs are written to a hidden temporary sibling and
renamed into place on success, and an existing output is only replaced with ``overwrite=True``.

Given an :class:`~vidplug.io.media.OutputMedia` (what ``vidplug restore`` derives from its input), a video keeps
the source's colour description (encoded with its matrix and range, and tagged), its frame timestamps and time
base (variable frame rates included), its display rotation (the upright frames are turned back and the flag
stored) and its audio (:mod:`vidplug.io.audio`). Without one it is a BT.709 limited-range clip, tagged, at ``fps``.
MP4/MOV files are written with the index first (``faststart``), so they start playing before they are downloaded.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from fractions import Fraction
from pathlib import Path

import av
import torch
from torch import Tensor

from vidplug.errors import VidplugError
from vidplug.io.atomic import atomic_path
from vidplug.io.audio import AudioMuxer
from vidplug.io.frames import IMAGE_EXTENSIONS, PngFolderWriter
from vidplug.io.media import SCALE_MATRIX, OutputMedia
from vidplug.io.transforms import check_frames, to_uint8_hwc
from vidplug.io.video import READABLE_EXTENSIONS, VIDEO_EXTENSIONS

# x264 constant-rate factor. 18 is the usual "visually lossless", but it caps a re-read DAVIS clip at ~37 dB PSNR,
# close enough to restoration scores (25-35 dB) to bias metrics taken from saved videos; 10 gives ~42 dB at
# 2.7x the size (still 8x smaller than PNGs). Use PNG folders for exact outputs.
DEFAULT_CRF = 10
# RGB -> YUV on writing goes through FFmpeg's scale filter because only it can place the subsampled chroma where
# H.264 decoders assume it ("left": horizontally co-sited, out_h_chr_pos=0, vertically centred, 128/256). Without
# it, colours shift by half a chroma sample on reading (a horizontal colour sine comes back at 24 dB, not 36 dB).
# 4:4:4 has no subsampled chroma and must not be given a position (swscale would resample it by half a pixel).
_SCALE_FLAGS = "flags=bicubic+accurate_rnd+full_chroma_int+full_chroma_inp"
_SCALE_ENCODE = {"yuv420p": _SCALE_FLAGS + ":out_h_chr_pos=0:out_v_chr_pos=128", "yuv444p": _SCALE_FLAGS}
_NOT_A_FOLDER = IMAGE_EXTENSIONS + READABLE_EXTENSIONS + (".gif", ".mpg", ".mpeg", ".flv", ".wmv", ".ts")


_MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


def container_format(path: Path) -> str | None:
    """FFmpeg muxer that writes ``path`` (None: a folder of PNG frames); VidplugError for unsupported suffixes."""
    return _MUXERS[path.suffix.lower()] if _output_kind(path) == "video" else None


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
        crf: x264 quality (lower is better: 0 = lossless before 4:2:0 subsampling, 18 = visually lossless).
        media: colour, timestamps, rotation and audio to keep (videos only; default: BT.709 at ``fps``, no audio).
    """

    def __init__(
        self, path: str | os.PathLike, fps: float = 25.0, overwrite: bool = False, *, crf: int = DEFAULT_CRF,
        media: OutputMedia | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.kind = _output_kind(self.path)
        if isinstance(fps, bool) or not (isinstance(fps, numbers.Real) and math.isfinite(fps) and fps > 0):
            raise VidplugError(f"fps must be a positive number, got {fps!r}")
        self.fps, self.crf, self.overwrite, self.count = float(fps), int(crf), overwrite, 0
        self._hw: tuple[int, int] | None = None
        self._closed = False
        self._container = self._stream = self._atomic = self._audio = None
        self.media = media or OutputMedia()
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
        media = self.media
        time_base = media.time_base or 1 / rate
        # yuv420p subsamples chroma 2x2 and so needs even sizes; yuv444p keeps any size exactly
        pix_fmt = "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p"
        fmt = container_format(self.path)
        options = {}
        if fmt in ("mp4", "mov"):
            options["movflags"] = "+faststart"
            # keep the source's time base (the muxer picks its own otherwise), unless it is too coarse to give
            # B-frames distinct decode times (a 1/25 timescale leaves no room between frames)
            if time_base.numerator == 1 and time_base.denominator >= 1000:
                options["video_track_timescale"] = str(time_base.denominator)
        self._container = av.open(str(self._tmp), mode="w", format=fmt, options=options)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height, self._stream.pix_fmt = w, h, pix_fmt
        self._stream.time_base = time_base
        self._stream.codec_context.time_base = time_base  # else frames are rounded to ticks of 1/rate (VFR lost)
        self._stream.options = {"crf": str(self.crf)}
        colour = media.colour
        ctx = self._stream.codec_context
        ctx.colorspace, ctx.color_range = colour.matrix, colour.range
        ctx.color_primaries, ctx.color_trc = colour.primaries, colour.transfer
        if media.rotation:
            self._stream.set_display_rotation(media.rotation)
        if media.audio is not None:
            self._audio = AudioMuxer(media.audio, self._container)
        matrix = f":out_color_matrix={SCALE_MATRIX.get(colour.matrix, 'bt709')}"
        matrix += f":out_range={'pc' if colour.range == 2 else 'tv'}"
        graph = av.filter.Graph()  # rgb24 -> scale (matrix, range, chroma siting) -> pix_fmt
        nodes = [
            graph.add_buffer(width=w, height=h, format="rgb24", time_base=time_base),
            graph.add("scale", _SCALE_ENCODE[pix_fmt] + matrix),
            graph.add("format", pix_fmt),
            graph.add("buffersink"),
        ]
        for a, b in zip(nodes, nodes[1:], strict=False):
            a.link_to(b)
        graph.configure()
        self._graph = graph

    def _mux(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)
            if self._audio is not None and packet.pts is not None:
                self._audio.feed(float(packet.pts * packet.time_base))

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
            k = self.media.rotation // 90
            if k:  # the frames are upright; store them as the source did, with its rotation flag
                frames = torch.rot90(frames, -k, dims=(-2, -1))  # (T, C, W, H) for quarter turns
            if self._container is None:
                self._open_stream(*frames.shape[-2:])
            for i, pixels in enumerate(to_uint8_hwc(frames)):  # (H, W, 3) uint8
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts = self.media.timestamp(self.count + i)  # in the stream's time base (1/fps by default)
                self._graph.push(frame)
                self._mux(self._stream.encode(self._graph.pull()))
        self.count += frames.shape[0]

    def close(self) -> Path:
        """Finish the output (flush the encoder) and move it onto ``path``. Raises VidplugError if nothing was
        written, or if ``path`` appeared meanwhile without ``overwrite``; nothing is left behind then."""
        if self._closed:
            return self.path
        if self.count == 0:
            self.abort()
            raise VidplugError(f"no frames were written to {self.path}; nothing saved")
        if self.kind == "folder":
            self._closed = True
            return self._png.commit()
        try:
            self._mux(self._stream.encode(None))  # drain frames the encoder still buffers (B-frame lookahead)
            if self._audio is not None:
                self._audio.finish()
            self._container.close()
            self._container = None
            if self.path.exists() and not self.overwrite:  # created by someone else since __init__
                raise VidplugError(f"output {self.path} appeared while writing; pass --overwrite or choose another path")
        except BaseException:
            self.abort()
            raise
        self._closed = True
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
        if self._audio is not None:
            self._audio.close()
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError):
                self._container.close()  # the partial file is deleted next anyway
        # atomic_path deletes its temporary file when told about an error (and does not re-raise it here)
        self._atomic.__exit__(VidplugError, VidplugError("aborted"), None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(
    frames: Tensor, path: str | os.PathLike, fps: float = 25.0, overwrite: bool = False, *, crf: int = DEFAULT_CRF,
    media: OutputMedia | None = None,
) -> Path:
    """Write ``frames`` (T, C, H, W) float in [0, 1] to a video file or PNG folder (see :class:`VideoWriter`),
    atomically. Returns the output path."""
    frames = check_frames(frames)  # fail before anything is created
    with VideoWriter(path, fps, overwrite, crf=crf, media=media) as writer:
        writer.write(frames)
    return writer.path
