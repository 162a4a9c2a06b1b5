"""The networks a restoration run needs, built once: the diffusion prior and the consistency models (CLIP, flow)
that the config turns on, with the stated fallbacks when their weights are missing."""

from __future__ import annotations

import logging

import torch

from vidplug.config import RestoreConfig
from vidplug.methods import get_method

log = logging.getLogger(__name__)


class Models:
    """Networks built once per run: the prior, and the consistency models the config turns on.

    A consistency model whose weights are missing offline is replaced by its stated fallback (flow: OpenCV DIS) or
    switched off (CLIP) with a warning recorded in ``notes``; the report shows what was used.
    """

    def __init__(self, cfg: RestoreConfig, device: torch.device):
        self.cfg, self.device, self.notes = cfg, device, []
        self.prior = self.clip = self.flow = None
        self._metrics_flow = None  # the warping error's own flow model, when the method's is not one it uses
        method = get_method(cfg.method)
        if method.needs_prior:
            from vidplug.prior import load_prior

            self.prior = load_prior(cfg.prior.name, device=device, prompt=cfg.prior.prompt,
                                    guidance=cfg.prior.guidance)
        cons = cfg.consistency
        if method.uses_consistency and cons.semantic_weight > 0:
            from vidplug.consistency.semantic import load_clip_encoder
            from vidplug.errors import MissingWeightsError

            try:
                self.clip = load_clip_encoder(cons.clip_model, cons.clip_pretrained, device=device)
            except MissingWeightsError as exc:
                msg = f"semantic consistency disabled: {exc}"
                log.warning(msg)
                self.notes.append(msg)
        if method.uses_consistency and cons.pixel_weight > 0:
            self.flow = self._load_flow(cons.flow_model)

    def run_prior(self, cfg: RestoreConfig):
        """The prior with ``cfg``'s settings of the network call (``prior.border_pad``): models may be shared between
        runs with different settings (ablations, the demo's rows), so each run and each chunk sets its own here."""
        self.prior.border_pad = cfg.prior.border_pad
        return self.prior

    def _load_flow(self, name: str):
        from vidplug.consistency.flow import load_flow_model

        return load_flow_model(name, device=self.device)

    def run_flow(self, cfg: RestoreConfig):
        """The method's flow model (None when not loaded) with ``cfg``'s settings of the flow call
        (``consistency.dis_full_resolution``, ``consistency.dis_smoothing``): as for :meth:`run_prior`, models may be
        shared between runs of different tasks (bench_quality), so each chunk sets its own here."""
        from vidplug.consistency.flow import DISFlow

        if isinstance(self.flow, DISFlow):
            self.flow.full_resolution = cfg.consistency.dis_full_resolution
            self.flow.smoothing = cfg.consistency.dis_smoothing
        return self.flow

    def method_flow(self, cfg: RestoreConfig | None = None):
        """The flow model the method's multi-frame stages use (``consistency.flow_model``), loaded when first asked
        for by a method without loss terms (flow-coupled least squares), with ``cfg``'s (default: the models')
        settings of the flow call."""
        self._loaded_flow()
        return self.run_flow(cfg or self.cfg)

    def _loaded_flow(self):
        """``consistency.flow_model``, loaded once."""
        if self.flow is None:
            self.flow = self._load_flow(self.cfg.consistency.flow_model)
        return self.flow

    def metrics_flow(self):
        """The flow model for the warping-error metric: the method's own RAFT when it uses one, OpenCV DIS's medium
        preset when it uses DIS (whatever ``consistency.dis_full_resolution`` says), else (Farneback) ``auto``'s, so
        that every method of a table is scored with the same flow."""
        from vidplug.consistency.flow import METRIC_FLOW_MODELS, DISFlow

        if self._metrics_flow is None:
            flow = self._loaded_flow() if self.cfg.consistency.flow_model in METRIC_FLOW_MODELS else None
            if flow is not None and not isinstance(flow, DISFlow):
                return flow  # RAFT: the same network
            self._metrics_flow = DISFlow() if flow is not None else self._load_flow("auto")
        return self._metrics_flow
