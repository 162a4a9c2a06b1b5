import dataclasses
from pathlib import Path

import pytest
import torch

from tests.conftest import make_translating_video
from vidplug.config import RestoreConfig, apply_overrides, dump_yaml, load_config, load_yaml
from vidplug.errors import VidplugError
from vidplug.io import write_video
from vidplug.pipeline import restore_video

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_dmplug_published_setting():
    cfg = RestoreConfig()
    assert cfg.task.noise_sigma == 0.01
    assert cfg.solver.lr in (None, 0.01) and cfg.solver.num_steps == 3 and cfg.solver.eta == 0.0


TABLES = {"ablation/table.yaml", "demo/methods.yaml"}  # lists of runs, not run configs
RUN_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml")
                     if str(p.relative_to(CONFIGS)) not in TABLES and p.parent.name not in ("priors", "train"))


def test_the_bundled_configs_are_all_listed():
    assert {str(p.relative_to(CONFIGS)) for p in RUN_CONFIGS} >= {"base.yaml", "tasks/sr4.yaml", "demo/run.yaml",
                                                                  "ablation/base.yaml", "ablation/diffpir.yaml"}


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=[str(p.relative_to(CONFIGS)) for p in RUN_CONFIGS])
def test_every_bundled_config_loads_and_runs(path, tmp_path):
    cfg = load_config(path)
    assert cfg.task.name in {"sr4", "inpaint", "temporal", "temporal+deblur"}
    clip = tmp_path / "clip"
    write_video(make_translating_video(2, 32, 32), clip, fps=10)  # 32: divisible by 4, > half a 61x61 blur kernel
    run = load_config(path, ["method=bicubic", "device=cpu"])
    res = restore_video(clip, tmp_path / "out", run, simulate=True, progress=False, keep_frames=True)
    assert res.frames.shape == (2, 3, 32, 32) and res.report["task"] == cfg.task.name
    assert res.report["metrics"]["psnr"] > 10


@pytest.mark.parametrize("prior", ["tiny", "adm-imagenet256"])
def test_prior_files_set_defaults_under_the_user_settings(prior, tmp_path):
    recommended = load_yaml(CONFIGS / "priors" / f"{prior}.yaml")
    assert set(recommended) <= {"solver", "prior", "consistency", "tasks"}
    assert "name" not in recommended.get("prior", {})
    cfg = load_config(None, ["task.name=deblur"], flags={"prior.name": prior})
    assert "deblur" not in recommended.get("tasks", {})  # so the file's general settings are what deblur gets
    assert {k: getattr(cfg.solver, k) for k in recommended["solver"]} == recommended["solver"]
    assert {k: getattr(cfg.prior, k) for k in recommended.get("prior", {})} == recommended.get("prior", {})
    general = recommended.get("consistency", {})
    assert {k: getattr(cfg.consistency, k) for k in general} == general
    user = tmp_path / "user.yaml"
    user.write_text("solver: {iters: 7}\n")
    assert load_config(user, ["solver.es_window=3"], flags={"prior.name": prior}).solver.iters == 7
    assert load_config(user, ["solver.es_window=3"], flags={"prior.name": prior}).solver.es_window == 3
    assert load_config(None, ["prior.name=/some/dir"]).solver == RestoreConfig().solver  # no file: no defaults


