"""RunConfig: the one input of a run — TOML round trip, overrides, validation."""

import pytest

from compactnn.config import RunConfig, TrainConfig, apply_overrides, parse_value


def _cfg():
    return RunConfig.from_dict({
        "name": "x", "seed": 3, "tags": {"family": "lowrank"},
        "model": {"name": "mlp", "layer": "lowrank", "depth": 2, "layer_kwargs": {"rank": 4},
                  "width": None},
        "data": {"name": "digits", "limit_train": 100},
        "task": {"teacher": "run:lenet", "temperature": 2.0},
        "train": {"epochs": 3, "schedule": "paper", "grad_clip": 1.0, "lr": 1 / 64}})


def test_toml_round_trip_is_exact():
    cfg = _cfg()
    assert RunConfig.from_toml(cfg.to_toml()) == cfg
    assert cfg.model.args == {"layer": "lowrank", "depth": 2, "layer_kwargs": {"rank": 4}}
    assert RunConfig.from_toml(RunConfig().to_toml()) == RunConfig()
    assert cfg.digest() == RunConfig.from_toml(cfg.to_toml()).digest() != RunConfig().digest()


def test_overrides_one_syntax_for_every_section():
    cfg = _cfg()
    new = cfg.with_overrides(["train.epochs=7", "model.layer_kwargs.rank=8",
                              "model.batchnorm=true", "data.name=fashion-mnist", "seed=4",
                              "tags.series=a"])
    assert new.train.epochs == 7 and new.model.args["layer_kwargs"]["rank"] == 8
    assert new.model.args["batchnorm"] is True and new.data.name == "fashion-mnist"
    assert new.seed == 4 and new.tags == {"family": "lowrank", "series": "a"}
    assert cfg.train.epochs == 3  # frozen: overrides make a new config
    for bad, msg in [("train.epoch=3", "unknown key 'epoch'"), ("optim.lr=3", "no section"),
                     ("oops", "key=value"), ("train..lr=1", "key=value"),
                     ("train.lr=-1", "lr must be"), ("model.depht=2", "does not take 'depht'"),
                     ("model.name=nope", "unknown model"), ("data.name=nope", "unknown dataset"),
                     ("task.name=nope", "unknown task"), ("train.schedule=step", "schedule"),
                     ("seed=-1", "seed"), ("model.in_features=3", "does not take")]:
        with pytest.raises(ValueError, match=msg):
            cfg.with_overrides([bad])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["oops"])


def test_model_keys_are_checked_against_the_model_signature():
    assert RunConfig.from_dict({"model": {"name": "lenet", "hidden": 64}}).model.args == {
        "hidden": 64}
    with pytest.raises(ValueError, match="'lenet' does not take 'depth'"):
        RunConfig.from_dict({"model": {"name": "lenet", "depth": 2}})


@pytest.mark.parametrize("kw", [dict(epochs=0), dict(batch_size=0), dict(lr=-1.0),
                                dict(lr=float("nan")), dict(optimizer="lbfgs"),
                                dict(schedule="step"), dict(weight_decay=-1.0),
                                dict(grad_clip=0.0), dict(lr_milestones=(0.5, 1.5),
                                                          lr_factors=(0.1, 0.01)),
                                dict(lr_milestones=(0.5,), lr_factors=(0.1, 0.2)),
                                dict(epochs=True), dict(steps_per_epoch=0)])
def test_invalid_train_config(kw):
    with pytest.raises(ValueError, match="train"):
        TrainConfig(**kw)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="invalid TOML"):
        RunConfig.from_toml("name = ")
    with pytest.raises(ValueError, match="unknown run-config keys"):
        RunConfig.from_dict({"name": "a", "modle": "dcnn"})
    with pytest.raises(ValueError, match="unknown train keys: epoch"):
        RunConfig.from_dict({"train": {"epoch": 1}})
    with pytest.raises(ValueError, match="model must be a table"):
        RunConfig.from_dict({"model": "dcnn"})
    (tmp_path / "config.toml").write_text("[train]\nepochs = 0\n")
    with pytest.raises(ValueError, match="config.toml: train: epochs"):
        RunConfig.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no run config"):
        RunConfig.load(tmp_path / "nope.toml")


