"""Data-parallel training on PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

``torchrun --nproc_per_node N -m compactnn train …`` starts N processes; each builds the same
model from the same seed, sees its share of every global batch and DDP averages the gradients
(``gloo`` on the CPU, ``nccl`` on GPUs). The result is single-process training with the same
*global* batch size (``train.batch_size``), up to float rounding: the tests measure the weights
of 2 CPU processes against one process to ≤ 1e-6 after several steps, including a last batch
that does not split evenly.

Building blocks (this module does not touch ``fit``; the wiring below uses them):

* :func:`init_distributed` / :func:`destroy_distributed` — reads torchrun's environment,
  starts the default process group and says who this process is (:class:`DistInfo`); without
  torchrun (``WORLD_SIZE`` unset or 1) it returns a single-process ``DistInfo`` and starts
  nothing, so the same code path serves both.
* :class:`ShardedEpochBatches` — :class:`~compactnn.data.EpochBatches` (same seed ⇒ the same
  permutation and global batches on every rank, the same resume state) where each rank yields
  its contiguous share of each global batch; every rank runs the same number of steps.
* :class:`DistributedTask` — wraps a task so that DDP's gradient is the gradient of the
  global batch's mean loss even when shares are unequal or empty (:func:`rank_loss_scale`),
  and so that a meter's :meth:`compute` returns metrics over all ranks (:func:`reduce_meter`).
* :func:`sharded_loaders` — ``in_memory_loaders`` for one rank: the sharded training loader
  and each evaluation split cut into contiguous per-rank blocks.
* :func:`wrap_model` / :func:`unwrap_model` — DDP on or off.

Exactness. With shares ``n_r`` of a global batch of ``N = Σ n_r`` examples, DDP averages the
ranks' gradients, ``(1/W) Σ_r ∇L_r``; single-process training follows ``∇((1/N) Σ_i l_i)``.
Scaling each rank's mean loss by ``n_r · W / N`` makes the two equal for any split; an empty
share contributes a zero loss that still reaches every parameter (DDP needs every rank to run
backward, and each parameter's gradient hook to fire). Equality needs a model that computes the
same function per example on any split: BatchNorm (statistics per share; DDP broadcasts rank 0's
buffers) and Dropout (each rank draws its own masks: :func:`compactnn.runs.run` reseeds ranks
above 0 after the model is built) train correctly but not identically.

The wiring (:func:`compactnn.runs.run`; the CLI's ``train``, ``compare``, ``families`` and
``reproduce`` call :func:`init_distributed` once and pass the result down)::

    info = init_distributed(cfg.train.device)      # once, before anything
    try:
        cfg = replace(cfg, train=replace(cfg.train, device=info.device))  # "cuda" → cuda:LOCAL_RANK
        torch.manual_seed(cfg.seed)                # the SAME seed on every rank (not seed+rank)
        model = build(cfg.model).to(info.device)
        loaders = sharded_loaders(data, batch, eval_batch, seed, info)   # not in_memory_loaders
        task = DistributedTask(task, loaders["train"].sampler)  # fit's loop stays as it is
        model = wrap_model(model, info)            # DDP when info.world_size > 1
        history = fit(model, loaders, task, cfg.train, callbacks, progress=info.is_main)
    finally:
        destroy_distributed()

``fit`` runs a wrapped task unchanged: ``training_loss`` returns the scaled loss that backward
needs, the wrapped meter records the rank's unscaled loss and its ``compute()`` all-reduces the
sums first — every rank calls it at the same points, so the history (and any choice made from
it) is the same on all ranks. What ``fit`` does for a process group: it agrees the
non-finite-loss and stop flags over the ranks in one all-reduce per sync point (every rank raises
at the same step); callbacks run on every rank (a checkpoint, :meth:`TrainState.checkpoint
<compactnn.train.callbacks.TrainState.checkpoint>`, gathers each rank's RNG states and
mid-epoch meter sums onto rank 0, which alone writes); a resumed rank takes its own. Names that
must agree across ranks (a new run folder's time stamp) come from rank 0
(:func:`broadcast_object`); so do the experiment runner's reuse/resume decisions.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch import distributed as dist

from ..data.loaders import EpochBatches, tensor_loader
from .tasks import Meter, Task, _ClassificationMeter, _MultiLabelMeter, _RegressionMeter

__all__ = ["DistInfo", "DistributedTask", "ShardedEpochBatches", "all_reduce_sums",
           "any_over_ranks", "broadcast_object", "destroy_distributed", "gather_objects",
           "init_distributed", "rank_and_world", "rank_loss_scale", "reduce_meter",
           "shard_bounds", "sharded_loaders", "unwrap_model", "wrap_model"]

# --- the process group ------------------------------------------------------------------------
@dataclass(frozen=True)
class DistInfo:
    """Who this process is: ``rank`` of ``world_size`` (``local_rank`` on its node), the
    process group's ``backend`` (None: a single process, no group) and the ``device`` it
    trains on (``"cpu"`` or ``"cuda:<local_rank>"`` under torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes logs, metrics and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str) -> int:
    raw = os.environ.get(name)
    if raw is None:
        raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} is set but {name} is not: "
                         "launch with torchrun, which sets RANK, LOCAL_RANK, WORLD_SIZE, "
                         "MASTER_ADDR and MASTER_PORT")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _backend_device(device: str, local_rank: int) -> tuple[str, str]:
    dev = torch.device(device)
    if dev.type == "cpu":
        return "gloo", "cpu"
    if dev.type == "cuda":
        if dev.index is not None and dev.index != local_rank:
            raise ValueError(f"device {device!r} under torchrun: give 'cuda' — each process "
                             f"uses cuda:LOCAL_RANK (this one cuda:{local_rank})")
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' but CUDA is not available")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} "
                             "CUDA device(s) are visible: start at most that many processes "
                             "per node")
        return "nccl", f"cuda:{local_rank}"
    raise ValueError(f"distributed training runs on 'cpu' (gloo) or 'cuda' (nccl), not "
                     f"{device!r}")


