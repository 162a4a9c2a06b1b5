"""Real videos in, real videos out: audio, timestamps, colour, rotation, bit depth and containers kept, on tiny
synthetic clips built with PyAV (vidplug.io.synthetic) whose truth is known."""

from __future__ import annotations

import json
import re
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from vidplug.cli import main
from vidplug.errors import VidplugError
from vidplug.io import probe_video, read_video, write_video
from vidplug.io.media import BT601, BT709, guess_matrix, output_media, probe_media
from vidplug.io.synthetic import colour_chart, write_clip

FPS = 25
RESTORE = ["--task", "sr", "--set", "task.options.factor=2", "--method", "bicubic", "--no-progress"]


def _streams(path):
    """(video frame times in s, audio samples (n,) float, audio sample rate, audio start s) of a file."""
    with av.open(str(path)) as c:
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return times, None, None, None
        frames = list(c.decode(audio=0))
        start = float(frames[0].pts * frames[0].time_base)
        samples = np.concatenate([f.to_ndarray().reshape(f.to_ndarray().shape[0], -1)[0] for f in frames])
        return times, samples, frames[0].sample_rate, start


def _switch_time(samples: np.ndarray, rate: int) -> float:
    """When the tone goes up an octave: the first 10 ms window whose zero crossings are 1.5x the first window's."""
    win = rate // 100
    counts = [np.count_nonzero(np.diff(np.sign(samples[i : i + win]))) for i in range(0, len(samples) - win, win)]
    base = np.median(counts[: max(len(counts) // 4, 1)])
    return next(i for i, c in enumerate(counts) if c > 1.5 * base) * win / rate


@pytest.fixture
def tone_clip(tmp_path):
    """20 frames at 25 fps, 32x48, with a 440 Hz tone that jumps an octave at frame 10 (0.4 s)."""
    return write_clip(tmp_path / "tone.mp4", colour_chart(20, 32, 48), fps=FPS, tone_hz=440, tone_switch=0.4)


@pytest.mark.parametrize("audio", ["auto", "aac"])
def test_audio_kept_trimmed_and_in_sync(tone_clip, tmp_path, audio):
    out = tmp_path / f"out-{audio}.mp4"
    assert main(["restore", str(tone_clip), "--out", str(out), "--start", "4", "--end", "16", "--audio", audio,
                 *RESTORE]) == 0
    times, samples, rate, start = _streams(out)
    assert len(times) == 12 and times[0] == pytest.approx(0.0)
    video_end = times[-1] + 1 / FPS
    assert abs(start - times[0]) < 1 / FPS  # starts with the first kept frame
    assert abs(start + len(samples) / rate - video_end) < 1 / FPS  # and lasts as long as the frames
    # the octave jump was at source frame 10, i.e. output frame 6: sync within one frame
    assert abs(start + _switch_time(samples, rate) - 6 / FPS) < 1 / FPS


def test_stride_drops_audio_with_a_note_and_no_audio_drops_it(tone_clip, tmp_path, caplog):
    out = tmp_path / "strided.mp4"
    assert main(["restore", str(tone_clip), "--out", str(out), "--stride", "2", *RESTORE]) == 0
    assert _streams(out)[1] is None
    assert any("audio dropped: --stride 2" in r.getMessage() for r in caplog.records)
    quiet = tmp_path / "quiet.mp4"
    assert main(["restore", str(tone_clip), "--out", str(quiet), "--no-audio", *RESTORE]) == 0
    assert _streams(quiet)[1] is None


@pytest.mark.parametrize("out_name, extra, message", [
    ("out.mp4", ["--stride", "2"], "--audio copy: --stride 2"),
    ("frames", [], "--audio copy: .* is a folder of PNG frames"),
])
def test_forced_copy_that_cannot_be_kept_fails_and_writes_nothing(tone_clip, tmp_path, capsys, out_name, extra,
                                                                  message):
    out = tmp_path / out_name
    assert main(["restore", str(tone_clip), "--out", str(out), "--audio", "copy", *extra, *RESTORE]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and re.search(message, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tone.mp4"]


def test_forced_copy_without_audio_fails(tmp_path, capsys):
    clip = write_clip(tmp_path / "mute.mp4", colour_chart(4, 16, 16))
    assert main(["restore", str(clip), "--out", str(tmp_path / "o.mp4"), "--audio", "copy", *RESTORE]) == 2
    assert "the input has no audio stream" in capsys.readouterr().err


def test_vfr_timestamps_and_time_base_kept(tmp_path):
    pts = [0, 1, 3, 4, 8, 9, 10, 14]  # in 1/25 s: variable frame rate
    clip = write_clip(tmp_path / "vfr.mp4", colour_chart(8, 16, 32), pts=pts, time_base=Fraction(1, 25))
    media = probe_media(clip)
    assert media.vfr and [round(float(p * media.time_base) * 25) for p in media.pts] == pts
    out = tmp_path / "out.mp4"
    assert main(["restore", str(clip), "--out", str(out), "--start", "2", "--report", str(tmp_path / "r.json"),
                 *RESTORE]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["media"]["variable_frame_rate"] is True
    times = _streams(out)[0]
    assert [round(t * 25) for t in times] == [p - 3 for p in pts[2:]]  # the kept frames' times, from 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].time_base == media.time_base  # the source's time base (the mp4 muxer's 1/12800)
    strided = output_media(media, range(0, 8, 2)).pts  # a stride keeps the frames' own times
    assert [p * media.time_base * 25 for p in strided] == [0, 3, 8, 10]


def test_rotated_clip_read_upright_and_flag_kept(tmp_path):
    chart = colour_chart(3, 32, 48)  # stored 48 wide, 32 high; displayed turned 90 degrees counter-clockwise
    clip = write_clip(tmp_path / "rot.mp4", chart, rotation=90)
    info, video = probe_video(clip), read_video(clip)
    assert (info.height, info.width) == (48, 32) and video.frames.shape[-2:] == (48, 32)
    upright = torch.from_numpy(np.rot90(chart, 1, axes=(1, 2)).copy()).permute(0, 3, 1, 2).float() / 255
    err = (video.frames - upright).abs().mean()
    assert err < 0.04 and err * 3 < (video.frames - upright.flip(-1).flip(-2)).abs().mean()  # not turned the other way
    out = tmp_path / "out.mkv"
    assert main(["restore", str(clip), "--out", str(out), *RESTORE]) == 0
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
    assert frame.rotation == 90 and (frame.height, frame.width) == (64, 96)  # stored as the source, x2
    assert read_video(out).frames.shape[-2:] == (96, 64)


def _mean_colour_error(got: np.ndarray, truth: np.ndarray) -> float:
    """Largest per-channel difference of the mean colour, in 8-bit levels (chroma-subsampling error at the chart's
    edges averages out; a wrong matrix or range shifts it by several levels)."""
    return float(np.abs(got.reshape(-1, 3).mean(0) - truth.reshape(-1, 3).astype(np.float64).mean(0)).max())


@pytest.mark.parametrize("colour, matrix", [("bt709", BT709), ("bt601", 6)])
def test_colour_read_with_the_streams_matrix_and_written_tagged(tmp_path, colour, matrix):
    chart = colour_chart(2, 32, 48, seed=1)  # (T, H, W, 3) uint8
    clip = write_clip(tmp_path / f"{colour}.mp4", chart, colour=colour)
    got = read_video(clip).frames.permute(0, 2, 3, 1).numpy() * 255
    assert _mean_colour_error(got, chart) < 0.6
    with av.open(str(clip)) as c:
        f = next(c.decode(video=0))
        wrong = f.to_ndarray(format="rgb24", src_colorspace=BT601 if colour == "bt709" else BT709)
    assert _mean_colour_error(wrong, chart[0]) > 1.2  # the other matrix (the test can fail)
    out = write_video(read_video(clip).frames, tmp_path / "out.mp4", media=output_media(probe_media(clip)))
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.colorspace, ctx.color_range) == (matrix, 1)
    again = read_video(out).frames.permute(0, 2, 3, 1).numpy() * 255
    assert _mean_colour_error(again, chart) < 0.8


def test_untagged_streams_follow_the_size_convention():
    assert guess_matrix(720, 1280) == BT709 and guess_matrix(1080, 1920) == BT709
    assert guess_matrix(480, 720) == BT601 and guess_matrix(576, 720) == BT601


def test_10bit_clip_keeps_its_precision(tmp_path):
    chart = colour_chart(2, 32, 64, bits=16)
    clip = write_clip(tmp_path / "deep.mkv", chart, pix_fmt="yuv444p10le", crf=0)  # precision, not chroma
    frames = read_video(clip).frames  # (T, 3, H, W) float32
    levels = frames.numpy() * 255
    off_grid = np.abs(levels - np.round(levels)) > 0.1
    assert off_grid.mean() > 0.5  # 8-bit decoding would put every value on the k/255 grid
    assert np.abs(frames.permute(0, 2, 3, 1).numpy() - chart / 65535).mean() < 2 / 255


@pytest.mark.parametrize("ext, codec, audio_codec", [("mkv", "libx264", "aac"), ("mov", "libx264", "aac"),
                                                      ("webm", "libvpx-vp9", "libopus")])
def test_containers_in_and_audio_copied_into_mkv(tmp_path, ext, codec, audio_codec):
    clip = write_clip(tmp_path / f"in.{ext}", colour_chart(5, 16, 32), codec=codec, tone_hz=440,
                      audio_codec=audio_codec)
    assert read_video(clip).num_frames == 5
    out = tmp_path / "out.mkv"
    assert main(["restore", str(clip), "--out", str(out), *RESTORE]) == 0
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == audio_codec.removeprefix("lib")


def test_mp4_output_is_faststart(tone_clip, tmp_path):
    out = write_video(read_video(tone_clip).frames, tmp_path / "o.mp4")
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # the index first: playable while downloading


def test_audio_plans_for_bad_modes_and_frame_count_changes(tone_clip, tmp_path):
    from vidplug.io.output_plan import plan_audio

    media = probe_media(tone_clip)
    with pytest.raises(VidplugError, match="unknown --audio"):
        plan_audio(media, tmp_path / "o.mp4", "mp3", range(3))
    plan, note = plan_audio(media, tmp_path / "o.mp4", "auto", range(4, 16))
    assert plan.mode == "copy" and note is None
    assert (plan.start, plan.end, plan.shift) == pytest.approx((4 / FPS, 16 / FPS, 4 / FPS))
    assert plan_audio(media, tmp_path / "o.mp4", "auto", range(20), output_frames=10) == (
        None, "audio dropped: the task turns 20 frames into 10")
    with pytest.raises(VidplugError, match="--audio copy: the task turns 20 frames into 10"):
        plan_audio(media, tmp_path / "o.mp4", "copy", range(20), output_frames=10)
