"""Data-parallel building blocks; one real 2-process torchrun run (gloo, CPU) against a single
process with the same global batch."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from compactnn.data.loaders import EpochBatches, in_memory_loaders
from compactnn.models import DCNN
from compactnn.train import Classification
from compactnn.train.distributed import (
    DistInfo,
    DistributedTask,
    ShardedEpochBatches,
    init_distributed,
    rank_loss_scale,
    reduce_meter,
    shard_bounds,
    sharded_loaders,
    unwrap_model,
    wrap_model,
)


# --- sharding -----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 5, 17])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shard_bounds_tile_the_range_in_rank_order(n, world):
    bounds = [shard_bounds(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("n,batch,world", [(991, 99, 2), (10, 3, 3), (23, 4, 4), (7, 7, 2),
                                           (12, 4, 4), (50, 8, 1)])
def test_sharded_batches_are_the_single_process_batches_split(n, batch, world):
    ref = EpochBatches(n, batch, torch.Generator().manual_seed(3))
    shards = [ShardedEpochBatches(n, batch, torch.Generator().manual_seed(3), rank=r,
                                  world_size=world) for r in range(world)]
    assert all(len(s) == len(ref) for s in shards)
    for _epoch in range(2):  # a fresh permutation per epoch, the same on every rank
        per_rank = [list(s) for s in shards]
        expected = list(ref)
        assert all(len(p) == len(expected) for p in per_rank)  # the same number of steps
        for k, global_batch in enumerate(expected):
            assert torch.equal(torch.cat([p[k] for p in per_rank]), global_batch)


def test_a_last_batch_smaller_than_the_world_leaves_some_shares_empty():
    shards = [list(ShardedEpochBatches(9, 4, torch.Generator().manual_seed(0), rank=r,
                                       world_size=4)) for r in range(4)]
    assert [len(s[-1]) for s in shards] == [1, 0, 0, 0]
    assert [len(s[0]) for s in shards] == [1, 1, 1, 1]
    sampler = ShardedEpochBatches(9, 4, torch.Generator(), rank=3, world_size=4)
    assert [(len(b), sampler.global_size) for b in sampler] == [(1, 4), (1, 4), (0, 1)]


def test_sharded_batches_refuse_a_batch_smaller_than_the_world_and_bad_ranks():
    gen = torch.Generator()
    with pytest.raises(ValueError, match="at least the number of processes"):
        ShardedEpochBatches(10, 1, gen, rank=0, world_size=2)
    with pytest.raises(ValueError, match="rank 2 of world size 2"):
        ShardedEpochBatches(10, 4, gen, rank=2, world_size=2)


def test_sharded_loaders_in_one_process_are_in_memory_loaders():
    from types import SimpleNamespace

    data = SimpleNamespace(x_train=torch.randn(11, 3), y_train=torch.arange(11),
                           x_val=None, y_val=None, x_test=torch.randn(5, 3), y_test=torch.arange(5))
    a, b = sharded_loaders(data, 4, 2, 7, DistInfo()), in_memory_loaders(data, 4, 2, 7)
    assert a.keys() == b.keys()
    for split in a:
        for (xa, ya), (xb, yb) in zip(a[split], b[split], strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


# --- the loss scale -------------------------------------------------------------------------
def test_scaled_share_gradients_average_to_the_global_batch_gradient():
    """What DDP computes — the mean over ranks of each share's scaled mean-loss gradient,
    an empty share included — is the gradient of the global batch's mean loss."""
    torch.manual_seed(0)
    model = DCNN(16, 5, depth=1).double()
    x, y = torch.randn(7, 16, dtype=torch.float64), torch.randint(0, 5, (7,))
    task = Classification()

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    ref = grads(task.loss(model(x), y))
    world = 3
    for idx in (torch.arange(7), torch.tensor([0, 1, 2, 3, 4, 5, 6])[torch.randperm(7)]):
        shares = [idx[:5], idx[5:7], idx[7:]]  # 5, 2 and 0 examples
        total = [torch.zeros_like(g) for g in ref]
        for share in shares:
            out = model(x[share])
            local = task.loss(out, y[share]) if len(share) else out.sum() * 0.0
            scaled = local * rank_loss_scale(len(share), 7, world)
            for t, g in zip(total, grads(scaled), strict=True):
                t += g / world
        for t, g in zip(total, ref, strict=True):
            torch.testing.assert_close(t, g, rtol=1e-12, atol=1e-14)


