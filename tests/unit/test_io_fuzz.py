"""Damaged video files must fail with a one-line VidplugError (or decode), never with a raw PyAV exception."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_translating_video
from vidplug.errors import VidplugError
from vidplug.io import probe_video, read_video, write_video


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fuzz")
    clip = make_translating_video(4, 16, 16)
    return {ext: write_video(clip, folder / f"valid.{ext}").read_bytes() for ext in ("mp4", "mkv")}


damage = st.fixed_dictionaries(
    {
        "ext": st.sampled_from(["mp4", "mkv"]),
        # (relative position, replacement byte) pairs; relative so they land anywhere in the file
        "edits": st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
        "keep": st.one_of(st.none(), st.floats(0, 1)),  # truncate to this fraction of the file
    }
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=damage)
def test_corrupted_video_raises_only_vidplug_errors(tmp_path, valid_bytes, damage):
    data = bytearray(valid_bytes[damage["ext"]])
    for position, value in damage["edits"]:
        data[int(position * len(data))] = value
    if damage["keep"] is not None:
        data = data[: int(damage["keep"] * len(data))]
    path = tmp_path / f"damaged.{damage['ext']}"
    path.write_bytes(bytes(data))
    for call in (probe_video, read_video):
        try:
            result = call(path)
        except VidplugError as exc:
            assert "\n" not in str(exc)
            continue
        if call is read_video:  # decoding succeeded: the contract on frames still holds
            assert result.frames.ndim == 4 and result.frames.shape[1] == 3
            assert result.frames.dtype == torch.float32
            assert 0.0 <= result.frames.min() and result.frames.max() <= 1.0
