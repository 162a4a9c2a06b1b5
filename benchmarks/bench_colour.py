"""Colour round trip of the readers and writers on synthetic clips whose pixels are known.

Each clip is a moving colour chart encoded the way a camera writes it (H.264 4:2:0, matrix and range named, stream
tagged, or untagged where stated). Two legs are measured, as mean absolute error in 8-bit levels (0-255) and PSNR
against the chart:

- read: vidplug's reader against the chart;
- round trip: read, write with vidplug's writer as ``vidplug restore`` does, then decode the output the way a player
  does (its tags honoured; untagged streams as BT.709 when HD, BT.601 otherwise, as browsers and mpv assume).

Run: ``python benchmarks/bench_colour.py [--frames 4] [--no-append]``.
"""

from __future__ import annotations

import argparse
import inspect
import tempfile
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import Interpolation

from benchmarks.common import environment, markdown_table
from vidplug.io import read_video, write_video
from vidplug.io.synthetic import colour_chart, write_clip

_SWS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
# name -> (height, width, colour, range, tagged)
CLIPS = {
    "BT.709 HD 1280x720, limited, tagged": (720, 1280, "bt709", "tv", True),
    "BT.601 SD 720x480, limited, tagged": (480, 720, "bt601", "tv", True),
    "BT.709 HD 1280x720, full range, tagged": (720, 1280, "bt709", "pc", True),
    "BT.709 HD 1280x720, limited, untagged": (720, 1280, "bt709", "tv", False),
}


COLUMNS = [("clip", "clip", ""), ("read MAE", "read MAE (levels)", ".3f"), ("read PSNR", "read PSNR (dB)", ".2f"),
           ("round-trip MAE", "round-trip MAE (levels)", ".3f"), ("round-trip PSNR", "round-trip PSNR (dB)", ".2f")]


def player_decode(path: Path) -> np.ndarray:
    """Frames (T, H, W, 3) float64 in 8-bit levels, decoded as a player does (tags, else the size convention)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            hd = frame.height >= 720 or frame.width >= 1280
            space = frame.colorspace if frame.colorspace not in (0, 2) else (1 if hd else 5)
            rng = frame.color_range if frame.color_range else 1
            out.append(frame.to_ndarray(format="rgb24", interpolation=_SWS, src_colorspace=space,
                                        src_color_range=rng).astype(np.float64))
    return np.stack(out)


def errors(got: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    diff = got.astype(np.float64) - truth.astype(np.float64)
    mse = float((diff**2).mean())
    return float(np.abs(diff).mean()), 10 * np.log10(255.0**2 / max(mse, 1e-12))


def measure(frames: int, tmp: Path) -> list[dict]:
    rows = []
    writer_takes_media = "media" in inspect.signature(write_video).parameters
    for name, (h, w, colour, rng, tagged) in CLIPS.items():
        chart = colour_chart(frames, h, w)  # (T, H, W, 3) uint8
        clip = write_clip(tmp / f"{colour}{rng}{tagged}.mp4", chart, colour=colour, color_range=rng, tagged=tagged)
        video = read_video(clip)
        read_mae, read_psnr = errors(video.frames.permute(0, 2, 3, 1).numpy() * 255.0, chart)
        out = tmp / f"out-{len(rows)}.mp4"
        if writer_takes_media:
            from vidplug.io.media import output_media, probe_media

            write_video(video.frames, out, video.fps, media=output_media(probe_media(clip)))
        else:
            write_video(video.frames, out, video.fps)
        rt_mae, rt_psnr = errors(player_decode(out), chart)
        rows.append({"clip": name, "read MAE": round(read_mae, 3), "read PSNR": round(read_psnr, 2),
                     "round-trip MAE": round(rt_mae, 3), "round-trip PSNR": round(rt_psnr, 2)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=4)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.frames, Path(tmp))
    env = environment(torch.device("cpu"))
    print(f"commit {env['commit']}, {env['device']}, PyAV {av.__version__}")
    print(markdown_table(rows, COLUMNS))


if __name__ == "__main__":
    main()