def test_a_prior_files_task_section_applies_to_that_task_only():
    tiny = {t: load_config(None, [f"task.name={t}"], flags={"prior.name": "tiny"}).consistency
            for t in ("temporal", "temporal+deblur", "sr4")}
    assert tiny["temporal"].coupling_min_frames == 6 and tiny["temporal"].pixel_weight == 0.05
    assert tiny["temporal+deblur"].coupling_min_frames == 2 and tiny["temporal+deblur"].pixel_weight == 0.2
    assert not tiny["temporal"].pixel_in_solve  # temporal: the flows couple the start and the projection only
    assert tiny["temporal+deblur"].pixel_in_solve and tiny["sr4"].pixel_in_solve
    # the temporal tasks' fused start picks its first flows (the observed frames are at full resolution there)
    assert [tiny[t].fusion_flows_from for t in ("temporal", "temporal+deblur", "sr4")] == ["auto", "auto", "estimate"]
    inpaint = load_config(None, ["task.name=inpaint"], flags={"prior.name": "tiny"})
    # inpainting chooses its fusion weight and coupling mask per chunk from held-out observed pixels; otherwise SR's
    assert inpaint.consistency.fusion_weight_cv == [0.01, 0.03, 0.1] and tiny["sr4"].fusion_weight_cv == []
    assert inpaint.consistency.motion_boundaries_cv == [True, False] and tiny["sr4"].motion_boundaries_cv == []
    assert tiny["sr4"] == dataclasses.replace(inpaint.consistency, fusion_weight_cv=[], motion_boundaries_cv=[])
    assert (inpaint.solver.iters, inpaint.solver.early_stop) == (1, False)  # the fused start, returned as it is
    # SR (any factor) and the temporal tasks project with less damping than the rest
    damping = {t: load_config(None, [f"task.name={t}"], flags={"prior.name": "tiny"}).solver.project_damping
               for t in ("sr4", "sr", "temporal+deblur", "temporal", "deblur")}
    assert damping["sr4"] == damping["sr"] < damping["temporal+deblur"] == damping["temporal"] < damping["deblur"]
    iters = {t: load_config(None, [f"task.name={t}"], flags={"prior.name": "tiny"}).solver.iters
             for t in ("sr4", "temporal", "temporal+deblur")}
    assert iters == {"sr4": 12, "temporal": 13, "temporal+deblur": 12}  # each for the speed goal
    # the user's setting still wins over the prior's task section
    assert load_config(None, ["task.name=temporal", "consistency.coupling_min_frames=3"],
                       flags={"prior.name": "tiny"}).consistency.coupling_min_frames == 3


