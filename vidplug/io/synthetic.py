"""Synthetic clips with known media properties: colour matrix and range, bit depth, rotation flag, variable frame
timing and an audio tone. The tests and the colour benchmark build their inputs with these, so every property the
readers and writers must keep is checked against a clip whose truth is known (the pixels, the timestamps, the tone).

Encoding goes through FFmpeg's scale filter with the matrix and range named explicitly, and the stream is tagged
with them, exactly as a camera or a well-behaved encoder writes a clip.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# colour name -> (FFmpeg scale matrix, AVCOL_SPC, AVCOL_PRI, AVCOL_TRC) of the tags a clip carries
COLOURS = {
    "bt709": ("bt709", 1, 1, 1),
    "bt601": ("smpte170m", 6, 6, 6),  # NTSC SD, what DVDs and most SD cameras tag
}
RANGES = {"tv": 1, "pc": 2}  # AVCOL_RANGE_MPEG (limited, 16-235), AVCOL_RANGE_JPEG (full, 0-255)


def colour_chart(frames: int, height: int, width: int, *, seed: int = 0, bits: int = 8) -> np.ndarray:
    """A moving chart of smooth colour ramps and saturated patches.

    Returns:
        np.ndarray: (frames, height, width, 3) uint8 (``bits`` = 8) or uint16 (``bits`` = 16, full 16-bit range).
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    patches = rng.uniform(0.05, 0.95, size=(4, 4, 3))
    out = []
    for t in range(frames):
        base = np.stack([(x + 3 * t) / width, y / height, 0.5 + 0.4 * np.sin((x + y + 5 * t) / (width / 3))], -1)
        py, px = (y * 4 // height).astype(int), ((x + 2 * t) * 4 // width).astype(int) % 4
        mix = np.where(((py + px) % 3 == 0)[..., None], patches[py, px], base % 1.0)
        out.append(mix)
    chart = np.clip(np.stack(out), 0.0, 1.0)  # (T, H, W, 3) in [0, 1]
    scale = 65535.0 if bits > 8 else 255.0
    return np.round(chart * scale).astype(np.uint16 if bits > 8 else np.uint8)


def _encode_graph(width: int, height: int, src_fmt: str, pix_fmt: str, matrix: str, rng: str, time_base: Fraction):
    graph = av.filter.Graph()
    nodes = [
        graph.add_buffer(width=width, height=height, format=src_fmt, time_base=time_base),
        graph.add("scale", f"out_color_matrix={matrix}:out_range={rng}:flags=bicubic+accurate_rnd+full_chroma_int"
                  + (":out_h_chr_pos=0:out_v_chr_pos=128" if "420" in pix_fmt else "")),  # H.264's 4:2:0 siting
        graph.add("format", pix_fmt),
        graph.add("buffersink"),
    ]
    for a, b in zip(nodes, nodes[1:], strict=False):
        a.link_to(b)
    graph.configure()
    return graph


def write_clip(
    path: str | os.PathLike,
    frames: np.ndarray,
    *,
    fps: float = 25.0,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    colour: str = "bt709",
    color_range: str = "tv",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    tone_hz: float | None = None,
    tone_switch: float | None = None,
    sample_rate: int = 48000,
    audio_codec: str = "aac",
    crf: int = 4,
    tagged: bool = True,
) -> Path:
    """Encode ``frames`` (T, H, W, 3) uint8 / uint16 RGB into a tagged clip, optionally with a mono sine tone.

    Args:
        pts: presentation timestamps of the frames in ``time_base`` units (variable frame rate); default
            ``i / fps``. rotation: display rotation in degrees (counter-clockwise, as the display matrix stores it).
        tagged: write the colour description (matrix, primaries, transfer, range) into the stream.
        tone_hz: add an audio stream: a sine of this frequency lasting exactly as long as the video.
        tone_switch: from this time (seconds) on, the tone is an octave higher: a landmark to check sync against.
    """
    path = Path(path)
    t, h, w, _ = frames.shape
    rate = Fraction(fps).limit_denominator(1001)
    time_base = time_base or 1 / rate
    pts = list(pts) if pts is not None else [int(round(i / rate / time_base)) for i in range(t)]
    matrix, spc, pri, trc = COLOURS[colour]
    src_fmt = "rgb48le" if frames.dtype == np.uint16 else "rgb24"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.time_base = time_base
        ctx = stream.codec_context
        if tagged:  # untagged clips (screen recordings, old encoders) leave the matrix to the player's guess
            ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = spc, pri, trc, RANGES[color_range]
        if codec in ("libx264", "libx265"):
            stream.options = {"crf": str(crf)}
        if rotation:
            stream.set_display_rotation(rotation)
        audio = None
        if tone_hz is not None:
            audio = container.add_stream(audio_codec, rate=sample_rate, layout="mono")
        graph = _encode_graph(w, h, src_fmt, pix_fmt, matrix, color_range, time_base)
        for i in range(t):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format=src_fmt)
            frame.pts, frame.time_base = pts[i], time_base
            graph.push(frame)
            out = graph.pull()
            out.pts, out.time_base = pts[i], time_base
            for packet in stream.encode(out):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if audio is not None:
            last = pts[-1] + (pts[-1] - pts[-2] if t > 1 else int(round(1 / rate / time_base)))
            _write_tone(container, audio, tone_hz, sample_rate, float(last * time_base), tone_switch)
    return path


def _write_tone(container, audio, tone_hz: float, sample_rate: int, seconds: float, switch: float | None) -> None:
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    freq = np.where(t >= switch, 2 * tone_hz, tone_hz) if switch is not None else np.full(n, tone_hz)
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate  # continuous phase across the switch
    tone = (0.5 * np.sin(phase)).astype(np.float32)
    fmt = audio.codec_context.codec.audio_formats[0].name  # e.g. fltp (aac), s16 (pcm, opus)
    block = 1024
    for start in range(0, n, block):
        chunk = tone[start : start + block]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, start
        if fmt != "fltp":
            frame = av.AudioResampler(format=fmt, layout="mono", rate=sample_rate).resample(frame)[0]
            frame.pts = start
        for packet in audio.encode(frame):
            container.mux(packet)
    for packet in audio.encode(None):
        container.mux(packet)