def init_distributed(device: str = "cpu", *, timeout_s: float | None = None) -> DistInfo:
    """Start the default process group from torchrun's environment and return this process's
    :class:`DistInfo`: ``gloo`` for ``device="cpu"``, ``nccl`` for ``"cuda"`` (the process's
    CUDA device is set to ``cuda:LOCAL_RANK``). Not launched by torchrun (``WORLD_SIZE`` unset
    or 1): a single-process ``DistInfo(device=device)`` and no process group. ``timeout_s``
    bounds every collective (torch's default otherwise: 30 min gloo, 10 min nccl), so a rank
    that died makes the others fail instead of hanging. An environment that does not add up
    (rank out of range, missing variables) is a ValueError. Calling it again in a process whose
    group is already up returns the same answer."""
    world_raw = os.environ.get("WORLD_SIZE")
    if world_raw is None:
        return DistInfo(device=device)
    world = _env_int("WORLD_SIZE")
    if world < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {world}")
    if world == 1:
        return DistInfo(device=device)
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside [0, WORLD_SIZE={world})")
    if not 0 <= local_rank <= rank:
        raise ValueError(f"LOCAL_RANK={local_rank} must be in [0, RANK={rank}]")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise ValueError(f"{' and '.join(missing)} not set: launch with torchrun (or set them "
                         "to rank 0's address and a free port)")
    backend, dev = _backend_device(device, local_rank)
    if dist.is_initialized():
        if dist.get_world_size() != world or dist.get_rank() != rank:
            raise ValueError(f"a process group is already up as rank {dist.get_rank()} of "
                             f"{dist.get_world_size()}, the environment says {rank} of {world}")
        return DistInfo(rank, world, local_rank, dist.get_backend(), dev)
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    kwargs = {} if timeout_s is None else {"timeout": datetime.timedelta(seconds=timeout_s)}
    if backend == "nccl":
        kwargs["device_id"] = torch.device(dev)
    dist.init_process_group(backend=backend, rank=rank, world_size=world, **kwargs)
    return DistInfo(rank, world, local_rank, backend, dev)