def test_task_options_are_typed_when_loaded(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: {name: sr4, options: {factor: 2}}\n")
    with pytest.raises(VidplugError, match="unknown task.options.factor 2; use one of: 4"):
        load_config(bad)
    bad.write_text("task: {name: temporal, options: {factor: 2}}\n")
    with pytest.raises(VidplugError, match="unknown config key 'task.options.factor'; known keys here: dagger_steps, k"):
        load_config(bad)
    with pytest.raises(VidplugError, match="'task.options.ratio' must be a number"):
        apply_overrides(RestoreConfig(), ["task.name=inpaint", "task.options.ratio=half"])
    # YAML 1.1 reads 1e-6 (no dot) as a string; a float key still takes it
    assert apply_overrides(RestoreConfig(), ["consistency.pixel_weight=1e-6"]).consistency.pixel_weight == 1e-6
    with pytest.raises(VidplugError, match="unknown task.options.padding 'wrap'; use one of: reflect, replicate"):
        apply_overrides(RestoreConfig(), ["task.name=deblur", "task.options.padding=wrap"])
    # a new task starts from its own default options, not the previous task's
    cfg = apply_overrides(RestoreConfig(), ["task.options.factor=4", "task.name=temporal"])
    assert cfg.task.options == {}


@pytest.mark.parametrize(("override", "message"), [
    ("method=magic", "unknown method 'magic'; use one of: dmplug, bicubic, diffpir, least-squares, flow-least-squares, telea"),
    ("task.name=colourise", "unknown task 'colourise'; known tasks: sr4, sr, inpaint"),
    ("chunk.seam=zip", "unknown chunk.seam 'zip'; use one of: anchor, blend"),
    ("solver.optimizer=sgd", "unknown solver.optimizer 'sgd'; use one of: adam, lbfgs"),
    ("consistency.flow_model=pwc", "unknown consistency.flow_model 'pwc'; use one of: auto, raft, dis"),
])
def test_choice_fields_are_checked_when_loaded(override, message):
    with pytest.raises(VidplugError, match=message):
        apply_overrides(RestoreConfig(), [override])


def test_ablation_changes_one_weight():
    base = load_config(CONFIGS / "ablation" / "base.yaml")
    full = load_config(CONFIGS / "ablation" / "semantic+pixel.yaml")
    assert base.consistency.semantic_weight == 0 and base.consistency.pixel_weight == 0
    assert full.consistency.semantic_weight > 0 and full.consistency.pixel_weight > 0
    assert base.solver == full.solver and base.task == full.task


def test_dotted_overrides_are_typed():
    cfg = apply_overrides(RestoreConfig(), ["solver.iters=17", "consistency.pixel_weight=2", "task.name=temporal",
                                           "task.options.k=5"])
    assert cfg.solver.iters == 17 and cfg.consistency.pixel_weight == 2.0 and cfg.task.options["k"] == 5
    assert isinstance(cfg.consistency.pixel_weight, float)


@pytest.mark.parametrize("bad", ["solver.iters=many", "solver.nope=1", "nosuch=1", "consistency.semantic_to_mean=3",
                                 "noequals"])
def test_bad_overrides_are_one_line_errors(bad):
    with pytest.raises(VidplugError) as exc:
        apply_overrides(RestoreConfig(), [bad])
    assert "\n" not in str(exc.value)


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver: {iters: [1, 2\n")
    with pytest.raises(VidplugError, match="malformed YAML"):
        load_yaml(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("solver:\n  itres: 3\n")
    with pytest.raises(VidplugError, match="unknown config key 'solver.itres'"):
        load_config(unknown)
    with pytest.raises(VidplugError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_resolved_config_round_trips(tmp_path):
    cfg = apply_overrides(RestoreConfig(), ["solver.iters=5", "task.name=inpaint"])
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_config(path) == cfg


def test_read_section_selects_the_frames_and_is_saved(tmp_path):
    from vidplug.io import read_video
    from vidplug.pipeline.outputs import config_path_for

    clip = tmp_path / "clip"
    write_video(make_translating_video(6, 32, 32), clip, fps=10)
    path = tmp_path / "run.yaml"
    path.write_text("task: {name: sr, options: {factor: 2}}\nmethod: bicubic\ndevice: cpu\n"
                    "read: {start: 1, stride: 2, max_frames: 2, size: 16x16}\n")
    cfg = load_config(path)
    assert cfg.read.kwargs() == {"start": 1, "stride": 2, "max_frames": 2, "size": (16, 16)}
    res = restore_video(clip, tmp_path / "out", cfg, simulate=True, progress=False, keep_frames=True)
    expected = read_video(clip, start=1, stride=2, max_frames=2, size=(16, 16)).frames  # source frames 1 and 3
    assert res.frames.shape == (2, 3, 16, 16) and torch.equal(res.reference, expected)
    assert load_config(config_path_for(tmp_path / "out")).read == cfg.read  # the resolved config keeps it


def test_explicit_read_replaces_the_config_section_and_is_saved(tmp_path):
    from vidplug.pipeline.outputs import config_path_for

    clip = tmp_path / "clip"
    write_video(make_translating_video(4, 32, 32), clip, fps=10)
    cfg = load_config(None, ["method=bicubic", "device=cpu", "task.name=sr", "task.options.factor=2",
                             "read.max_frames=1"])
    res = restore_video(clip, tmp_path / "out", cfg, simulate=True, progress=False, keep_frames=True,
                        read={"max_frames": 3})
    assert res.frames.shape[0] == 3
    assert load_config(config_path_for(tmp_path / "out")).read.max_frames == 3


@pytest.mark.parametrize("override, message", [
    ("read.stride=-2", r"read\.start must be >= 0 and read\.stride >= 1 .*stride=-2"),
    ("read.start=-1", r"read\.start must be >= 0"),
    ("read.max_frames=0", r"read\.max_frames must be >= 1 or unset"),
    ("read.size=0", r"read\.size must be S, \[H, W\] or HxW"),
    ("read.size=[16, 16, 3]", r"read\.size must be S, \[H, W\] or HxW"),
    ("read.size=big", r"read\.size must be S, \[H, W\] or HxW"),
    ("read.stride=two", r"config key 'read\.stride' must be an integer"),
])
def test_bad_read_values_are_refused_at_load(override, message):
    with pytest.raises(VidplugError, match=message) as exc:
        load_config(None, [override])
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("size, expected", [("native", None), ("256", 256), ("240x432", [240, 432]),
                                            ([24, 32], [24, 32])])
def test_read_size_forms(size, expected):
    cfg = RestoreConfig().with_read({"size": size})
    assert cfg.read.size == expected
