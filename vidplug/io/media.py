"""What a video file says about itself beyond its pixels: frame timestamps and time base, colour description,
display rotation and audio. :func:`probe_media` reads it from the container (packets only, nothing decoded) and
:func:`output_media` turns it into what a writer needs to keep it for a selection of frames.

Timestamps come from the demuxed packets sorted into presentation order: the same frames the decoder returns, so
frame ``i`` of a reader is timestamp ``pts[i]`` (checked by the tests on variable-frame-rate clips).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from vidplug.errors import VidplugError

# AVCOL_SPC (matrix) -> FFmpeg scale filter name, for encoding with the matrix a clip is tagged with
SCALE_MATRIX = {1: "bt709", 4: "fcc", 5: "bt470", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
# matrix -> the (primaries, transfer) a stream tagged with only its matrix usually means
_DEFAULT_TAGS = {1: (1, 1), 5: (5, 6), 6: (6, 6), 7: (7, 7), 9: (9, 14), 10: (9, 14), 4: (4, 4)}
UNSPECIFIED = 2  # AVCOL_SPC / PRI / TRC value of an untagged stream
BT709, BT601 = 1, 5  # AVCOL_SPC_BT709, AVCOL_SPC_BT470BG (swscale's BT.601)
LIMITED, FULL = 1, 2  # AVCOL_RANGE_MPEG (16-235), AVCOL_RANGE_JPEG (0-255)


@dataclass(frozen=True)
class Colour:
    """A stream's colour description (FFmpeg's enum values)."""

    matrix: int = BT709  # AVCOL_SPC: 1 BT.709, 5/6 BT.601, 9 BT.2020
    range: int = LIMITED  # AVCOL_RANGE: 1 limited (16-235), 2 full (0-255)
    primaries: int = 1  # AVCOL_PRI
    transfer: int = 1  # AVCOL_TRC
    tagged: bool = True  # False: the stream named no matrix and ``matrix`` is the size convention's guess

    @property
    def name(self) -> str:
        matrix = {1: "BT.709", 5: "BT.601", 6: "BT.601", 9: "BT.2020", 10: "BT.2020"}.get(self.matrix, str(self.matrix))
        return f"{matrix} {'full' if self.range == FULL else 'limited'} range" + ("" if self.tagged else " (untagged)")


def guess_matrix(height: int, width: int) -> int:
    """The matrix an untagged stream is decoded with: BT.709 for HD (width >= 1280 or height > 576), BT.601 for SD,
    the convention of browsers, mpv and the ITU recommendations (FFmpeg alone assumes BT.601 everywhere)."""
    return BT709 if width >= 1280 or height > 576 else BT601


def stream_colour(matrix: int, rng: int, primaries: int, transfer: int, height: int, width: int,
                  full_range_format: bool = False) -> Colour:
    """The colour description of a stream or frame, with untagged fields filled in by convention."""
    tagged = matrix not in (0, UNSPECIFIED) and matrix in SCALE_MATRIX
    matrix = matrix if tagged else guess_matrix(height, width)
    rng = rng if rng in (LIMITED, FULL) else (FULL if full_range_format else LIMITED)
    default_pri, default_trc = _DEFAULT_TAGS.get(matrix, (1, 1))
    primaries = primaries if primaries not in (0, UNSPECIFIED) else default_pri
    transfer = transfer if transfer not in (0, UNSPECIFIED) else default_trc
    return Colour(matrix, rng, primaries, transfer, tagged)


def frame_colour(frame: av.VideoFrame) -> Colour:
    """:func:`stream_colour` of one decoded frame (what the decoder reports, bitstream tags included)."""
    return stream_colour(int(frame.colorspace), int(frame.color_range), int(frame.color_primaries),
                         int(frame.color_trc), frame.height, frame.width, frame.format.name.startswith("yuvj"))


@dataclass
class AudioInfo:
    """The first audio stream of a file."""

    index: int  # stream index in the container
    codec: str  # e.g. aac, opus, pcm_s16le
    sample_rate: int
    channels: int
    start: float  # seconds


@dataclass
class MediaInfo:
    """Timing, colour, rotation and audio of a video file (see :func:`probe_media`)."""

    path: Path
    time_base: Fraction  # of the video stream
    pts: list[int]  # presentation timestamp of every frame, in time_base units, ascending
    average_rate: Fraction  # frames per second over the stream
    colour: Colour
    rotation: int  # display rotation, degrees counter-clockwise (0, 90, 180, -90)
    audio: AudioInfo | None = None

    @property
    def vfr(self) -> bool:
        """True when the frame durations differ by more than one time-base tick (variable frame rate)."""
        steps = {b - a for a, b in zip(self.pts, self.pts[1:], strict=False)}
        return len(steps) > 1 and max(steps) - min(steps) > 1

    def seconds(self, index: int) -> float:
        """Presentation time of frame ``index`` (one past the last frame: the end of the last frame)."""
        if index < len(self.pts):
            return float(self.pts[index] * self.time_base)
        step = self.pts[-1] - self.pts[-2] if len(self.pts) > 1 else 1 / (self.average_rate * self.time_base)
        return float((self.pts[-1] + step * (index - len(self.pts) + 1)) * self.time_base)


def first_frame(path: Path) -> av.VideoFrame | None:
    """The first decoded frame of ``path``'s video stream (its colour tags and display rotation), from a fresh
    demuxer: seeking back after reading packets is not possible in every container."""
    with av.open(str(path)) as container:
        return next(container.decode(video=0), None) if container.streams.video else None


def probe_media(source: str | os.PathLike) -> MediaInfo | None:
    """Timing, colour, rotation and audio of a video file, from its packets and first frame; None for a folder of
    images (no timing, sRGB). Raises VidplugError when the file cannot be read."""
    path = Path(source).expanduser()
    if path.is_dir():
        return None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VidplugError(f"{path} has no video stream; give a video file")
            stream = container.streams.video[0]
            pts = sorted(p.pts for p in container.demux(stream) if p.size > 0 and p.pts is not None)
            audio = _audio_info(container)
            time_base = stream.time_base or Fraction(1, 25)
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        first = first_frame(path)
    except (av.FFmpegError, ValueError, IndexError, OverflowError) as exc:
        raise VidplugError(f"cannot read {path}: {exc}; check the file or re-encode it with ffmpeg") from None
    if first is None:
        raise VidplugError(f"{path} has zero frames; give a non-empty video")
    if not pts:  # containers without timestamps (raw streams): evenly spaced at the average rate
        time_base = 1 / Fraction(rate)
    return MediaInfo(path, Fraction(time_base), pts or [], Fraction(rate), frame_colour(first),
                     int(round(first.rotation or 0)), audio)


def _audio_info(container) -> AudioInfo | None:
    if not container.streams.audio:
        return None
    s = container.streams.audio[0]
    ctx = s.codec_context
    start = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
    return AudioInfo(s.index, ctx.name, int(ctx.sample_rate or 0), int(ctx.channels or 1), start)


@dataclass
class AudioPlan:
    """Which audio to write and how."""

    source: Path  # file holding the audio
    index: int  # its audio stream index
    mode: str  # "copy" (packets as they are) or "aac" (decoded, cut to the sample, re-encoded)
    start: float  # seconds on the source timeline: audio before this is cut (the first selected frame)
    end: float  # seconds: audio from here on is cut (the end of the last selected frame)
    shift: float  # seconds subtracted from source times to give output times (as for the video timestamps)


@dataclass
class OutputMedia:
    """What a writer keeps of the source for the frames it writes: colour tags, rotation flag, timestamps and audio
    (an :class:`AudioPlan`). The default is a plain BT.709 limited-range clip at a constant rate."""

    colour: Colour = field(default_factory=Colour)
    rotation: int = 0  # display rotation to store; the frames written are upright and get turned back
    time_base: Fraction | None = None  # of ``pts``; None: 1/fps
    pts: list[int] | None = None  # one timestamp per frame written, in time_base units; None: 0, 1, 2, ...
    audio: AudioPlan | None = None  # None: no audio
    notes: list[str] = field(default_factory=list)  # what was not kept, one line each

    def timestamp(self, i: int) -> int:
        """Timestamp of output frame ``i`` (past the planned frames: continued at the last step)."""
        if self.pts is None:
            return i
        if i < len(self.pts):
            return self.pts[i]
        step = self.pts[-1] - self.pts[-2] if len(self.pts) > 1 else 1
        return self.pts[-1] + step * (i - len(self.pts) + 1)


def output_media(media: MediaInfo | None, indices: range | None = None) -> OutputMedia:
    """Colour, rotation and timestamps to write for source frames ``indices`` (default: all). The output starts
    where the source stream starts: the selection's timestamps are shifted by the first selected frame's offset."""
    if media is None:
        return OutputMedia()
    if not media.pts:
        return OutputMedia(media.colour, media.rotation)
    indices = indices if indices is not None else range(len(media.pts))
    kept = [media.pts[i] for i in indices if i < len(media.pts)]
    if not kept:
        return OutputMedia(media.colour, media.rotation)
    shift = kept[0] - media.pts[0]
    return OutputMedia(media.colour, media.rotation, media.time_base, [p - shift for p in kept])


def media_report(media: OutputMedia) -> dict:
    """The JSON summary of what an output kept of its source."""
    steps = {b - a for a, b in zip(media.pts or [], (media.pts or [])[1:], strict=False)}
    return {"colour": media.colour.name, "rotation": media.rotation,
            "time_base": str(media.time_base) if media.time_base else None,
            "variable_frame_rate": bool(steps) and max(steps) - min(steps) > 1,
            "audio": media.audio.mode if media.audio is not None else None}