def destroy_distributed(*, wait: bool = False) -> None:
    """Tear down the default process group, if one is up (safe to call in any case).
    ``wait``: first a barrier, so that no rank closes its connections while another still
    has a collective in flight (gloo may abort a process whose peer left mid-transfer); only
    on a path every rank takes — after an error on one rank it would wait for the timeout."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process in the default group; ``(0, 1)`` without one."""
    if _world() == 1:
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (picklable; what the others pass is ignored). The object
    itself in a single process. A collective: every rank calls it at the same point."""
    if _world() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj) -> list | None:
    """Every rank's ``obj``, in rank order, on rank 0 (``None`` on the others); ``[obj]`` in a
    single process. A collective: every rank calls it at the same point."""
    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    out = [None] * world if rank == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def any_over_ranks(*flags: bool | Tensor | None) -> list[bool]:
    """For each flag (a bool, a 0-d bool tensor on any device, or ``None`` = False), whether it
    is set on any rank — one all-reduce for all of them; the flags themselves in a single
    process. A collective: every rank calls it at the same point, with as many flags."""
    values = [f.to("cpu", torch.float64).reshape(()) if isinstance(f, Tensor)
              else torch.tensor(float(bool(f)), dtype=torch.float64) for f in flags]
    t = torch.stack(values)
    if _world() > 1:
        t = t.to(_comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.cpu().tolist()]


def _comm_device() -> torch.device:
    """Where collectives' tensors live: the CPU for gloo, this process's GPU for nccl."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def wrap_model(model: nn.Module, info: DistInfo, **ddp_kwargs) -> nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` when ``info`` is
    distributed (the model must be on ``info.device`` already), else ``model`` itself. DDP
    broadcasts rank 0's parameters and buffers on construction, so all ranks start alike."""
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if info.device.startswith("cuda"):
        ddp_kwargs.setdefault("device_ids", [torch.device(info.device).index])
    return DistributedDataParallel(model, **ddp_kwargs)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DDP (whose ``state_dict`` has no ``module.`` prefix), else ``model``."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


# --- data ---------------------------------------------------------------------------------
def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[lo, hi)`` of rank ``rank``'s contiguous share of ``n`` items: shares in rank order,
    sizes differing by at most one, the first ``n % world_size`` ranks one larger (as
    ``torch.tensor_split``); a share is empty when ``n < world_size``."""
    q, r = divmod(n, world_size)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} of world size {world_size}: need 0 <= rank < world size")


class ShardedEpochBatches(EpochBatches):
    """:class:`~compactnn.data.EpochBatches` of the *global* batch size, split across ranks.

    Every rank draws the same permutation from ``generator`` (seed it identically on every
    rank) and so the same global batches; rank ``r`` yields the ``r``-th contiguous share of
    each (:func:`shard_bounds`), so the union of the ranks' step-``k`` shares, in rank order, is
    single-process step ``k``; ``global_size`` is then step ``k``'s global batch size. Every
    rank yields ``len(self) = ceil(n / batch_size)`` batches
    (DDP needs the same number of steps everywhere); a last global batch smaller than
    ``world_size`` gives some ranks an empty share (an index tensor of length 0), which
    :class:`DistributedTask` turns into a zero loss. ``batch_size < world_size`` is refused
    (some ranks would never train). State and resume are EpochBatches': identical on all ranks.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, *,
                 rank: int, world_size: int) -> None:
        _check_rank(rank, world_size)
        if batch_size < world_size:
            raise ValueError(f"the global batch size ({batch_size}) must be at least the number "
                             f"of processes ({world_size})")
        super().__init__(n, batch_size, generator)
        self.rank, self.world_size = rank, world_size
        #: the size of the global batch whose share was yielded last (see DistributedTask)
        self.global_size: int | None = None

    def __iter__(self):
        for batch in super().__iter__():
            lo, hi = shard_bounds(len(batch), self.rank, self.world_size)
            self.global_size = len(batch)
            yield batch[lo:hi]


