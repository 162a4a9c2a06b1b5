"""Evaluation datasets in any layout: a REDS-like tree of sequence folders and a folder of videos evaluated end to
end (bicubic, tiny sizes), split files, and the bad inputs (empty root, mixed sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidplug.cli import main
from vidplug.errors import VidplugError
from vidplug.io.datasets import read_split, resolve_dataset
from vidplug.io.synthetic import colour_chart, write_clip

EVAL = ["--task", "sr", "--set", "task.options.factor=2", "--method", "bicubic", "--no-progress", "--no-videos",
        "--max-frames", "3"]


def _frames(folder, n=3, h=16, w=24, seed=0):
    folder.mkdir(parents=True)
    for i, frame in enumerate(colour_chart(n, h, w, seed=seed)):
        Image.fromarray(frame).save(folder / f"{i:08d}.png")  # REDS names its frames 00000000.png


@pytest.fixture
def reds_root(tmp_path):
    """train_sharp/{000,011,015,020,2}/ with three 16x24 frames each, and a stray file."""
    root = tmp_path / "train_sharp"
    for k, name in enumerate(("000", "011", "015", "020", "2")):
        _frames(root / name, seed=k)
    (root / "notes.txt").write_text("not a sequence")
    return root


def test_reds_like_tree_with_a_split_file_evaluated_end_to_end(reds_root, tmp_path):
    split = tmp_path / "reds_subset.txt"
    split.write_text("# a published-style split\n011\n000\n")
    out = tmp_path / "eval"
    assert main(["eval", "--dataset", str(reds_root), "--split", str(split), "--out", str(out), "--size", "native",
                 *EVAL]) == 0
    res = json.loads((out / "results.json").read_text())
    assert list(res["sequences"]) == ["011", "000"] and res["layout"] == "folders"
    for name in ("011", "000"):
        assert res["sequences"][name]["metrics"]["psnr"] > 15  # bicubic x2 on smooth ramps
        assert (out / "sequences" / name / "restored.mp4").is_file()
    assert "Evaluation on train_sharp" in (out / "report.md").read_text()


def test_sequence_folders_are_natural_sorted(reds_root):
    assert resolve_dataset(reds_root).names == ["000", "2", "011", "015", "020"]  # by number, not as text
    assert resolve_dataset(reds_root, sequences=["015"]).names == ["015"]
    with pytest.raises(VidplugError, match="unknown sequence 'calendar'.*available: 000"):
        resolve_dataset(reds_root, sequences=["calendar"])


def test_bundled_published_splits(reds_root):
    splits = Path(__file__).resolve().parents[2] / "configs" / "splits"
    assert resolve_dataset(reds_root, split=str(splits / "reds4.txt")).names == ["000", "011", "015", "020"]
    assert read_split(splits / "vid4.txt") == ["calendar", "city", "foliage", "walk"]


def test_folder_of_videos_evaluated_per_sequence_with_ablate_too(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    write_clip(root / "walk.mp4", colour_chart(4, 16, 24, seed=1))
    write_clip(root / "city.mkv", colour_chart(4, 16, 24, seed=2))
    out = tmp_path / "eval"
    assert main(["eval", "--dataset", str(root), "--out", str(out), "--size", "16x24", *EVAL]) == 0
    res = json.loads((out / "results.json").read_text())
    assert list(res["sequences"]) == ["city", "walk"] and res["layout"] == "videos"
    assert all(r["frames"] == 3 for r in res["sequences"].values())
    abl = tmp_path / "ablate"
    assert main(["ablate", "--dataset", str(root), "--out", str(abl), "--sequences", "walk", "--baselines", "bicubic",
                 "--iters", "1", "--prior", "tiny", "--task", "sr", "--set", "task.options.factor=2",
                 "--no-progress", "--no-videos", "--max-frames", "2", "--size", "16", "--chunk", "2"]) == 0
    table = json.loads((abl / "results.json").read_text())["table"]
    assert "Bicubic / A^+" in table and table["Bicubic / A^+"]["psnr"] > 15


def test_empty_root_and_mixed_sizes_fail_with_one_line_and_write_nothing(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "not-frames").mkdir(parents=True)
    out = tmp_path / "out"
    assert main(["eval", "--dataset", str(empty), "--out", str(out), *EVAL]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no sequences under" in err and not out.exists()
    mixed = tmp_path / "mixed"
    _frames(mixed / "a", h=16, w=24)
    _frames(mixed / "b", h=20, w=24)
    assert main(["eval", "--dataset", str(mixed), "--out", str(out), "--size", "native", *EVAL]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "sequences differ in size" in err and "--size" in err and not out.exists()
    assert main(["eval", "--dataset", str(mixed), "--out", str(out), "--split", str(tmp_path / "nope.txt"),
                 *EVAL]) == 2
    assert "no such file" in capsys.readouterr().err and not out.exists()


def test_davis_alias_and_split_file_on_davis(davis_root, tmp_path):
    from tests.conftest import DAVIS_SEQS

    split = tmp_path / "one.txt"
    split.write_text(DAVIS_SEQS[-1] + "\n")
    ds = resolve_dataset(davis_root, split=str(split))
    assert ds.layout == "davis" and ds.names == [DAVIS_SEQS[-1]]
    assert resolve_dataset(davis_root).layout == "davis"
    assert np.all([p.is_dir() for p in resolve_dataset(davis_root, split="all").sequences.values()])