def test_rank_loss_scale():
    assert rank_loss_scale(50, 100, 2) == 1.0
    assert rank_loss_scale(0, 1, 2) == 0.0
    assert rank_loss_scale(3, 4, 2) == 1.5


def test_in_one_process_the_wrappers_change_nothing():
    task = DistributedTask(Classification())
    out, y = torch.randn(6, 4, requires_grad=True), torch.randint(0, 4, (6,))
    assert torch.equal(task.training_loss(out, y, None), Classification().loss(out, y))
    meter = task.meter()
    meter.update(out, y, task.training_loss(out, y, None))
    assert meter.n == 6 and reduce_meter(meter) is meter
    assert task.primary == "acc" and task.higher_is_better
    model = torch.nn.Linear(2, 2)
    assert wrap_model(model, DistInfo()) is model and unwrap_model(model) is model


# --- the environment ----------------------------------------------------------------------
_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def env(monkeypatch):
    for k in _TORCHRUN_ENV:
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_without_torchrun_it_is_one_process(env):
    assert init_distributed("cpu") == DistInfo(0, 1, 0, None, "cpu")
    env.setenv("WORLD_SIZE", "1")
    info = init_distributed("cuda")
    assert info.is_main and not info.distributed and info.device == "cuda"


@pytest.mark.parametrize("setting,message", [
    ({"WORLD_SIZE": "2"}, "RANK is not"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE must be an integer"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE must be >= 1"),
    ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, r"RANK=2 is outside \[0, WORLD_SIZE=2\)"),
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "1"}, "LOCAL_RANK=1 must be in"),
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "0"}, "MASTER_ADDR and MASTER_PORT not set"),
])
def test_an_inconsistent_environment_is_a_value_error(env, setting, message):
    for k, v in setting.items():
        env.setenv(k, v)
    with pytest.raises(ValueError, match=message):
        init_distributed("cpu")


@pytest.mark.parametrize("device,message", [("cuda:1", "give 'cuda'"), ("meta", "not 'meta'")])
def test_devices_under_torchrun(env, device, message):
    for k, v in dict(WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                     MASTER_PORT="1").items():
        env.setenv(k, v)
    with pytest.raises(ValueError, match=message):
        init_distributed(device)