def test_replace_merges_sections():
    cfg = _cfg().replace(seed=9, train={"epochs": 1}, model={"depth": 5})
    assert cfg.seed == 9 and cfg.train.epochs == 1 and cfg.train.schedule == "paper"
    assert cfg.model.args["depth"] == 5 and cfg.model.args["layer"] == "lowrank"


def test_parse_value():
    assert [parse_value(v) for v in ("3", "0.5", "true", "none", "[1, 2]", "relu")] == [
        3, 0.5, True, None, [1, 2], "relu"]


def test_set_values_are_read_as_their_field_type():
    cfg = RunConfig().with_overrides(["name=123", "data.standardize=none", "data.data_dir=123",
                                      "train.lr=1", "task.name=multilabel", "task.k=5"])
    assert cfg.name == "123" and cfg.data.standardize == "none" and cfg.data.data_dir == "123"
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.task.args == {"k": 5}
    assert RunConfig().with_overrides(["data.data_dir=none"]).data.data_dir is None
    # an int written for a float field is the same config (same digest)
    assert RunConfig().with_overrides(["train.lr=1"]).digest() == RunConfig().with_overrides(
        ["train.lr=1.0"]).digest()


@pytest.mark.parametrize("override, msg", [
    ("tags=5", "tags must be a table"), ("model.layer_kwargs=5", "layer_kwargs"),
    ("model.dropout=abc", "dropout must be a number"), ("model.batchnorm=abc", "true or false"),
    ("model.depth=2.5", "depth must be an integer"), ("seed=1.5", "seed must be an integer"),
    ("seed=99999999999999999999", "seed must be an integer"),
    ("train.grad_clip=true", "grad_clip must be a number"),
    ("train.lr_milestones=abc", "lr_milestones must be a list"),
    ("train.lr_milestones=5", "lr_milestones must be a list"),
    ("train.lr_factors=[-10, 0.1]", "lr_factors must be positive"),
    ("train.momentum=1.5", "momentum must be below 1"), ("train.epochs=abc", "integer"),
    ("task.name=multilabel", None), ("task.kk=3", "does not take 'kk'"),
    ("task.name=classification", None)])
def test_wrong_types_are_one_line_errors(override, msg):
    base = RunConfig().with_overrides(["task.name=multilabel"]) if "kk" in override else \
        RunConfig()
    if msg is None:
        base.with_overrides([override])
        return
    with pytest.raises(ValueError, match=msg):
        base.with_overrides([override])


def test_round_trip_of_awkward_values_and_immutability():
    cfg = RunConfig.from_dict({"tags": {"é": 1, "a b": "x\x7fy"},
                               "model": {"name": "lenet", "input_shape": (1, 8, 8)}})
    assert RunConfig.from_toml(cfg.to_toml()) == cfg
    assert cfg.model.args["input_shape"] == (1, 8, 8)
    with pytest.raises(TypeError):
        cfg.model.args["hidden"] = 3  # frozen all the way down: edits go through overrides
    with pytest.raises(TypeError):
        cfg.tags["x"] = 1
    assert len({cfg, RunConfig.from_toml(cfg.to_toml())}) == 1  # hashable, equal configs
    with pytest.raises(ValueError, match="teacher must be a string"):
        RunConfig.from_dict({"task": {"teacher": 5}})


def test_a_field_added_later_leaves_earlier_digests_unchanged():
    """Runs recorded before data.augment existed keep their digest (so finished runs are still
    reused); setting the new field changes it."""
    import hashlib
    import json

    from compactnn.config import LATER_FIELDS, RunConfig

    cfg = RunConfig.from_dict({"name": "x", "data": {"name": "digits"}})
    before = cfg.to_dict()
    for section, key in LATER_FIELDS:
        del before[section][key]
    old = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()
    assert cfg.digest() == old[:16]
    assert cfg.replace(data={"augment": "crop-flip"}).digest() != cfg.digest()
