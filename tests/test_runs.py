"""A run end to end: RunConfig → data → model → fit → run folder; rerun from config.toml."""

import ast
import json
from pathlib import Path

import pytest
import torch

import compactnn
from compactnn.config import RunConfig
from compactnn.data import find_idx_dir, load_dataset
from compactnn.runs import load_run_model, resolve_config, run


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _cfg(**kw):
    return RunConfig.from_dict({"name": "t", "model": {"name": "dcnn", "depth": 1},
                                "data": {"name": "digits"}, "train": {"epochs": 2}, **kw})


def test_run_folder_records_the_resolved_config_and_reruns_identically(tmp_path):
    cfg = _cfg(data={"name": "auto", "limit_train": 300})
    a = run(cfg, run_dir=tmp_path / "a", progress=False, log=None)
    saved = RunConfig.load(tmp_path / "a" / "config.toml")
    assert saved.data.name in ("fashion-mnist", "digits") and saved.task.name == "classification"
    assert saved == a["config"] and saved.data == resolve_config(cfg).data  # "auto" made concrete
    # every model argument is recorded, defaults included: a later default change cannot
    # change a rerun
    assert saved.model.args["depth"] == 1 and saved.model.args["activation"] == "leaky_relu"
    assert saved.model.args["width"] == json.loads((tmp_path / "a" / "run.json").read_text())[
        "data"]["in_features"]
    rec = json.loads((tmp_path / "a" / "run.json").read_text())
    assert rec["num_params"] == a["num_params"] and rec["config_digest"] == saved.digest()
    assert rec["data"]["train"] == 300 and rec["data"]["in_features"] > 0
    b = run(saved, run_dir=tmp_path / "b", progress=False, log=None)
    strip = [{k: v for k, v in e.items() if k != "time_s"} for e in a["history"]["epochs"]]
    assert strip == [{k: v for k, v in e.items() if k != "time_s"}
                     for e in b["history"]["epochs"]]
    assert (tmp_path / "b" / "config.toml").read_text() == (
        tmp_path / "a" / "config.toml").read_text()


def test_short_training_on_real_data_is_well_above_chance(tmp_path):
    """Fashion-MNIST when installed (5,000 training images, 2 epochs), digits otherwise."""
    name = "fashion-mnist" if find_idx_dir("fashion-mnist") else "digits"
    cfg = RunConfig.from_dict({
        "model": {"name": "dcnn", "width": 1024, "depth": 2, "activation": "relu"},
        "data": {"name": name, "limit_train": 5000},
        "train": {"epochs": 2 if name == "fashion-mnist" else 8, "lr": 3e-3}})
    res = run(cfg, run_dir=tmp_path, progress=False, log=None)
    acc = res["history"]["final"]["test_acc"]
    assert acc > (0.75 if name == "fashion-mnist" else 0.85), acc
    assert {p.name for p in tmp_path.iterdir()} == {"config.toml", "run.json", "metrics.json",
                                                    "checkpoint.pt", "checkpoint.prev.pt"}


def test_distillation_from_a_teacher_run(tmp_path, digits):
    teacher_cfg = RunConfig.from_dict({"name": "teacher",
                                       "model": {"name": "dense-mlp", "width": 64},
                                       "data": {"name": "digits"},
                                       "train": {"epochs": 3, "lr": 3e-3}})
    t = run(teacher_cfg, run_dir=tmp_path / "teacher", data=digits, progress=False, log=None)
    teacher = load_run_model(tmp_path / "teacher")
    x = digits.x_test[:8]
    torch.testing.assert_close(teacher.eval()(x), t["model"].eval()(x))
    student = run(_cfg(model={"name": "dcnn", "depth": 1, "width": 256},
                       task={"teacher": str(tmp_path / "teacher"), "temperature": 3.0,
                             "alpha": 0.7},
                       train={"epochs": 8, "batch_size": 32, "lr": 3e-3}),
                  data=digits, progress=False, log=None)
    assert student["config"].task.temperature == 3.0
    assert student["history"]["final"]["test_acc"] > 0.5
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_run_model(tmp_path)
    with pytest.raises(ValueError, match="names a run of an experiment"):
        run(_cfg(task={"teacher": "run:lenet"}), data=digits, progress=False, log=None)


def test_task_must_fit_the_data(digits):
    with pytest.raises(ValueError, match="does not fit data set"):
        run(_cfg(task={"name": "regression"}), data=digits, progress=False, log=None)


def test_distillation_loss_limits():
    from compactnn.train import distillation_loss

    logits = torch.randn(8, 10)
    y = logits.argmax(1)
    torch.testing.assert_close(distillation_loss(logits, logits, y, 2.0, 0.0),
                               torch.nn.functional.cross_entropy(logits, y))
    torch.testing.assert_close(distillation_loss(logits, logits, y, 2.0, 1.0),
                               torch.tensor(0.0), atol=1e-6, rtol=0)


def test_init_does_not_import_the_layers():
    """The init ↔ layers import cycle is gone: init.py holds schemes only."""
    src = Path(compactnn.init.__file__).read_text()
    imported = {n.module for n in ast.walk(ast.parse(src))
                if isinstance(n, ast.ImportFrom) and n.module}
    assert not any("layers" in m or "experiments" in m for m in imported), imported


@pytest.mark.parametrize("change, msg", [
    ({"train": {"device": "foo"}}, "train.device"),
    ({"train": {"device": "cuda:7"}}, "CUDA device"),
    ({"tags": {"x": [1, None]}}, "cannot write"),
    ({"model": {"name": "dcnn", "depth": 1, "layer_kwargs": {"rank": 4}}},
     "layer 'dc' does not take 'rank'")])
def test_a_refused_run_leaves_nothing_behind(tmp_path, digits, change, msg):
    with pytest.raises(ValueError, match=msg):
        run(_cfg().replace(**change), run_dir=tmp_path / "r", data=digits, progress=False,
            log=None)
    assert not (tmp_path / "r").exists()


def test_teacher_must_have_seen_the_same_inputs(tmp_path, digits):
    teacher = _cfg(train={"epochs": 1})
    run(teacher, run_dir=tmp_path / "t", data=digits, progress=False, log=None)
    student = _cfg(task={"teacher": str(tmp_path / "t")}, data={"name": "digits",
                                                                "standardize": "none"})
    with pytest.raises(ValueError, match="standardize 'global' vs 'none'"):
        run(student, run_dir=tmp_path / "s", progress=False, log=None)
    assert not (tmp_path / "s").exists()


def test_model_input_shape_can_be_set_in_the_config(digits):
    cfg = RunConfig.from_dict({"model": {"name": "lenet", "hidden": 16,
                                         "input_shape": [1, 8, 8]},
                               "data": {"name": "digits", "limit_train": 100},
                               "train": {"epochs": 1}})
    res = run(cfg, data=digits, progress=False, log=None)
    assert res["config"].model.args["input_shape"] == (1, 8, 8)


def test_check_writable_leaves_no_trace_and_names_the_option(tmp_path):
    from compactnn.runs import check_writable

    assert check_writable(tmp_path / "a" / "b", "--runs-dir") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []  # what the check created is gone again
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"^--out-dir .*file/sub: cannot write there"):
        check_writable(tmp_path / "file" / "sub", "--out-dir")
