"""The source's audio in a restored video: planned before any work (:func:`plan_audio`, so an impossible request
fails with nothing written), then muxed by the video writer alongside the frames (:class:`AudioMuxer`).

Audio follows the frames it belongs to: trimmed to the selected frames (``--start/--end``), shifted exactly as the
video timestamps are, and interleaved with the video packets. It is stream-copied when the output container can
hold the codec (no quality loss; cut at packet boundaries, within ~20 ms), otherwise decoded, cut to the sample and
re-encoded as AAC. Frame selections that change the timing of the kept frames (``--stride``) drop it with a note:
audio is never written out of sync.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidplug.errors import VidplugError
from vidplug.io.media import MediaInfo

AUDIO_MODES = ("auto", "copy", "aac", "none")


@dataclass
class AudioPlan:
    """Which audio to write and how."""

    source: Path  # file holding the audio
    index: int  # its audio stream index
    mode: str  # "copy" (packets as they are) or "aac" (decoded, cut to the sample, re-encoded)
    start: float  # seconds on the source timeline: audio before this is cut (the first selected frame)
    end: float  # seconds: audio from here on is cut (the end of the last selected frame)
    shift: float  # seconds subtracted from source times to give output times (as for the video timestamps)


def _refuse_or_note(mode: str, reason: str, fix: str) -> str:
    if mode == "copy":
        raise VidplugError(f"--audio copy: {reason}; {fix}")
    return f"audio dropped: {reason}"


def plan_audio(media: MediaInfo | None, out: str | os.PathLike, mode: str, indices: range,
               output_frames: int | None = None) -> tuple[AudioPlan | None, str | None]:
    """Decide what happens to the source's audio for output ``out`` and the source frames ``indices``.

    Args:
        mode: ``auto`` (copy when the output container can hold the codec, else AAC), ``copy`` (copy or fail),
            ``aac`` (always re-encode), ``none`` (drop).
        output_frames: frames the output will have when a task changes the count (None: ``len(indices)``).

    Returns:
        (plan or None, a one-line note saying why audio was dropped or re-encoded, or None). Raises VidplugError
        when ``mode`` is ``copy`` and the audio cannot be kept as it is.
    """
    if mode not in AUDIO_MODES:
        raise VidplugError(f"unknown --audio {mode!r}; use {', '.join(AUDIO_MODES)}")
    if mode == "none":
        return None, None
    if media is None or media.audio is None:
        if mode == "copy":
            raise VidplugError("--audio copy: the input has no audio stream; drop --audio copy")
        return None, None
    out = Path(out)
    from vidplug.io.writer import container_format  # the writer decides what a path becomes

    fmt = container_format(out)
    if fmt is None:
        return None, _refuse_or_note(mode, f"{out} is a folder of PNG frames, which has no audio track",
                                     "write a .mp4 or .mkv to keep the audio")
    if indices.step != 1:
        return None, _refuse_or_note(mode, f"--stride {indices.step} keeps every {indices.step}-th frame, so the "
                                     "audio would play out of sync", "use --stride 1 to keep the audio")
    if output_frames is not None and output_frames != len(indices):
        return None, _refuse_or_note(mode, f"the task turns {len(indices)} frames into {output_frames}",
                                     "drop --audio copy")
    supported = _supported_codecs(fmt)
    note = None
    if mode == "auto":
        mode = "copy" if media.audio.codec in supported else "aac"
        if mode == "aac":
            note = f"audio re-encoded as AAC: {fmt} cannot hold {media.audio.codec}"
    elif mode == "copy" and media.audio.codec not in supported:
        raise VidplugError(f"--audio copy: {out.suffix} cannot hold {media.audio.codec} audio; use --audio aac or "
                           "write a .mkv")
    start, end = media.seconds(indices.start), media.seconds(indices[-1] + 1)
    shift = start - media.seconds(0)
    return AudioPlan(media.path, media.audio.index, mode, start, end, shift), note


def _supported_codecs(fmt: str) -> set[str]:
    with av.open(os.devnull, mode="w", format=fmt) as probe:
        return set(probe.supported_codecs)


class AudioMuxer:
    """Adds the planned audio stream to an output container and muxes its packets up to a given time, so audio
    and video stay interleaved. Call :meth:`feed` after each video packet and :meth:`finish` at the end."""

    def __init__(self, plan: AudioPlan, container) -> None:
        self.plan, self.container = plan, container
        self._src = av.open(str(plan.source))
        src_stream = self._src.streams[plan.index]
        if plan.mode == "copy":
            self.stream = container.add_stream_from_template(src_stream)
        else:
            ctx = src_stream.codec_context
            self.stream = container.add_stream("aac", rate=ctx.sample_rate, layout=ctx.layout.name)
            self._resampler = av.AudioResampler(format="fltp", layout=ctx.layout.name, rate=ctx.sample_rate)
        self._packets = self._src.demux(src_stream)
        self._pending: list = []  # packets ready to mux (output time base), earliest first
        self._done = False

    def feed(self, until: float) -> None:
        """Mux the audio that plays before ``until`` seconds of output time."""
        while not self._done and (not self._pending or self._time(self._pending[-1]) < until):
            self._pull()
        while self._pending and self._time(self._pending[0]) < until:
            self.container.mux(self._pending.pop(0))

    def finish(self) -> None:
        """Mux the rest of the planned audio, flush the encoder and close the source."""
        self.feed(float("inf"))
        if self.plan.mode == "aac":
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        self.close()

    def close(self) -> None:
        self._src.close()

    @staticmethod
    def _time(packet) -> float:
        return float(packet.pts * packet.time_base) if packet.pts is not None else 0.0

    def _pull(self) -> None:
        """Read one source packet and queue what it contributes to the output."""
        packet = next(self._packets, None)
        if packet is None or packet.size == 0:
            if packet is None:
                self._done = True
            return
        t = self._time(packet)
        if t >= self.plan.end:
            self._done = True
            return
        if self.plan.mode == "copy":
            # packets are kept whole, so every packet that sounds after the start is kept (the source's own
            # priming packet, before time 0, included): the cut is within one packet (~20 ms) of the first frame
            end = t + float((packet.duration or 0) * packet.time_base)
            if end > self.plan.start + 1e-6:
                tb = packet.time_base
                shift = round(Fraction(self.plan.shift).limit_denominator(10**6) / tb)
                packet.pts -= shift
                packet.dts = packet.dts - shift if packet.dts is not None else packet.pts
                packet.stream = self.stream
                self._pending.append(packet)
            return
        for frame in packet.decode():
            for out in self._cut(frame):
                self._pending.extend(self.stream.encode(out))

    def _cut(self, frame) -> list:
        """Resample ``frame`` to float planar and cut it to [start, end), timed on the output timeline."""
        sr = self.stream.codec_context.sample_rate
        t0 = float(frame.pts * frame.time_base) if frame.pts is not None else self.plan.start
        out = []
        for f in self._resampler.resample(frame):
            samples = f.to_ndarray()  # (channels, n) float32
            first = max(0, int(round((self.plan.start - t0) * sr)))
            last = min(samples.shape[1], int(round((self.plan.end - t0) * sr)))
            if last > first:
                cut = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, first:last]), format="fltp",
                                                 layout=f.layout.name)
                cut.sample_rate, cut.time_base = sr, Fraction(1, sr)
                cut.pts = int(round((t0 - self.plan.shift) * sr)) + first
                out.append(cut)
            t0 += samples.shape[1] / sr
        return out