# --- a real 2-process run -------------------------------------------------------------------
WORKER = textwrap.dedent('''
    """Train a DCNN on digits with the global batch 99 over 991 examples (the last batch has
    one example: rank 1's share is empty), 2 epochs, SGD and Adam; in one process when not
    launched by torchrun. Also reduce hand-made meters of every task over the ranks."""
    import json, sys
    from types import SimpleNamespace

    import torch

    from compactnn.config import TrainConfig
    from compactnn.data import load_dataset
    from compactnn.models import DCNN
    from compactnn.train import Classification, MultiLabel, Regression, fit
    from compactnn.train.tasks import Meter
    from compactnn.train.distributed import (
        DistributedTask, destroy_distributed, init_distributed, reduce_meter, shard_bounds,
        sharded_loaders, unwrap_model, wrap_model)

    torch.set_num_threads(1)
    out = sys.argv[1]
    info = init_distributed("cpu", timeout_s=60)
    try:
        d = load_dataset("digits")
        data = SimpleNamespace(x_train=d.x_train[:991], y_train=d.y_train[:991], x_val=None,
                               y_val=None, x_test=d.x_test, y_test=d.y_test)
        result = {"world": info.world_size, "rank": info.rank}
        states = {}
        for opt, lr in (("sgd", 0.05), ("adam", 1e-3)):
            torch.manual_seed(0)
            model = DCNN(64, 10, depth=1)
            cfg = TrainConfig(epochs=2, batch_size=99, optimizer=opt, lr=lr, device=info.device,
                              schedule="cosine")
            loaders = sharded_loaders(data, cfg.batch_size, 128, seed=1, info=info)
            # SGD: global sizes from the sampler; Adam: all-reduced every step
            task = DistributedTask(Classification(),
                                   loaders["train"].sampler if opt == "sgd" else None)
            hist = fit(wrap_model(model, info), loaders, task, cfg, progress=False)
            result[opt] = hist["epochs"]
            states[opt] = unwrap_model(model).state_dict()

        # meters of every task, each rank updating with its contiguous block of fixed data
        g = torch.Generator().manual_seed(5)
        n, c = 37, 6
        outs = torch.randn(n, c, generator=g)
        labels = torch.randint(0, c, (n,), generator=g)
        multi = (torch.rand(n, c, generator=g) < 0.3).long()
        reg = torch.randn(n, c, generator=g)
        cases = {"classification": (Classification(), labels, n),
                 "multilabel": (MultiLabel(k=4), multi, n),
                 "regression": (Regression(), reg, n),
                 "classification_one_rank_empty": (Classification(), labels, 1)}
        for name, (task, target, m) in cases.items():
            ref, mine = task.meter(), task.meter()
            for i in range(0, m, 5):
                o, t = outs[i:min(i + 5, m)], target[i:min(i + 5, m)]
                ref.update(o, t, task.loss(o, t))
            lo, hi = shard_bounds(m, info.rank, info.world_size)
            for i in range(lo, hi, 5):
                j = min(i + 5, hi)
                mine.update(outs[i:j], target[i:j], task.loss(outs[i:j], target[i:j]))
            reduce_meter(mine)
            result[name] = {"reduced": mine.compute(), "single": ref.compute(), "n": mine.n}
        class Custom(Meter):
            def update(self, output, target, loss):
                pass

        try:
            reduce_meter(Custom())
            result["custom"] = "no error"
        except TypeError as e:
            result["custom"] = str(e)
        with open(f"{out}.rank{info.rank}.json", "w") as f:
            json.dump(result, f)
        if info.is_main:
            torch.save(states, f"{out}.pt")
        destroy_distributed(wait=True)  # as the CLI does: no rank leaves while one still talks
    finally:
        destroy_distributed()
''')


def _launch(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for k in _TORCHRUN_ENV:
        env.pop(k, None)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    _launch([sys.executable, str(script), str(tmp_path / "single")], tmp_path)
    _launch([sys.executable, "-m", "torch.distributed.run", "--standalone",
             "--nproc_per_node", "2", str(script), str(tmp_path / "ddp")], tmp_path)
    single = json.loads((tmp_path / "single.rank0.json").read_text())
    ranks = [json.loads((tmp_path / f"ddp.rank{r}.json").read_text()) for r in (0, 1)]
    assert single["world"] == 1 and [r["world"] for r in ranks] == [2, 2]
    assert not Path(f"{tmp_path}/ddp.rank1.pt").exists()

    # weights: float32, 20 steps (2 epochs of 10 global batches, the last of 1 example);
    # measured on this machine: max |Δ| = 3.0e-7 (SGD, lr 0.05), 1.5e-8 (Adam)
    ref, ddp = torch.load(tmp_path / "single.pt"), torch.load(tmp_path / "ddp.pt")
    for opt in ("sgd", "adam"):
        assert ref[opt].keys() == ddp[opt].keys()  # no "module." prefix
        for k in ref[opt]:
            torch.testing.assert_close(ddp[opt][k], ref[opt][k], rtol=1e-5, atol=1e-6)

    # metrics: reduced over ranks (the test split sharded 225/225), the same on both ranks
    for opt in ("sgd", "adam"):
        for rank in ranks:
            for mine, theirs in zip(rank[opt], single[opt], strict=True):
                for key in theirs:
                    if key.startswith(("train_", "test_")):
                        assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), key

    assert ranks[0]["sgd"][-1]["test_acc"] > 0.5  # it learned (20 steps)

    for rank in ranks:
        for name in ("classification", "multilabel", "regression",
                     "classification_one_rank_empty"):
            case = rank[name]
            assert case["n"] == single[name]["n"]  # the losses: float32 means of other batches
            for key, value in case["single"].items():
                assert case["reduced"][key] == pytest.approx(value, rel=1e-6, abs=1e-7), (
                    name, key)
        assert "cannot reduce a Custom across processes" in rank["custom"]
    assert single["custom"] == "no error"


