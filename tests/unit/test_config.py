from pathlib import Path

import pytest

from vidplug.config import RestoreConfig, apply_overrides, dump_yaml, load_config, load_yaml
from vidplug.errors import VidplugError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_dmplug_published_setting():
    cfg = RestoreConfig()
    assert cfg.task.noise_sigma == 0.01
    assert cfg.solver.lr in (None, 0.01) and cfg.solver.num_steps == 3 and cfg.solver.eta == 0.0


@pytest.mark.parametrize("path", sorted((CONFIGS / "tasks").glob("*.yaml")) + sorted((CONFIGS / "ablation").glob("*.yaml")))
def test_every_bundled_config_loads(path):
    cfg = load_config(path)
    assert cfg.task.name in {"sr4", "inpaint", "temporal", "temporal+deblur"}


def test_ablation_changes_one_weight():
    base = load_config(CONFIGS / "ablation" / "base.yaml")
    full = load_config(CONFIGS / "ablation" / "semantic+pixel.yaml")
    assert base.consistency.semantic_weight == 0 and base.consistency.pixel_weight == 0
    assert full.consistency.semantic_weight > 0 and full.consistency.pixel_weight > 0
    assert base.solver == full.solver and base.task == full.task


def test_dotted_overrides_are_typed():
    cfg = apply_overrides(RestoreConfig(), ["solver.iters=17", "consistency.pixel_weight=2", "task.options.k=5"])
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