def sharded_loaders(data, batch_size: int, eval_batch_size: int, seed: int, info: DistInfo,
                    pin_memory: bool = False) -> dict:
    """:func:`~compactnn.data.in_memory_loaders` for rank ``info.rank``: training batches from
    :class:`ShardedEpochBatches` (``batch_size`` is the global batch size), each evaluation
    split cut into ``world_size`` contiguous blocks (:func:`shard_bounds`) of which this rank
    evaluates its own in batches of ``eval_batch_size`` — the reduced metrics are those of the
    whole split. A single-process ``info`` gives exactly ``in_memory_loaders``' loaders. An
    evaluation split with fewer examples than processes is a ValueError."""
    from torch.utils.data import DataLoader, TensorDataset

    from ..data.loaders import in_memory_loaders

    if not info.distributed:
        return in_memory_loaders(data, batch_size, eval_batch_size, seed, pin_memory=pin_memory)
    if getattr(data, "augment", None) is not None:
        raise ValueError(f"data.augment={data.augment!r} is not supported under torchrun yet: "
                         "train with one process, or without augmentation")
    if len(data.x_train) < info.world_size:  # a rank with no example would fail its epoch
        raise ValueError(f"the training set has {len(data.x_train)} example(s), fewer than the "
                         f"{info.world_size} processes")
    gen = torch.Generator().manual_seed(seed)
    sampler = ShardedEpochBatches(len(data.x_train), batch_size, gen, rank=info.rank,
                                  world_size=info.world_size)
    loaders = {"train": DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=None,
                                   sampler=sampler, pin_memory=pin_memory)}
    for split in ("val", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x is None:
            continue
        if len(x) < info.world_size:
            raise ValueError(f"the {split!r} split has {len(x)} example(s), fewer than the "
                             f"{info.world_size} processes")
        lo, hi = shard_bounds(len(x), info.rank, info.world_size)
        loaders[split] = tensor_loader(x[lo:hi], y[lo:hi], eval_batch_size,
                                       pin_memory=pin_memory)
    return loaders


# --- the loss -----------------------------------------------------------------------------
def rank_loss_scale(local_n: int | Tensor, global_n: int | Tensor,
                    world_size: int) -> float | Tensor:
    """The factor ``local_n · world_size / global_n`` for a rank's *mean* loss over its
    ``local_n`` examples, so that DDP's average of the ranks' gradients is the gradient of the
    mean loss over the global batch's ``global_n`` examples:
    ``(1/W) Σ_r ∇(L_r · n_r W / N) = ∇((1/N) Σ_i l_i)``. 1 for equal shares; 0 for an empty
    share (whose loss must then be a finite zero — see :class:`DistributedTask`)."""
    return local_n * world_size / global_n


def global_count(local_n: int, device: torch.device | str = "cpu") -> Tensor:
    """Σ ``local_n`` over ranks (an int64 tensor; one all-reduce, no host sync with nccl)."""
    if _world() == 1:
        return torch.tensor(local_n, dtype=torch.int64, device=device)
    t = torch.tensor(local_n, dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t)
    return t.to(device)


class DistributedTask(Task):
    """``task`` for one rank of a data-parallel run; ``fit`` runs it as it is.

    ``training_loss`` returns the rank's mean loss times :func:`rank_loss_scale`, or a zero
    that reaches every parameter for an empty share; ``loss`` is the task's. The global
    batch's size comes from ``sampler.global_size`` when a :class:`ShardedEpochBatches` is
    given — the batch the training loader just produced, so only for a loader that draws
    indices as it goes (``num_workers=0``, as :func:`sharded_loaders` builds it) — else from
    an all-reduce of the shares' sizes per step, which works for any sharded loader but costs
    a collective's latency per step (≈0.8 ms of a 5.5 ms step on 2 CPU cores). ``meter()`` wraps
    the task's meter: it records the rank's *unscaled* training
    loss, and ``compute()`` first sums its running totals over the ranks
    (:func:`reduce_meter`) — a collective, so every rank must call it at the same point (fit
    does). In a single process (no group, or a group of one) it is ``task`` exactly."""

    def __init__(self, task: Task, sampler: ShardedEpochBatches | None = None) -> None:
        self.task, self.sampler = task, sampler
        self.primary, self.higher_is_better = task.primary, task.higher_is_better
        self._last: tuple[Tensor, Tensor] | None = None  # (returned loss, its unscaled value)

    def loss(self, output, target):
        return self.task.loss(output, target)

    def training_loss(self, output, target, inputs):
        world = _world()
        if world == 1:
            return self.task.training_loss(output, target, inputs)
        n = len(target)
        # the mean over an empty share is NaN; 0·output.sum() is 0 and reaches every parameter
        local = (self.task.training_loss(output, target, inputs) if n
                 else output.sum() * 0.0)
        if self.sampler is not None:
            total = self.sampler.global_size
            if total is None or total < n:
                raise RuntimeError(f"the sampler's global batch size ({total}) does not fit this "
                                   f"share of {n}: is the loader prefetching (num_workers > 0)? "
                                   "Leave out sampler= to all-reduce the sizes instead")
            scaled = local * rank_loss_scale(n, total, world)
        else:
            scale = rank_loss_scale(n, global_count(n, output.device).double(), world)
            scaled = local * scale.to(local.dtype)
        self._last = (scaled, local.detach())
        return scaled

    def unscaled(self, loss: Tensor) -> Tensor:
        """The rank's own mean loss behind a loss :meth:`training_loss` just returned (any
        other loss — an evaluation's — as it is)."""
        if self._last is not None and loss is self._last[0]:
            return self._last[1]
        return loss

    def meter(self) -> Meter:
        return _ReducingMeter(self.task.meter(), self)

    def __repr__(self) -> str:
        return f"DistributedTask({self.task!r})"


class _ReducingMeter(Meter):
    """A task's meter that records unscaled losses and reduces over ranks in ``compute``."""

    def __init__(self, inner: Meter, task: DistributedTask) -> None:
        self.inner, self._task, self._reduced = inner, task, False

    @property
    def n(self) -> int:  # this rank's count until reduce() has made it the global one
        return self.inner.n

    def update(self, output, target, loss):
        self.inner.update(output, target, self._task.unscaled(loss))

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)

    def reduce(self) -> None:
        """Make the meter the whole pass's (a collective; once, later calls are no-ops)."""
        if not self._reduced:
            reduce_meter(self.inner)
            self._reduced = True

    def compute(self):
        self.reduce()
        return self.inner.compute()


