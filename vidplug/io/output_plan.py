"""What a restored video keeps of its source, decided before any work: colour, timestamps and rotation
(:func:`vidplug.io.media.output_media`) and the audio track (:func:`plan_audio`), so that an impossible request
(``--audio copy`` of a track that cannot be kept) fails with one line and nothing written.

Frame selections that change the timing of the kept frames (``--stride``) drop the audio with a note: audio is
never written out of sync.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av

from vidplug.errors import VidplugError
from vidplug.io.media import AudioPlan, MediaInfo, OutputMedia, output_media, probe_media
from vidplug.io.writer import container_format

log = logging.getLogger(__name__)

AUDIO_MODES = ("auto", "copy", "aac", "none")


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
    fmt = container_format(out)  # the writer decides what a path becomes
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


def source_output_media(source: str | os.PathLike, out: str | os.PathLike, indices: range,
                        audio: str = "auto") -> OutputMedia:
    """What output ``out`` keeps of ``source`` for its frames ``indices``: colour, timestamps, rotation and audio
    (planned now, so ``audio="copy"`` fails before any work when it cannot be kept). A dropped or re-encoded audio
    track is logged in one line and listed in ``notes``."""
    media = probe_media(source)
    plan, note = plan_audio(media, out, audio, indices)
    kept = output_media(media, indices)
    kept.audio = plan
    if note:
        log.warning(note)
        kept.notes.append(note)
    return kept
