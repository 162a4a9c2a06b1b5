"""Muxing the source's audio into a restored video alongside its frames (:class:`AudioMuxer`, used by the video
writer); what to keep is decided beforehand by :func:`vidplug.io.output_plan.plan_audio`.

Audio follows the frames it belongs to: trimmed to the selected frames (``--start/--end``), shifted exactly as the
video timestamps are, and interleaved with the video packets. It is stream-copied when the output container can
hold the codec (no quality loss; cut at packet boundaries, within ~20 ms), otherwise decoded, cut to the sample and
re-encoded as AAC.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from vidplug.io.media import AudioPlan


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
