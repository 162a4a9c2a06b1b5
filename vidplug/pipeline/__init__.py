"""video in -> chunks -> method -> stitched video out (:func:`restore_video`).

- ``restore.py``: :func:`restore_video`, the run from checks to report;
- ``inputs.py``: rebuilding each chunk's observation and operator from the input;
- ``chunk_loop.py``: first pass, restoring and checkpointing chunks (with OOM re-planning);
- ``assemble.py``: second pass, stitching (cross-fades), scores and the report;
- ``outputs.py``: output paths and their checks.
"""

from vidplug.models import Models
from vidplug.pipeline.outputs import config_path_for
from vidplug.pipeline.restore import RestoreResult, restore_video

__all__ = ["Models", "RestoreResult", "config_path_for", "restore_video"]
