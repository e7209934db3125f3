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
