"""vidplug.io: round trips, layouts, options, streaming and the one-line errors users see."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tests.conftest import make_translating_video
from vidplug.errors import VidplugError
from vidplug.io import (
    VideoWriter,
    center_crop_resize,
    compose_side_by_side,
    davis_sequences,
    iter_chunks,
    iter_frames,
    probe_video,
    read_davis,
    read_video,
    write_side_by_side,
    write_video,
)
from vidplug.io.transforms import to_rgb_tensor


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / torch.mean((a - b) ** 2).item())


def quantised(frames: torch.Tensor) -> torch.Tensor:
    """Frames exactly representable in 8 bits, so PNG round trips can be compared with ==."""
    return (frames * 255).round() / 255


def smooth_video(t: int, h: int, w: int) -> torch.Tensor:
    """A moving texture with features ~30 px wide: (t, 3, h, w) in [0, 1]. Random per-pixel colour would mostly
    measure H.264's 4:2:0 chroma subsampling, not the I/O code."""
    base = make_translating_video(t, max(4, h // 8), max(4, w // 8))
    return F.interpolate(base, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.fixture
def clip() -> torch.Tensor:
    return smooth_video(6, 32, 48)


def save_png(path, array: np.ndarray, mode: str | None = None) -> None:
    Image.fromarray(array, mode=mode).save(path)


# ---------------------------------------------------------------- round trips


def test_png_folder_round_trip_is_exact(tmp_path, clip):
    frames = quantised(clip)
    out = write_video(frames, tmp_path / "frames")
    assert sorted(p.name for p in out.iterdir())[:2] == ["00000.png", "00001.png"]
    video = read_video(out)
    assert video.frames.dtype == torch.float32
    assert torch.equal(video.frames, frames)


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".avi", ".mov"])
def test_video_round_trip_quality_and_fps(tmp_path, clip, ext):
    path = write_video(clip, tmp_path / f"clip{ext}", fps=12.0)
    video = read_video(path)
    assert video.frames.shape == clip.shape
    assert psnr(video.frames, clip) > 35.0
    assert video.fps == pytest.approx(12.0)
    info = probe_video(path)  # mkv/avi store no frame count: counted from packets
    assert (info.num_frames, info.height, info.width) == (6, 32, 48)
    assert info.fps == pytest.approx(12.0)


def test_ntsc_fps_is_kept(tmp_path, clip):
    path = write_video(clip[:2], tmp_path / "ntsc.mp4", fps=np.float32(30000 / 1001))  # numpy scalars are fine
    assert read_video(path).fps == pytest.approx(29.97, abs=1e-3)


@pytest.mark.parametrize("dest", ["odd.mp4", "odd.mkv", "odd_png"])
def test_odd_sizes_round_trip(tmp_path, dest):
    frames = smooth_video(3, 33, 49)
    video = read_video(write_video(frames, tmp_path / dest))
    assert video.frames.shape == (3, 3, 33, 49)
    assert psnr(video.frames, frames) > 35.0


def test_grayscale_frames_are_written_as_rgb(tmp_path, clip):
    gray = quantised(clip[:, :1])  # (T, 1, H, W)
    video = read_video(write_video(gray, tmp_path / "gray"))
    assert video.frames.shape == (6, 3, 32, 48)
    assert torch.equal(video.frames, gray.expand(-1, 3, -1, -1))


def test_input_is_not_modified(tmp_path, clip):
    src = write_video(clip, tmp_path / "in.mp4")
    before = src.read_bytes()
    read_video(src, size=16)
    list(iter_frames(src, max_frames=2))
    probe_video(src)
    assert src.read_bytes() == before


# ---------------------------------------------------------------- image folders


def test_natural_sort_and_extension_filter(tmp_path):
    for i in (10, 2, 1):
        save_png(tmp_path / f"frame{i}.png", np.full((8, 8, 3), i * 10, np.uint8))
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    video = read_video(tmp_path)
    assert video.frames[:, 0, 0, 0].mul(255).round().tolist() == [10, 20, 100]
    assert video.fps == 25.0


def test_gray_rgba_palette_and_16bit_images_become_rgb(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    gray = rgb[:, :, 0]
    save_png(tmp_path / "0.png", gray, "L")
    save_png(tmp_path / "1.png", np.dstack([rgb, np.full((8, 10), 7, np.uint8)]), "RGBA")
    Image.fromarray(rgb).quantize(8).save(tmp_path / "2.png")  # paletted
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "3.png")  # 16-bit grayscale
    Image.fromarray(rgb).save(tmp_path / "4.bmp")
    Image.fromarray(rgb).save(tmp_path / "5.tif")
    frames = read_video(tmp_path).frames
    assert frames.shape == (6, 3, 8, 10)
    g = torch.from_numpy(gray).float() / 255
    assert torch.equal(frames[0], g.expand(3, -1, -1))  # gray repeated
    assert torch.equal(frames[1], torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)  # alpha dropped
    assert torch.allclose(frames[3], g.expand(3, -1, -1), atol=1e-6)  # 16 bit scaled by 65535
    assert torch.equal(frames[4], frames[1]) and torch.equal(frames[5], frames[1])
    palette = Image.open(tmp_path / "2.png").convert("RGB")
    assert torch.equal(frames[2], torch.from_numpy(np.array(palette)).permute(2, 0, 1).float() / 255)


def test_to_rgb_tensor_layouts():
    assert to_rgb_tensor(np.zeros((4, 5, 2), np.uint8)).shape == (3, 4, 5)
    assert to_rgb_tensor(np.ones((4, 5), np.float64) * 2).max() == 1.0  # clipped
    with pytest.raises(VidplugError, match="pixel layout"):
        to_rgb_tensor(np.zeros((4, 5, 6), np.uint8))


def test_mixed_sizes_name_the_offending_file(tmp_path):
    save_png(tmp_path / "a0.png", np.zeros((8, 8, 3), np.uint8))
    save_png(tmp_path / "a1.png", np.zeros((8, 8, 3), np.uint8))
    save_png(tmp_path / "a2.png", np.zeros((9, 8, 3), np.uint8))
    with pytest.raises(VidplugError, match=r"a2\.png is 8x9"):
        read_video(tmp_path)


def test_empty_and_corrupt_image_folders(tmp_path):
    with pytest.raises(VidplugError, match="no images"):
        read_video(tmp_path)
    (tmp_path / "00000.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(VidplugError, match="cannot decode image"):
        read_video(tmp_path)


# ---------------------------------------------------------------- DAVIS


def make_davis(root, sequences=("bear", "dog"), frames=3, h=12, w=20):
    for k, seq in enumerate(sequences):
        folder = root / "JPEGImages" / "480p" / seq
        folder.mkdir(parents=True)
        for i in range(frames):
            save_png(folder / f"{i:05d}.png", np.full((h, w, 3), 40 * k + i, np.uint8))  # png: exact values
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("dog\nbear\nmissing\n")
    (root / "ImageSets" / "2017" / "train.txt").write_text("bear\n")


def test_davis_layout(tmp_path):
    make_davis(tmp_path)
    assert davis_sequences(tmp_path, "val") == ["dog", "bear"]  # file order; absent 'missing' skipped
    assert davis_sequences(tmp_path, "train") == ["bear"]
    assert davis_sequences(tmp_path, "all") == ["bear", "dog"]
    video = read_davis(tmp_path, "dog", stride=2)
    assert video.frames.shape == (2, 3, 12, 20)
    assert video.frames[:, 0, 0, 0].mul(255).round().tolist() == [40, 42]
    assert video.fps == 12.0  # 24 fps / stride 2
    assert read_video(tmp_path / "JPEGImages" / "480p" / "bear").fps == 24.0  # sequence folder recognised


def test_davis_errors_list_what_exists(tmp_path):
    make_davis(tmp_path)
    with pytest.raises(VidplugError, match="unknown DAVIS sequence 'cat'.*available: bear, dog"):
        read_davis(tmp_path, "cat")
    with pytest.raises(VidplugError, match="test-dev.txt is missing.*train.txt, val.txt"):
        davis_sequences(tmp_path, "test-dev")
    with pytest.raises(VidplugError, match="does not look like DAVIS.*contains ImageSets, JPEGImages"):
        davis_sequences(tmp_path, resolution="Full-Resolution")
    with pytest.raises(VidplugError, match="does not exist"):
        davis_sequences(tmp_path / "nope")


# ---------------------------------------------------------------- options and streaming


@pytest.mark.parametrize("kind", ["mp4", "png"])
def test_range_stride_max_frames_match_slicing(tmp_path, clip, kind):
    src = write_video(clip, tmp_path / ("v.mp4" if kind == "mp4" else "v"))
    full = read_video(src).frames
    assert torch.equal(read_video(src, start=1, end=5, stride=2).frames, full[1:5:2])
    assert torch.equal(read_video(src, start=2, max_frames=3).frames, full[2:5])
    assert torch.equal(read_video(src, stride=4).frames, full[::4])
    assert torch.equal(read_video(src, end=100).frames, full)
    with pytest.raises(VidplugError, match="no frames"):
        read_video(src, start=50)
    with pytest.raises(VidplugError, match="stride"):
        read_video(src, stride=0)


def test_size_option_center_crops_then_resizes(tmp_path):
    # 24x48 frame: left/right quarters black, central 24x24 square white
    frame = torch.zeros(1, 3, 24, 48)
    frame[..., 12:36] = 1.0
    src = write_video(frame, tmp_path / "f")
    out = read_video(src, size=12).frames
    assert out.shape == (1, 3, 12, 12)
    assert torch.allclose(out, torch.ones_like(out))  # only the center survives the crop
    assert read_video(src, size=(6, 16)).frames.shape == (1, 3, 6, 16)  # wider aspect: crop rows
    assert center_crop_resize(frame, None) is frame
    up = center_crop_resize(torch.rand(2, 3, 5, 7), (11, 13))
    assert up.shape == (2, 3, 11, 13) and 0 <= up.min() and up.max() <= 1
    with pytest.raises(VidplugError, match="size"):
        read_video(src, size=(0, 4))


@pytest.mark.parametrize("kind", ["mp4", "png"])
def test_iter_frames_and_chunks_match_read_video(tmp_path, clip, kind):
    src = write_video(clip, tmp_path / ("v.mp4" if kind == "mp4" else "v"))
    opts = dict(start=1, stride=1, max_frames=5, size=(16, 16))
    whole = read_video(src, **opts).frames
    frames = list(iter_frames(src, **opts))
    assert all(f.shape == (3, 16, 16) for f in frames)
    assert torch.equal(torch.stack(frames), whole)
    chunks = list(iter_chunks(src, 2, **opts))
    assert [c.shape[0] for c in chunks] == [2, 2, 1]
    assert torch.equal(torch.cat(chunks), whole)


def test_iter_frames_stops_early_on_a_long_stream(tmp_path):
    src = write_video(torch.rand(40, 3, 16, 16), tmp_path / "long.mp4")
    it = iter_frames(src)
    first = next(it)
    it.close()  # abandoning the iterator closes the container
    assert first.shape == (3, 16, 16)
    assert probe_video(src).num_frames == 40


def test_iterators_check_their_source_when_called(tmp_path):
    with pytest.raises(VidplugError, match="no images"):
        iter_frames(tmp_path)  # no next() needed
    with pytest.raises(VidplugError, match="no such file"):
        iter_chunks(tmp_path / "nope.mp4", 4)
    with pytest.raises(VidplugError, match="chunk_size"):
        iter_chunks(tmp_path, 0)


def test_high_bit_depth_video_keeps_its_precision(tmp_path):
    import av

    path = tmp_path / "deep.mkv"
    ramp = np.linspace(0, 65535, 64)[None, :, None].repeat(8, 0).repeat(3, 2).astype(np.uint16)  # (8, 64, 3)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)  # lossless, 10-bit 4:2:0
        stream.width, stream.height, stream.pix_fmt = 64, 8, "yuv420p10le"
        frame = av.VideoFrame.from_ndarray(ramp, format="rgb48le").reformat(format="yuv420p10le")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    row = read_video(path).frames[0, 1, 4]  # (64,) green channel
    off_grid = (row * 255 - (row * 255).round()).abs()
    assert off_grid.max() > 0.2  # values between 8-bit levels: not truncated to rgb24
    assert torch.all(row[1:] >= row[:-1] - 1e-3)  # still a ramp


def test_streaming_writer_appears_only_on_close(tmp_path, clip):
    path = tmp_path / "stream.mp4"
    with VideoWriter(path, fps=10) as writer:
        writer.write(clip[:3])
        writer.write(clip[3])  # a single (C, H, W) frame
        assert not path.exists()
        assert [p for p in tmp_path.iterdir() if p.name.startswith(".stream.mp4")]  # hidden temporary
        with pytest.raises(VidplugError, match="differs"):
            writer.write(torch.rand(1, 3, 8, 8))
    assert writer.count == 4
    assert read_video(path).frames.shape == (4, 3, 32, 48)
    assert list(tmp_path.iterdir()) == [path]  # no temporary left


@pytest.mark.parametrize("name", ["broken.mp4", "broken_png"])
def test_failed_write_leaves_nothing(tmp_path, clip, name):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / name) as writer:
            writer.write(clip)
            raise RuntimeError("solver crashed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(VidplugError, match="no frames were written"):
        with VideoWriter(tmp_path / name):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.mp4", "out_png"])
def test_overwrite_refusal_keeps_existing_output(tmp_path, clip, name):
    path = write_video(clip[:2], tmp_path / name)
    snapshot = read_video(path).frames
    with pytest.raises(VidplugError, match="already exists; pass --overwrite"):
        write_video(clip, path)
    assert torch.equal(read_video(path).frames, snapshot)
    write_video(clip, path, overwrite=True)
    assert read_video(path).num_frames == 6
    assert len(list(tmp_path.iterdir())) == 1  # old output and temporaries cleaned up


def test_bad_frames_and_outputs_are_refused(tmp_path):
    with pytest.raises(VidplugError, match=r"\(T, C, H, W\)"):
        write_video(torch.rand(2, 4, 8, 8), tmp_path / "x.mp4")
    with pytest.raises(VidplugError, match="float"):
        write_video(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), tmp_path / "x.mp4")
    with pytest.raises(VidplugError, match="cannot write '.gif'"):
        write_video(torch.rand(2, 3, 8, 8), tmp_path / "x.gif")
    with pytest.raises(VidplugError, match="fps"):
        write_video(torch.rand(2, 3, 8, 8), tmp_path / "x.mp4", fps=0)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- errors on bad inputs


def test_missing_and_unsupported_paths(tmp_path):
    with pytest.raises(VidplugError, match="no such file or folder"):
        read_video(tmp_path / "nope.mp4")
    (tmp_path / "clip.xyz").write_bytes(b"data")
    with pytest.raises(VidplugError, match="unsupported file type '.xyz'"):
        probe_video(tmp_path / "clip.xyz")


@pytest.mark.parametrize("damage", ["zero_bytes", "text", "truncated"])
def test_damaged_video_files_give_one_line_errors(tmp_path, clip, damage):
    good = write_video(clip, tmp_path / "good.mp4").read_bytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes({"zero_bytes": b"", "text": b"hello, not a video\n" * 20, "truncated": good[: len(good) // 2]}[damage])
    for call in (read_video, probe_video, lambda p: list(iter_frames(p))):
        with pytest.raises(VidplugError, match="cannot decode .*re-encode it with ffmpeg") as info:
            call(bad)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_videos_without_frames_are_errors(tmp_path, ext):
    import av

    path = tmp_path / f"empty.{ext}"
    container = av.open(str(path), "w")  # header only: a video stream that never got a frame
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
    container.start_encoding()
    container.close()
    for call in (read_video, probe_video):
        with pytest.raises(VidplugError, match="cannot decode|no video stream|zero frames") as info:
            call(path)
        assert "\n" not in str(info.value)


# ---------------------------------------------------------------- side by side


def test_side_by_side_composes_labelled_panels(tmp_path):
    gt = torch.full((2, 3, 32, 40), 0.5)
    low = torch.full((2, 3, 8, 10), 0.5)
    low[..., 7, 9] = 1.0  # one bright low-res pixel becomes a 4x4 block
    comp = compose_side_by_side([("observed", low), ("", gt)])
    assert comp.shape == (2, 3, 32, 40 + 2 + 40)
    assert torch.all(comp[..., 28:32, 36:40] == 1.0)  # nearest upscale of the bright pixel
    plain = compose_side_by_side([("", low), ("", gt)])
    assert torch.equal(comp[..., 16:, :], plain[..., 16:, :])  # the label stays in the top-left corner
    assert torch.allclose(comp[..., :2, :2], torch.tensor(0.125))  # dark box: background darkened to 25%
    assert (comp[..., :12, :40] > 0.5).any()  # text brighter than the original background
    assert torch.all(comp[..., 42:] == 0.5)  # empty label draws nothing
    out = write_side_by_side([("observed", low), ("truth", gt)], tmp_path / "sbs.mp4", fps=8, chunk_size=1)
    video = read_video(out)
    assert video.frames.shape == (2, 3, 32, 82) and video.fps == pytest.approx(8.0)


def test_side_by_side_rejects_mismatched_lengths(tmp_path):
    with pytest.raises(VidplugError, match="different frame counts"):
        write_side_by_side([("a", torch.rand(2, 3, 8, 8)), ("b", torch.rand(3, 3, 8, 8))], tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os

    from vidplug.io.atomic import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask
