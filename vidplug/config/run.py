"""The run configuration of a restoration: typed dataclasses composed from each layer's own settings (the solver's
:class:`~vidplug.solver.config.SolverConfig`, the physics task options) and loaded through :mod:`vidplug.typed`.

Every field carries a one-line comment with its unit or meaning; choice fields are ``Literal`` types and task
options are typed per task, so a bad value fails when the config is loaded, not when a run reaches it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from vidplug.errors import VidplugError
from vidplug.physics.noise import Noise, parse_noise
from vidplug.physics.registry import Task, task_options_type
from vidplug.solver.config import SolverConfig
from vidplug.typed import check_choices, from_dict

# the names of vidplug.methods.METHODS, in its order
Method = Literal["dmplug", "bicubic", "diffpir", "least-squares", "flow-least-squares", "telea"]


@dataclass
class TaskConfig:
    config_prefix = "task"

    name: Task = "sr4"  # degradation: sr4 | sr | inpaint | temporal | deblur | temporal+deblur
    noise_sigma: float = 0.01  # measurement noise std on the [-1, 1] scale (DMPlug: 0.01); 0 = noiseless
    # noise model TYPE[:LEVEL]: gaussian | impulse | shot | speckle, LEVEL low | high | a number (impulse:high,
    # shot:25); a bare number = Gaussian sigma on [-1, 1]; "" = Gaussian noise_sigma. Simulation only: the solver
    # never sees it (vidplug/physics/noise.py)
    noise: str | float = ""
    seed: int = 0  # seeds masks, blur kernels and noise (operators are rebuilt exactly from it)
    # observed values at 0 or 1 far from their 3x3 median (salt-and-pepper impulses) leave the data term and are
    # filled from their neighbours (vidplug/physics/outliers.py); other noise leaves nothing to flag. Not inpainting
    reject_impulses: bool = True
    # the task's own options, typed per task (vidplug.physics.task_options_type): sr factor, inpaint ratio,
    # temporal k, deblur kernel_size, ...; unset options take the operator's defaults
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choices(self)
        if self.noise_sigma < 0:
            raise VidplugError(f"task.noise_sigma must be >= 0 (on the [-1, 1] scale), got {self.noise_sigma}")
        if not isinstance(self.options, dict):
            raise VidplugError(f"task.options must be a mapping of {self.name}'s options, got {self.options!r}")
        typed = from_dict(task_options_type(self.name), self.options, prefix="task.options.")
        self.options = {k: getattr(typed, k) for k in self.options}  # checked and converted, defaults left out
        self.noise_model  # noqa: B018 -- a bad task.noise fails here, before any model loads

    @property
    def noise_model(self) -> Noise:
        """The simulated measurement noise (seeded by ``seed``): ``noise`` if set, else Gaussian ``noise_sigma``."""
        return parse_noise(self.noise, default_sigma=self.noise_sigma, seed=self.seed)


@dataclass
class PriorConfig:
    name: str = "tiny"  # tiny | adm-imagenet256 | adm-ffhq256 | sd15 | sd-turbo | hub id | local directory | .pt file
    prompt: str = ""  # latent (Stable Diffusion) priors: text the UNet is conditioned on, embedded once per run
    guidance: float = 1.0  # latent priors: classifier-free guidance scale; 1 = off, > 1 doubles the UNet's cost
    border_pad: int = 0  # pixels of reflection around each frame inside the network call (0 = the network's own)

    def __post_init__(self) -> None:
        if self.border_pad < 0:
            raise VidplugError(f"prior.border_pad must be >= 0 pixels, got {self.border_pad}")


@dataclass
class ConsistencyConfig:
    config_prefix = "consistency"

    # The defaults are the full method. Data term = MSE on [0,1] frames (~1e-4 at convergence), so the terms are small:
    # pixel 0.05 measured on the bundled clip (benchmarks/RESULTS.md); semantic 0.05 is untuned (no CLIP weights here).
    semantic_weight: float = 0.05  # weight of the CLIP feature term between neighbouring frames; 0 = off, CLIP not loaded
    semantic_to_mean: bool = False  # also pull each frame's CLIP feature towards the chunk mean
    clip_model: str = "ViT-B-32"  # open_clip architecture
    clip_pretrained: str = "openai"  # open_clip weights tag or a local file path
    pixel_weight: float = 0.05  # weight of the occlusion-masked L1 flow-warping term between neighbours; 0 = off
    pixel_norm: Literal["l1", "l2"] = "l1"  # norm of the flow-warping residual
    # the pixel term inside the diffusion solve; false: the flow coupling acts in the least-squares start and the
    # measurement projection only (fusion_weight), and the solve fits the data alone (configs/priors/tiny.yaml: temporal)
    pixel_in_solve: bool = True
    # the pixel term's and the fusion's flow; auto: RAFT if its weights are present, else OpenCV DIS; farneback: OpenCV
    # Farneback (blur-robust). The warping-error metric uses this one too, except farneback (scored with auto's)
    flow_model: Literal["auto", "raft", "dis", "farneback"] = "auto"
    # DIS (flow_model dis, or auto without RAFT's weights) also at full resolution, each pixel keeping the flow that
    # warps better (vidplug/consistency/flow.py DISFlow): large motion in small frames (configs/priors/tiny.yaml:
    # temporal). The warping-error metric always runs DIS's medium preset
    dis_full_resolution: bool = False
    # sigma (pixels) of a Gaussian over DIS's flow fields (the method's flows; the metric's stay raw): patch-wise DIS
    # on blurred or noisy estimates is noisy from pixel to pixel, and the fusion copies that noise into the estimate.
    # 0 = off; no shipped setting uses it (sigma 3 won on bikes, lost held out: benchmarks/RESULTS.md, session 15)
    dis_smoothing: float = 0.0
    flow_refresh_every: int = 50  # re-estimate flow from the current restoration every N iterations; 0 = never
    anchor_weight: float = 1.0  # weight tying a chunk's overlap frames to the previous chunk's result
    # multi-frame fusion (vidplug/consistency/fusion.py): with the pixel term on, the least-squares start
    # (solver.init_refine_steps) and the measurement projection (solver.project_steps) also couple neighbouring frames
    # by flow warping, weight * |M (x_t - W x_{t+1})|^2 against the summed data term; 0 = off. 0.1 and 3 rounds (flows
    # re-estimated from the estimate before each) measured on the bikes clip (benchmarks/RESULTS.md).
    fusion_weight: float = 0.1
    fusion_rounds: int = 3
    # candidate fusion weights chosen per chunk without ground truth, for operators that observe a subset of pixels
    # (inpainting): about fusion_cv_holdout of the observed pixels is held out, shaped like the missing pixels
    # (vidplug.methods.classical.held_out_pixels), each candidate fuses the rest, and the one that predicts the
    # held-out pixels best is used for the start and the projection. Empty: fusion_weight.
    # (configs/priors/tiny.yaml: inpaint; the best fixed weight ranged from 0.03 to 0.1 over bikes' segments)
    fusion_weight_cv: list[float] = field(default_factory=list)
    fusion_cv_holdout: float = 0.1
    # the coupling's mask (pixel term, fusion, projection): the forward-backward check, and with motion_boundaries
    # Lai et al.'s motion-boundary test too (the warping-error metric always uses both). On flows estimated from
    # restorations the boundary test also fires on the flow's own noise, dropping pixels that would couple well.
    motion_boundaries: bool = True
    # both settings tried per chunk by the held-out pixels of fusion_weight_cv (with each of its weights), the best
    # pair used (inpainting: configs/priors/tiny.yaml). Empty: motion_boundaries
    motion_boundaries_cv: list[bool] = field(default_factory=list)
    # the fused start's first flows, estimated on: estimate (the least-squares estimate), observation (A_dagger(y): the
    # observed frames, bicubic for SR), or auto (fuse from both, keep the one more consistent under its own flows, no
    # ground truth; configs/priors/tiny.yaml: the temporal tasks)
    fusion_flows_from: Literal["estimate", "observation", "auto"] = "estimate"
    fusion_radius: int = 1  # couple frames up to this many apart too (2: better with accurate flow, worse with DIS on
    # fast motion: benchmarks/RESULTS.md)
    # the flow coupling (pixel term and fusion) only on chunk windows of at least this many frames: its flows are
    # measured on the estimate, which holds no motion when a short window leaves most of it unobserved (temporal k=7
    # on 4-5 frames: configs/priors/tiny.yaml)
    coupling_min_frames: int = 2
    # a pair of frames whose correspondences (forward-backward check, inside the frame) cover less than this fraction
    # of the frame is not coupled at all (pixel term, fusion): a scene cut, where the few pixels that pass the checks
    # match unrelated content (bikes, SR x4 over a cut: 28.82 -> 30.15 dB for the fused start; benchmarks/RESULTS.md)
    min_pair_coverage: float = 0.2

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.dis_smoothing >= 0:
            raise VidplugError(f"consistency.dis_smoothing must be >= 0 pixels (0 = off), got {self.dis_smoothing}")
        if not self.fusion_weight >= 0 or self.fusion_rounds < 1 or self.fusion_radius < 1:
            raise VidplugError(f"consistency.fusion_weight must be >= 0, fusion_rounds and fusion_radius >= 1, got "
                               f"{self.fusion_weight}, {self.fusion_rounds} and {self.fusion_radius}")
        if not all(isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in self.fusion_weight_cv):
            raise VidplugError(f"consistency.fusion_weight_cv must be a list of weights >= 0 (e.g. [0.01, 0.03, 0.1]), "
                               f"got {self.fusion_weight_cv}")
        if not all(isinstance(m, bool) for m in self.motion_boundaries_cv):
            raise VidplugError(f"consistency.motion_boundaries_cv must be a list of true / false (e.g. [true, false]), "
                               f"got {self.motion_boundaries_cv}")
        if not 0 < self.fusion_cv_holdout < 1:
            raise VidplugError(f"consistency.fusion_cv_holdout must be in (0, 1) (a fraction of the observed pixels), "
                               f"got {self.fusion_cv_holdout}")
        if not 0 <= self.min_pair_coverage < 1:
            raise VidplugError(f"consistency.min_pair_coverage must be in [0, 1) (a fraction of the frame; 0 couples "
                               f"every pair), got {self.min_pair_coverage}")
        if self.coupling_min_frames < 2:
            raise VidplugError(f"consistency.coupling_min_frames must be >= 2 (a pair of frames), got "
                               f"{self.coupling_min_frames}")

    def couples(self, window_len: int) -> bool:
        """Whether a chunk window of ``window_len`` frames gets the flow coupling (pixel term, fusion), weights
        aside."""
        return window_len >= self.coupling_min_frames

    def coupling_note(self, window_len: int) -> str | None:
        """For the report of a method that would couple the frames: why this window of two frames or more is not
        coupled, or None."""
        if window_len < 2 or self.couples(window_len):
            return None
        return (f"flow coupling off: a window of {window_len} frames is under consistency.coupling_min_frames="
                f"{self.coupling_min_frames}")


@dataclass
class ChunkConfig:
    config_prefix = "chunk"

    size: int = 0  # frames optimised jointly per chunk (overlap included); 0 = auto (what memory holds: <= 16 on CPU)
    overlap: int = 2  # frames shared with the previous chunk
    # anchor: overlap tied to the previous chunk's result (sequential) | blend: independent chunks whose overlaps are
    # cross-faded (any order: what multi-process runs use)
    seam: Literal["anchor", "blend"] = "anchor"
    # temporal tasks: hold the frames just outside a window at a least-squares estimate so that every window frame
    # keeps its data term (false: the first and last k // 2 frames of a window inside the video have none)
    exterior: bool = True

    def __post_init__(self) -> None:
        check_choices(self)
        if self.size < 0 or self.overlap < 0:
            raise VidplugError(f"chunk.size and chunk.overlap must be >= 0, got {self.size} and {self.overlap}")


@dataclass
class ReadConfig:
    """Frame selection and resizing applied when a video or frame folder is read (``vidplug.io.read_video``)."""

    config_prefix = "read"

    start: int = 0  # first source frame index
    end: int | None = None  # stop before this source frame index; None = the end of the video
    stride: int = 1  # take every N-th frame
    max_frames: int | None = None  # at most N frames; None = all selected frames
    # center-crop + resize to S x S (an int), [H, W] or "HxW"; None or "native" = the frames' own size
    size: int | list[int] | str | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or self.stride < 1:
            raise VidplugError(f"read.start must be >= 0 and read.stride >= 1 (take every N-th frame), got "
                               f"start={self.start}, stride={self.stride}")
        for key in ("end", "max_frames"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise VidplugError(f"read.{key} must be >= 1 or unset (null), got {value}")
        self.size = parse_size(self.size)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the frame readers (``start``, ``end``, ``stride``, ``max_frames``, ``size`` as S or
        (H, W)); entries at their defaults (the readers' own) are left out, so ``{"max_frames": 16}`` reads back
        as it was given (run settings compared on resume stay the same)."""
        out = {"start": self.start, "end": self.end, "stride": self.stride, "max_frames": self.max_frames,
               "size": tuple(self.size) if isinstance(self.size, list) else self.size}
        return {k: v for k, v in out.items() if v != getattr(ReadConfig, k)}


def parse_size(size: Any) -> int | list[int] | None:
    """``256`` / ``"256"`` -> 256; ``[240, 432]`` / ``(240, 432)`` / ``"240x432"`` -> [240, 432]; ``None`` /
    ``"native"`` -> None; anything else, or a non-positive side, is a one-line VidplugError."""
    bad = VidplugError(f"read.size must be S, [H, W] or HxW with positive sides (e.g. 256 or 240x432), or native; "
                       f"got {size!r}")
    if size is None or (isinstance(size, str) and size.strip().lower() == "native"):
        return None
    if isinstance(size, str):
        try:
            parts = [int(p) for p in size.lower().split("x")]
        except ValueError:
            raise bad from None
        size = parts[0] if len(parts) == 1 else parts
    if isinstance(size, list | tuple):
        size = list(size)
        if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
            raise bad
        return size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise bad
    return size


@dataclass
class RestoreConfig:
    # dmplug | bicubic (the operator's pseudo-inverse) | diffpir (deepinv, per frame) | least-squares |
    # flow-least-squares (multi-frame, the full method's start without the prior) | telea (OpenCV inpainting)
    method: Method = "dmplug"
    task: TaskConfig = field(default_factory=TaskConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    read: ReadConfig = field(default_factory=ReadConfig)  # frame selection of every video this run reads
    seed: int = 0  # seeds the initial diffusion seeds z (per absolute frame index)
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        check_choices(self)

    @staticmethod
    def rebase(old: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
        """A change of task starts from the new task's default options, not the old task's."""
        new_task = (change.get("task") or {}).get("name") if isinstance(change.get("task"), dict) else None
        old_task = old.get("task") or {}
        if new_task is not None and new_task != old_task.get("name", "sr4") and old_task.get("options"):
            old = {**old, "task": {**old_task, "options": {}}}
        return old

    def with_read(self, read: dict[str, Any] | None) -> RestoreConfig:
        """This config with its ``read`` section replaced by ``read`` (reader keyword arguments; unset keys take
        :class:`ReadConfig`'s defaults, as do None values), checked; unchanged when ``read`` is None."""
        if read is None:
            return self
        given = {k: list(v) if isinstance(v, tuple) else v for k, v in read.items() if v is not None}
        section = from_dict(ReadConfig, given, prefix="read.")
        return dataclasses.replace(self, read=section)
