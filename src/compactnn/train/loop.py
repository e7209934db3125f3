"""``fit``: batches from DataLoaders, a task's loss and metrics, a schedule, callbacks."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice

import torch
from torch import nn

from .._optional import progress_bar
from ..config import TrainConfig
from .callbacks import Callback, TrainState
from .checkpoint import set_rng_state
from .distributed import any_over_ranks, rank_and_world, unwrap_model
from .schedules import lr_at, make_optimizer
from .tasks import Task

__all__ = ["NonFiniteLossError", "evaluate", "fit"]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def _to(batch, device: torch.device):
    x, y = batch
    nb = device.type == "cuda"
    return x.to(device, non_blocking=nb), y.to(device, non_blocking=nb)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, task: Task, device: str = "cpu", *,
             split: str = "evaluation") -> dict:
    """The task's metrics of ``model`` (in eval mode) over ``loader``; a loader that yields
    no samples is a ValueError naming ``split`` (its metrics would be undefined, not 0)."""
    was_training = model.training
    model.eval()
    meter = task.meter()
    dev = torch.device(device)
    try:
        for batch in loader:
            x, y = _to(batch, dev)
            out = model(x)
            meter.update(out, y, task.loss(out, y))
    finally:
        model.train(was_training)
    reduce = getattr(meter, "reduce", None)  # under torchrun: the global count on every rank,
    if callable(reduce):  # so a rank whose share is empty does not raise alone (and hang)
        reduce()
    if meter.n == 0:
        raise ValueError(f"the {split!r} loader yielded no samples, so its metrics are undefined")
    return meter.compute()


def _len(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:  # a streaming (iterable) data set without a length
        return None


def _steps_per_epoch(loader, cfg: TrainConfig) -> int | None:
    """Steps in one epoch: ``cfg.steps_per_epoch`` caps a loader's length; a loader without a
    length (a stream) runs exactly ``cfg.steps_per_epoch`` steps (None: until it ends)."""
    n = _len(loader)
    if n is None or cfg.steps_per_epoch is None:
        return cfg.steps_per_epoch if n is None else n
    return min(n, cfg.steps_per_epoch)


def _resume(ckpt: dict, model: nn.Module, opt, sampler, cfg: TrainConfig):
    """Load a :meth:`TrainState.checkpoint` into ``model``, ``opt`` and ``sampler``; return
    ``(step, epochs done, batches done in the epoch in progress, history)``."""
    try:
        step, epochs, batches, history = (int(ckpt["step"]), int(ckpt["epoch"]),
                                          int(ckpt["batch"]), ckpt["history"])
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"cannot resume from this checkpoint: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if history.get("epochs_planned") != cfg.epochs or epochs > cfg.epochs:
        raise ValueError(f"cannot resume: the checkpoint is of a {history.get('epochs_planned')}"
                         f"-epoch run, this one has {cfg.epochs}")
    if batches:
        if sampler is None or ckpt.get("sampler") is None:
            raise ValueError("cannot resume in the middle of an epoch: the training loader's "
                             "sampler has no state (resume from an end-of-epoch checkpoint)")
    if sampler is not None and ckpt.get("sampler") is not None:
        sampler.resume(ckpt["sampler"], batches)
    return step, epochs, batches, history


def _rank_state(ckpt: dict, mid_epoch: bool) -> tuple[dict | None, dict]:
    """This rank's ``(meter state, RNG state)`` from a checkpoint written by any number of
    processes. Mid-epoch the meter holds sums over this rank's shares, so the number of
    processes must be the same; between epochs only the RNGs are per rank (rank ``r`` takes
    saved rank ``r mod saved``: with another number of processes, randomness inside the model
    — dropout — continues differently, the data order does not)."""
    rank, world = rank_and_world()
    try:
        saved = int(ckpt.get("world_size", 1))
        ranks = ckpt.get("ranks") or [{"rng": ckpt["rng"], "meter": ckpt.get("meter")}]
        if len(ranks) != saved:
            raise ValueError(f"{len(ranks)} per-process states for {saved} processes")
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"cannot resume from this checkpoint: {type(e).__name__}: {e}") from None
    if mid_epoch and saved != world:
        raise ValueError(f"cannot resume: the checkpoint was written in the middle of an epoch "
                         f"by {saved} process(es) and this run has {world}: resume with "
                         f"{saved} (its running metrics are per process)")
    mine = ranks[rank % saved]
    return (mine["meter"] if mid_epoch else None), mine["rng"]


def fit(
    model: nn.Module,
    loaders: Mapping[str, Iterable],
    task: Task,
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    *,
    progress: bool = True,
    sync_every: int | None = None,
    resume: dict | None = None,
) -> dict:
    """Train ``model`` on ``loaders["train"]`` and evaluate it on every other loader after
    each epoch; return the history.

    ``loaders``: ``{"train": ..., "test": ..., "val": ...}`` — DataLoaders (map-style or
    iterable) or any iterables of ``(inputs, targets)`` batches. ``task`` supplies the loss and
    metrics (:mod:`compactnn.train.tasks`). Each epoch's record holds ``train_<metric>`` for
    the training pass (with the model in train mode, as the batches went by), ``<split>_<metric>``
    for each evaluation loader, ``lr`` and ``time_s`` (training only). Metrics accumulate on the
    device; the loss is checked for NaN/inf (raising :class:`NonFiniteLossError`) every
    ``sync_every`` steps — default: every step on CPU, where it costs nothing, every 50 on an
    accelerator, where each check waits for the device — and when a progress bar refreshes.

    Epoch length: ``config.steps_per_epoch``, when set, is the number of training steps per
    epoch for any loader — an epoch stops after that many batches (a map-style loader runs
    ``min(len(loader), steps_per_epoch)``; a stream continues where it stopped, so an endless
    iterator works). Unset, an epoch is one full pass over the loader. The learning rate
    follows ``config.schedule`` over ``epochs × steps per epoch`` steps; a stream that ends
    before ``steps_per_epoch`` ends its epoch early, and the schedule then stops short of its
    end. A loader without a length needs ``steps_per_epoch`` unless the schedule is
    ``constant``. A one-shot iterator (a generator) cannot be re-iterated: over several epochs
    it needs ``steps_per_epoch``; otherwise pass a DataLoader or a re-iterable.

    The caller seeds (``torch.manual_seed``) and builds the loaders. ``resume``: a checkpoint
    from :meth:`TrainState.checkpoint` (what :class:`MetricsWriter` saves) of this same setup;
    training continues where it stopped — model, optimizer, history, the epoch's meter, every
    RNG and, mid-epoch, the training sampler's position (samplers with ``state_dict``/
    ``resume``, such as :class:`~compactnn.data.EpochBatches`) — to the same result as an
    uninterrupted run. Under torchrun each rank restores its own RNGs and meter sums
    (:meth:`TrainState.checkpoint`).

    Stopping: a callback whose :meth:`~Callback.wants_stop` turns true ends training after the
    step in progress (``state.stopping`` is set for that step's ``on_step_end``, where it saves
    and raises). Under torchrun (a process group is up) the non-finite-loss and stop flags are
    agreed over the ranks in one all-reduce at each sync point, so every rank raises at the same
    step and none is left waiting in a collective.
    """
    if "train" not in loaders:
        raise ValueError("fit needs a 'train' loader")
    cfg = config
    device = torch.device(cfg.device)
    model.to(device)
    opt = make_optimizer(model, cfg)
    steps_per_epoch = _steps_per_epoch(loaders["train"], cfg)
    if steps_per_epoch == 0:
        raise ValueError("the training set is empty")
    if steps_per_epoch is None and cfg.schedule != "constant":
        raise ValueError(f"the training data has no length, so the {cfg.schedule!r} schedule "
                         "cannot be laid out: set train.steps_per_epoch")
    if isinstance(loaders["train"], Iterator) and cfg.epochs > 1 and cfg.steps_per_epoch is None:
        raise ValueError(f"the training loader is a one-shot iterator: epoch 1 would exhaust it "
                         f"and leave no batches for the other {cfg.epochs - 1} epoch(s); pass a "
                         "DataLoader or a re-iterable, or set train.steps_per_epoch for an "
                         "endless stream")
    for split, loader in loaders.items():  # fail before training where a length tells
        if split != "train" and loader is not None and _len(loader) == 0:
            raise ValueError(f"the {split!r} loader is empty, so its metrics are undefined")
    total = (steps_per_epoch or 0) * cfg.epochs
    if sync_every is None:
        sync_every = 1 if device.type == "cpu" else 50
    world = rank_and_world()[1]
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    history: dict = {"num_params": num_params, "epochs": [], "epochs_planned": cfg.epochs,
                     "task": type(task).__name__, "primary": task.primary}
    sampler = getattr(loaders["train"], "sampler", None)
    sampler = sampler if callable(getattr(sampler, "resume", None)) else None
    inner = unwrap_model(model)  # what callbacks save and evaluation runs (no DDP hooks)
    state = TrainState(model=inner, optimizer=opt, total_steps=total, history=history,
                       sampler=sampler)
    step, done_epochs, done_batches, meter_state, rng = 0, 0, 0, None, None
    if resume is not None:
        step, done_epochs, done_batches, history = _resume(resume, inner, opt, sampler, cfg)
        meter_state, rng = _rank_state(resume, bool(done_batches))
        state.history, state.step, state.epoch = history, step, done_epochs
    lr = cfg.lr
    for epoch in range(done_epochs + 1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        meter = task.meter()
        if meter_state is not None:  # the interrupted epoch's sums so far
            meter.load_state_dict(meter_state)
        first, meter_state, done_batches = done_batches, None, 0
        state.meter, state.batch = meter, first
        bad: torch.Tensor | None = None  # any non-finite loss since the last check
        checked = step
        batches = loaders["train"]
        if rng is not None and not first:  # checkpointed between epochs: before the
            set_rng_state(rng)  # DataLoader's iterator draws its seed, as it was then
            rng = None
        batches = iter(batches)
        if rng is not None:  # mid-epoch: that draw had happened before the checkpoint
            set_rng_state(rng)
            rng = None
        if cfg.steps_per_epoch is not None:  # the epoch's length, whatever the loader's
            batches = islice(batches, steps_per_epoch - first)
        bar = progress_bar(batches, total=None if steps_per_epoch is None
                           else steps_per_epoch - first, desc=f"epoch {epoch}/{cfg.epochs}",
                           leave=False, disable=not progress, mininterval=0.5)
        for b, batch in enumerate(bar, start=first):
            xb, yb = _to(batch, device)
            lr = lr_at(cfg, step, total) if total else cfg.lr
            for group in opt.param_groups:
                group["lr"] = lr
            out = model(xb)
            loss = task.training_loss(out, yb, xb)
            flag = ~torch.isfinite(loss.detach())
            bad = flag if bad is None else bad | flag
            # the ranks' check points must coincide: the progress bar's only in one process
            if (step + 1 - checked) >= sync_every or (progress and world == 1 and b % 20 == 0):
                stop = any(cb.wants_stop() for cb in callbacks)
                is_bad, state.stopping = (any_over_ranks(bad, stop) if world > 1
                                          else (bool(bad.item()), stop))
                if is_bad:
                    raise NonFiniteLossError(
                        f"loss became non-finite at epoch {epoch}, step {checked}–{step} "
                        f"(lr={lr:.3g}); lower the learning rate, set train.grad_clip, or check "
                        "the initialization")
                bad, checked = None, step + 1
                if progress and b % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
            elif world == 1:  # asking costs nothing here
                state.stopping = any(cb.wants_stop() for cb in callbacks)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            meter.update(out, yb, loss)
            state.step, state.batch = step, b + 1
            for cb in callbacks:
                cb.on_step_end(state)
            if state.stopping:  # no callback ended it in on_step_end
                raise KeyboardInterrupt(f"training stopped at a callback's request after step "
                                        f"{step}")
        if bad is not None and (any_over_ranks(bad)[0] if world > 1 else bad.item()):
            raise NonFiniteLossError(f"loss became non-finite at epoch {epoch}, step "
                                     f"{checked}–{step - 1} (lr={lr:.3g})")
        if meter.n == 0:
            raise ValueError(
                f"the training loader yielded no batches in epoch {epoch}"
                + (" (a one-shot iterator cannot be re-iterated; pass a DataLoader or a "
                   "re-iterable)" if epoch > 1 else ""))
        train_time = time.perf_counter() - t0
        rec = {"epoch": epoch, "lr": lr, "time_s": train_time}
        rec.update({f"train_{k}": v for k, v in meter.compute().items()})
        for split, loader in loaders.items():
            if split != "train" and loader is not None:
                metrics = evaluate(inner, loader, task, cfg.device, split=split)
                rec.update({f"{split}_{k}": v for k, v in metrics.items()})
        history["epochs"].append(rec)
        state.epoch, state.batch = epoch, 0
        for cb in callbacks:
            cb.on_epoch_end(state)
    last = history["epochs"][-1]
    history["final"] = {k: v for k, v in last.items() if k not in ("epoch", "lr", "time_s")}
    history["time_per_epoch_s"] = sum(e["time_s"] for e in history["epochs"]) / cfg.epochs
    for cb in callbacks:
        cb.on_train_end(state)
    return history

