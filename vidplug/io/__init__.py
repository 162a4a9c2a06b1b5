"""Video input/output: read video files, image folders and DAVIS sequences as (T, 3, H, W) float32 frames in
[0, 1]; stream long videos frame by frame; write videos, PNG folders and labelled side-by-side comparisons
atomically, keeping the source's audio, timestamps, colour description and rotation; resolve evaluation datasets
(DAVIS, folders of sequence folders, folders of videos) into sequences."""

from vidplug.io.datasets import Dataset, resolve_dataset
from vidplug.io.davis import davis_sequence_dir, davis_sequences, read_davis
from vidplug.io.media import MediaInfo, probe_media
from vidplug.io.side_by_side import compose_side_by_side, write_side_by_side
from vidplug.io.transforms import center_crop_resize, select_indices
from vidplug.io.video import (
    VIDEO_EXTENSIONS,
    Video,
    VideoInfo,
    iter_chunks,
    iter_frames,
    probe_video,
    read_video,
)
from vidplug.io.writer import VideoWriter, write_video

__all__ = [
    "VIDEO_EXTENSIONS",
    "Dataset",
    "MediaInfo",
    "Video",
    "VideoInfo",
    "VideoWriter",
    "center_crop_resize",
    "compose_side_by_side",
    "davis_sequence_dir",
    "davis_sequences",
    "iter_chunks",
    "iter_frames",
    "probe_media",
    "probe_video",
    "read_davis",
    "read_video",
    "resolve_dataset",
    "select_indices",
    "write_side_by_side",
    "write_video",
]