# --- checkpoints, resume and agreed stops under a real 2-process run -------------------------
RESUME_WORKER = textwrap.dedent('''
    """Under torchrun (2 processes): an MLP with dropout on shares of unequal size (global batch
    51: 26 + 25 examples), so the ranks' RNG streams differ. (1) uninterrupted, 2 epochs;
    (2) the checkpoint taken mid-epoch 2 resumed in fresh objects; (3) a stop asked on rank 1
    only, and (4) a non-finite loss on rank 0 only, each end training on both ranks at the
    same step."""
    import copy, json, sys
    from types import SimpleNamespace

    import torch

    from compactnn.config import TrainConfig
    from compactnn.data import load_dataset
    from compactnn.models import make_model
    from compactnn.train import Callback, Classification, NonFiniteLossError, fit
    from compactnn.train.distributed import (
        DistributedTask, destroy_distributed, init_distributed, sharded_loaders, unwrap_model,
        wrap_model)

    torch.set_num_threads(1)
    out = sys.argv[1]
    info = init_distributed("cpu", timeout_s=60)
    d = load_dataset("digits")
    data = SimpleNamespace(x_train=d.x_train[:510], y_train=d.y_train[:510], x_val=None,
                           y_val=None, x_test=d.x_test, y_test=d.y_test)
    cfg = TrainConfig(epochs=2, batch_size=51, lr=1e-3, device="cpu", schedule="cosine")

    def setup(task=Classification()):
        torch.manual_seed(0)
        model = make_model("dense-mlp", 64, 10, width=48, depth=2, dropout=0.3)
        loaders = sharded_loaders(data, cfg.batch_size, 128, seed=1, info=info)
        return (wrap_model(model, info), loaders,
                DistributedTask(task, loaders["train"].sampler))

    class Keep(Callback):
        def __init__(self, at):
            self.at, self.saved = at, None
        def on_step_end(self, state):
            if state.step == self.at:
                self.saved = copy.deepcopy(state.checkpoint())  # a collective: every rank

    class StopOn(Callback):
        def __init__(self, rank, step):
            self.rank, self.step, self.now = rank, step, 0
        def wants_stop(self):
            return info.rank == self.rank and self.now >= self.step
        def on_step_end(self, state):
            self.now = state.step

    class NanOn(Classification):
        def training_loss(self, output, target, inputs):
            loss = super().training_loss(output, target, inputs)
            self.calls = getattr(self, "calls", 0) + 1
            return loss * float("nan") if info.rank == 0 and self.calls == 4 else loss

    result = {}
    try:
        model, loaders, task = setup()
        keep = Keep(13)  # epoch 2, batch 3 of 10
        result["full"] = fit(model, loaders, task, cfg, [keep], progress=False)
        full = {k: v.clone() for k, v in unwrap_model(model).state_dict().items()}
        ckpt = keep.saved
        ckpt = [ckpt] if info.is_main else [None]
        torch.distributed.broadcast_object_list(ckpt, src=0)  # as if every rank read the file
        ckpt = ckpt[0]
        result["saved"] = {"world_size": ckpt["world_size"], "batch": ckpt["batch"],
                           "meters_differ": ckpt["ranks"][0]["meter"] != ckpt["ranks"][1]["meter"],
                           "rngs_differ": not torch.equal(ckpt["ranks"][0]["rng"]["torch"],
                                                          ckpt["ranks"][1]["rng"]["torch"])}
        torch.manual_seed(123)  # resume must restore every RNG itself
        model, loaders, task = setup()
        result["resumed"] = fit(model, loaders, task, cfg, progress=False, resume=ckpt)
        result["same_weights"] = all(torch.equal(full[k], v)
                                     for k, v in unwrap_model(model).state_dict().items())

        model, loaders, task = setup()
        stop = StopOn(rank=1, step=5)
        try:
            fit(model, loaders, task, cfg, [stop], progress=False)
            result["stop"] = "no stop"
        except KeyboardInterrupt:
            result["stop"] = stop.now
        model, loaders, task = setup(NanOn())
        try:
            fit(model, loaders, task, cfg, progress=False)
            result["nan"] = "no error"
        except NonFiniteLossError as e:
            result["nan"] = str(e)
        with open(f"{out}.rank{info.rank}.json", "w") as f:
            json.dump(result, f)
        del model, loaders, task
        destroy_distributed(wait=True)  # as the CLI does: no rank leaves while one still talks
    finally:
        destroy_distributed()
''')


def test_two_processes_resume_mid_epoch_and_stop_together(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(RESUME_WORKER)
    _launch([sys.executable, "-m", "torch.distributed.run", "--standalone",
             "--nproc_per_node", "2", str(script), str(tmp_path / "ddp")], tmp_path)
    ranks = [json.loads((tmp_path / f"ddp.rank{r}.json").read_text()) for r in (0, 1)]
    for r in ranks:
        # each rank kept its own RNG and meter sums (unequal shares: they differ) ...
        assert r["saved"] == {"world_size": 2, "batch": 3, "meters_differ": True,
                              "rngs_differ": True}
        # ... so the resumed run ends exactly where the uninterrupted one did: weights and
        # every metric of both epochs, the interrupted epoch's train_* included
        assert r["same_weights"]
        strip = [{k: v for k, v in e.items() if k != "time_s"} for e in r["full"]["epochs"]]
        assert [{k: v for k, v in e.items() if k != "time_s"}
                for e in r["resumed"]["epochs"]] == strip
        # asked on rank 1 only once step 5 was done: both finished step 6 and stopped
        assert r["stop"] == 6
        assert "loss became non-finite at epoch 1, step 3–3" in r["nan"]  # rank 0's NaN


def test_a_mid_epoch_checkpoint_needs_the_same_number_of_processes():
    from compactnn.train.loop import _rank_state

    ckpt = {"rng": "r0", "meter": {"n": 1}, "world_size": 2,
            "ranks": [{"rng": "r0", "meter": {"n": 1}}, {"rng": "r1", "meter": {"n": 2}}]}
    with pytest.raises(ValueError, match="middle of an epoch by 2 process"):
        _rank_state(ckpt, mid_epoch=True)
    assert _rank_state(ckpt, mid_epoch=False) == (None, "r0")  # between epochs: rank 0's RNG
    old = {"rng": "r", "meter": {"n": 3}}  # written before per-rank states (one process)
    assert _rank_state(old, mid_epoch=True) == ({"n": 3}, "r")
    with pytest.raises(ValueError, match="cannot resume from this checkpoint"):
        _rank_state({"world_size": 2, "ranks": [{"rng": 1, "meter": None}]}, mid_epoch=False)


def test_a_training_set_smaller_than_the_world_is_refused():
    from types import SimpleNamespace

    from compactnn.train.distributed import DistInfo

    data = SimpleNamespace(x_train=torch.zeros(1, 3), y_train=torch.zeros(1, dtype=torch.long),
                           x_val=None, y_val=None, x_test=torch.zeros(4, 3),
                           y_test=torch.zeros(4, dtype=torch.long))
    info = DistInfo(rank=0, world_size=2, backend="gloo")
    with pytest.raises(ValueError, match="training set has 1 example"):
        sharded_loaders(data, 2, 2, seed=0, info=info)


def test_checkpointed_per_rank_state_is_moved_to_the_cpu():
    from compactnn.train.callbacks import _to_cpu

    x = {"a": [torch.ones(2)], "b": (torch.zeros(1), 3), "c": None}
    out = _to_cpu(x)
    assert out["a"][0].device.type == "cpu" and isinstance(out["b"], tuple) and out["c"] is None