# --- metrics ------------------------------------------------------------------------------
def all_reduce_sums(values: list[Tensor | float | int | None]) -> list[Tensor]:
    """Sum each value over the ranks in one all-reduce (float64, exact for counts below
    2**53); ``None`` counts as 0 (a rank that saw no batch). Returns float64 CPU scalars, the
    values themselves (as tensors) in a single process."""
    flat = torch.tensor([0.0 if v is None else float(v) for v in values], dtype=torch.float64)
    if _world() > 1:
        flat = flat.to(_comm_device())
        dist.all_reduce(flat)
        flat = flat.cpu()
    return list(flat.unbind())


def _all_gather_rows(t: Tensor) -> Tensor:
    """Concatenate over ranks, in rank order, tensors that agree in all but the first dim."""
    dev, world = _comm_device(), _world()
    local = t.to(dev)
    sizes = [torch.zeros(1, dtype=torch.int64, device=dev) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([len(t)], dtype=torch.int64, device=dev))
    sizes = [int(s.item()) for s in sizes]
    pad = max(sizes)
    buf = torch.zeros((pad, *t.shape[1:]), dtype=t.dtype, device=dev)
    buf[:len(t)] = local
    parts = [torch.empty_like(buf) for _ in range(world)]
    dist.all_gather(parts, buf)
    return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)]).to(t.device)


def reduce_meter(meter: Meter) -> Meter:
    """Turn each rank's ``meter`` (after its pass over its shard) into the meter of the whole
    pass, in place, on every rank: counts and sums are all-reduced, so ``compute()`` gives the
    global metrics everywhere. A collective: every rank calls it once, at the same point.

    Classification (``n``, loss sum, ``correct``), regression (``n``, loss sum): sums.
    Multi-label: sums, and the per-example top-k scores and hits (GAP ranks all examples
    together) are all-gathered — ``O(N·k)`` per rank, in rank order; only ties in score can
    rank differently from a single pass. A meter defining ``all_reduce()`` reduces itself;
    any other meter type is a TypeError (its sums are unknown here). No-op in one process."""
    if _world() == 1:
        return meter
    custom = getattr(meter, "all_reduce", None)
    if callable(custom):
        custom()
        return meter
    kind = type(meter)
    if kind not in (_ClassificationMeter, _RegressionMeter, _MultiLabelMeter):
        raise TypeError(f"cannot reduce a {kind.__name__} across processes: give it an "
                        "all_reduce() method that sums its running totals over the ranks")
    extra = {_ClassificationMeter: ["correct"], _RegressionMeter: [],
             _MultiLabelMeter: ["positives"]}[kind]
    dev = meter.loss_sum.device if meter.loss_sum is not None else None
    n, loss_sum, *rest = all_reduce_sums([meter.n, meter.loss_sum]
                                         + [getattr(meter, a) for a in extra])
    meter.n = int(n.item())
    meter.loss_sum = loss_sum.to(dev) if dev is not None else loss_sum
    for name, total in zip(extra, rest, strict=True):
        old = getattr(meter, name)
        setattr(meter, name, total.to(torch.int64).to(old.device if old is not None else "cpu"))
    if kind is _MultiLabelMeter:
        k = meter.k
        # a rank that saw no batch has no top-k width: take the others' (k capped by classes)
        width = _max_over_ranks(meter.scores[0].shape[1] if meter.scores else 0)
        scores = (torch.cat(meter.scores) if meter.scores
                  else torch.zeros(0, min(k, width), dtype=torch.float32))
        hits = (torch.cat(meter.hits) if meter.hits
                else torch.zeros(0, min(k, width), dtype=torch.bool))
        scores = _all_gather_rows(scores.float())
        hits = _all_gather_rows(hits.to(torch.uint8)).bool()
        meter.scores, meter.hits = ([scores], [hits]) if len(scores) else ([], [])
    return meter


def _max_over_ranks(v: int) -> int:
    t = torch.tensor([v], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())
