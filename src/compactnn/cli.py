"""Command line: ``compactnn list | train | compare | families | reproduce | report |
compress``.

Every command that trains builds :class:`~compactnn.config.RunConfig` s: from ``--config``
(``train``) or the command's own defaults, then the shortcut flags (``--epochs 5`` is
``--set train.epochs=5``), then ``--set`` overrides in order. Choices come from the registries.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from ._optional import DISTRIBUTIONS, MissingDependency
from .config import RunConfig, apply_overrides, assign, parse_value
from .data import DataError
from .registry import available, capabilities, get
from .runs import DEFAULT_CHECKPOINT_EVERY, check_writable
from .runtime import keep_freed_memory
from .train import NonFiniteLossError
from .train.distributed import broadcast_object, destroy_distributed, init_distributed

#: shortcut flag → (config path, argparse options); applied only when given
_DATA_FLAGS = {
    "--dataset": ("data.name", dict(choices=available("dataset"))),
    "--data-dir": ("data.data_dir", dict(help="directory with the data files (authoritative)")),
    "--val-fraction": ("data.val_fraction", dict(type=float)),
    "--limit-train": ("data.limit_train", dict(
        type=int, help="use a random subset of this many training examples")),
}
_TRAIN_FLAGS = {
    "--epochs": ("train.epochs", dict(type=int)),
    "--batch-size": ("train.batch_size", dict(type=int)),
    "--optimizer": ("train.optimizer", dict(choices=available("optimizer"))),
    "--lr": ("train.lr", dict(type=float)),
    "--weight-decay": ("train.weight_decay", dict(type=float)),
    "--schedule": ("train.schedule", dict(choices=available("schedule"))),
    "--grad-clip": ("train.grad_clip", dict(type=float, help="max gradient norm")),
    "--device": ("train.device", dict()),
    "--seed": ("seed", dict(type=int)),
}
_MODEL_FLAGS = {
    "--model": ("model.name", dict(choices=available("model"))),
    "--layer": ("model.layer", dict(choices=sorted(available("linear")),
                                    help="layer family (models built from one, e.g. mlp)")),
    "--width": ("model.width", dict(type=int, help="hidden width (default: input size)")),
    "--depth": ("model.depth", dict(type=int, help="number of hidden structured layers")),
    "--activation": ("model.activation", dict(choices=available("activation"))),
    "--negative-slope": ("model.negative_slope", dict(type=float)),
    "--nonlinearity-every": ("model.nonlinearity_every", dict(
        type=int, help="an activation after every k-th hidden layer, identity otherwise")),
    "--batchnorm": ("model.batchnorm", dict(action="store_const", const=True)),
    "--dropout": ("model.dropout", dict(type=float)),
    "--classifier": ("model.classifier", dict(choices=sorted(available("linear")),
                                              help="family of the classifier layer")),
    "--init": ("model.init", dict(help="initialization scheme (circulant families: "
                                       f"{', '.join(available('init'))}; others list their own)")),
    "--teacher": ("task.teacher", dict(help="run directory of a trained teacher model")),
    "--temperature": ("task.temperature", dict(type=float)),
    "--alpha": ("task.alpha", dict(type=float, help="weight of the soft-target loss")),
}


def _dest(flag: str) -> str:
    return "opt_" + flag.lstrip("-").replace("-", "_")


def _add_flags(p: argparse.ArgumentParser, title: str, flags: dict) -> None:
    g = p.add_argument_group(title)
    for flag, (path, opts) in flags.items():
        text = opts.get("help")
        extra = {} if "action" in opts or "choices" in opts else {
            "metavar": flag.lstrip("-").upper().replace("-", "_")}
        g.add_argument(flag, dest=_dest(flag), default=None, **extra,
                       **{**opts, "help": (f"{text} " if text else "") + f"(= --set {path}=…)"})


def _add_common(p: argparse.ArgumentParser, *, train_flags: bool = True) -> None:
    _add_flags(p, "data", _DATA_FLAGS)
    if train_flags:
        _add_flags(p, "training", _TRAIN_FLAGS)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. train.epochs=5 or "
                        "model.layer_kwargs.rank=4 (repeatable; applied last)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _overrides(args, flags: dict) -> list[tuple[str, object]]:
    return [(path, getattr(args, _dest(flag))) for flag, (path, _) in flags.items()
            if getattr(args, _dest(flag), None) is not None]


def _build(base: RunConfig, args, *flag_sets: dict, extra: list[tuple[str, object]] = ()
           ) -> RunConfig:
    """``base`` with the given shortcut flags and ``extra`` assignments (typed values), then
    the ``--set`` overrides in order."""
    d = base.to_dict()
    for path, value in [pair for flags in flag_sets for pair in _overrides(args, flags)] + list(
            extra):
        assign(d, path, value)
    return RunConfig.from_dict(apply_overrides(d, args.set))


# --- commands ------------------------------------------------------------------------------
def _cmd_list(args) -> int:
    def families(kind: str, head: str) -> None:
        print(head)
        for name in sorted(available(kind)):
            cls = get(kind, name)
            caps = capabilities(cls)
            extra = [f"from_dense: {'exact' if caps['from_dense_exact'] else 'fit'}"] \
                if caps.get("from_dense") else []
            extra += [f"budget: {', '.join(caps['budget_kwargs'])}"] \
                if caps.get("budget_kwargs") else []
            print(f"  {name:<22} {cls.__name__:<18} params = {cls.param_formula}"
                  + (f"   [{'; '.join(extra)}]" if extra else ""))

    families("linear", "layers (make_linear(name, in, out)):")
    families("conv", "conv operators (make_conv(name, in, out, k)):")
    print("models:      " + ", ".join(sorted(available("model"))))
    print("datasets:")
    for name in available("dataset"):
        spec = get("dataset", name)
        if spec.resolve is not None:  # an alias
            print(f"  {name:<14} {spec.description}")
            continue
        print(f"  {name:<14} {spec.task}, {spec.num_classes} classes, input "
              f"{'×'.join(map(str, spec.input_shape))}: {spec.description}")
    for kind in ("task", "init", "activation", "optimizer", "schedule"):
        print(f"{kind + 's:':<13}" + ", ".join(available(kind)))
    print("experiments (compactnn reproduce NAME): " + ", ".join(available("experiment")))
    return 0


def _cmd_train(args) -> int:
    from pathlib import Path

    from .runs import new_run_dir, preview_config, run

    if args.resume is not None:  # the run folder's own config, nothing else
        given = _flags_given(args) + (["--config"] if args.config else [])
        if given:
            raise ValueError(f"--resume continues a run exactly as configured: drop "
                             f"{', '.join(given)}")
        run_dir = Path(args.resume)
        if not (run_dir / "config.toml").is_file():
            raise ValueError(f"--resume {run_dir}: not a run folder (no config.toml)")
        cfg = RunConfig.load(run_dir / "config.toml")
        info = init_distributed(cfg.train.device)
        res = run(cfg, run_dir=run_dir, resume=True, progress=not args.no_progress,
                  checkpoint_every=args.checkpoint_every, dist=info)
        return _report_run(res, info)
    if args.config is not None:
        base = RunConfig.load(args.config)
    else:
        base = RunConfig(name=args.opt_model or "dcnn")
    extra = [(f"model.layer_kwargs.{k}", parse_value(v))
             for k, _, v in (_key_value(item) for item in args.layer_kw)]
    cfg = _build(base, args, _DATA_FLAGS, _TRAIN_FLAGS, _MODEL_FLAGS, extra=extra)
    if args.dry_run:
        print(preview_config(cfg).to_toml(), end="")
        return 0
    check_writable(args.runs_dir, "--runs-dir")
    info = init_distributed(cfg.train.device)  # under torchrun: this rank; else one process
    run_dir = broadcast_object(new_run_dir(args.runs_dir, cfg.name) if info.is_main else None)
    res = run(cfg, run_dir=run_dir, progress=not args.no_progress,
              checkpoint_every=args.checkpoint_every, dist=info)
    return _report_run(res, info)


def _flags_given(args) -> list[str]:
    """The config-changing flags of ``train`` that were given."""
    flags = {**_DATA_FLAGS, **_TRAIN_FLAGS, **_MODEL_FLAGS}
    return ([f for f in flags if getattr(args, _dest(f), None) is not None]
            + ["--set"] * bool(args.set) + ["--layer-kw"] * bool(args.layer_kw))


def _report_run(res: dict, info) -> int:
    if not info.is_main:
        return 0
    h, primary = res["history"], res["history"]["primary"]
    print(f"parameters {res['num_params']:,}  final test {primary} "
          f"{h['final'][f'test_{primary}']:.4f}  time/epoch {h['time_per_epoch_s']:.1f}s")
    print(f"run written to {res['run_dir']} (rerun: compactnn train --config "
          f"{res['run_dir']}/config.toml)")
    return 0


def _key_value(item: str, flag: str = "--layer-kw") -> tuple[str, str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"{flag} expects key=value, got {item!r}")
    return key, sep, value


def _cmd_compare(args) -> int:
    from .experiments.compare import base_config, run_compare

    cfg = _build(base_config(args.quick), args, _DATA_FLAGS, _TRAIN_FLAGS)
    check_writable(args.runs_dir, "--runs-dir")
    run_compare(cfg, quick=args.quick, runs_dir=args.runs_dir, progress=not args.no_progress,
                dist=init_distributed(cfg.train.device))
    return 0


def _cmd_families(args) -> int:
    from .experiments.families import base_config, run_families

    fams = None if args.families is None else [f.strip() for f in args.families.split(",")]
    for f in fams or []:
        get("linear", f)  # clear error for an unknown name
    extra = [(k, v) for k, v in (("model.width", args.width), ("model.depth", args.depth))
             if v is not None]
    if any(item.startswith("model.layer=") for item in args.set):
        raise ValueError("families sets model.layer to each family; choose them with "
                         "--families")
    cfg = _build(base_config(args.quick), args, _DATA_FLAGS, _TRAIN_FLAGS, extra=extra)
    check_writable(args.runs_dir, "--runs-dir")
    if args.out_dir is not None:
        check_writable(args.out_dir, "--out-dir")
    run_families(cfg, families=fams, quick=args.quick, out_dir=args.out_dir,
                 runs_dir=args.runs_dir, progress=not args.no_progress,
                 dist=init_distributed(cfg.train.device))
    return 0


def _cmd_reproduce(args) -> int:
    from .experiments.runner import run_experiment

    names = available("experiment") if args.name == "all" else [args.name]
    for name in names:
        get("experiment", name)
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:  # before any collective, every rank
        custom = [n for n in names if get("experiment", n).custom is not None]
        if args.name != "all" and custom:
            raise ValueError(f"{args.name} trains no models: run it as one process, not under "
                             "torchrun")
        names = [n for n in names if n not in custom]
        if custom and os.environ.get("RANK", "0") == "0":
            print(f"note: skipped under torchrun (they train nothing; run them as one process): "
                  f"{', '.join(custom)}")
    if args.seeds is not None and (len(set(args.seeds)) != len(args.seeds)
                                   or min(args.seeds) < 0):
        raise ValueError(f"--seeds must be distinct non-negative integers, got "
                         f"{' '.join(map(str, args.seeds))} (a repeated seed would count one run "
                         "twice)")
    results = args.results_dir
    if results is None:  # a quick run is a smoke test: never into results/
        results = f"{args.runs_dir}/quick-results" if args.quick else "results"
    check_writable(args.runs_dir, "--runs-dir")
    check_writable(results, "--results-dir")
    # the device every run trains on (experiments leave train.device to --set)
    device = RunConfig.from_dict(apply_overrides(RunConfig().to_dict(), args.set)).train.device
    info = init_distributed(device)
    for name in names:
        if info.is_main:
            print(f"== {name} ==")
        run_experiment(get("experiment", name), quick=args.quick,
                       seeds=None if args.seeds is None else tuple(args.seeds),
                       assignments=_overrides(args, _DATA_FLAGS), overrides=args.set,
                       runs_root=args.runs_dir, results_root=results,
                       progress=not args.no_progress, dist=info,
                       report_only=args.report_only)
    return 0


def _cmd_compress(args) -> int:
    from .compress import CompressionPolicy, compress_run

    kwargs = {k: parse_value(v) for k, _, v in (_key_value(item, "--kw") for item in args.kw)}
    policy = CompressionPolicy(args.family, kwargs=kwargs, ratio=args.ratio, budget=args.budget,
                               min_size=args.min_size, include=tuple(args.include),
                               skip=tuple(args.skip), conv1x1=args.conv1x1)
    compress_run(args.run_dir, policy, args.out, finetune_epochs=args.finetune_epochs,
                 distill=args.distill, lr=args.lr, temperature=args.temperature,
                 alpha=args.alpha, progress=not args.no_progress)
    return 0


def _cmd_report(args) -> int:
    from pathlib import Path

    from .experiments.report import write_results_index

    if not Path(args.results_dir).is_dir():
        raise ValueError(f"--results-dir {args.results_dir} is not a directory")
    check_writable(args.results_dir, "--results-dir")
    path = write_results_index(args.results_dir)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="compactnn",
                                description="Compact deep networks from structured matrices.")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="keep freed memory in the process instead of returning it to the system "
                        "(glibc; faster CPU training of FFT layers, see compactnn.runtime)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list every registered layer, model, data set, task, ...")

    t = sub.add_parser("train", help="train one model, write runs/<id>/")
    t.add_argument("--config", default=None,
                   help="a run config (TOML), e.g. a run folder's config.toml")
    t.add_argument("--dry-run", action="store_true",
                   help="check the config (data set, task, model arguments) and print it "
                        "resolved, as TOML; train nothing")
    t.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its latest checkpoint (same config)")
    t.add_argument("--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY,
                   metavar="STEPS", help="write a checkpoint every STEPS optimisation steps "
                   "(and after every epoch; default %(default)s)")
    _add_flags(t, "model, data and task", _MODEL_FLAGS)
    t.add_argument("--layer-kw", action="append", default=[], metavar="KEY=VALUE",
                   help="= --set model.layer_kwargs.KEY=VALUE (e.g. rank=4)")
    _add_common(t)

    c = sub.add_parser("compare", help="the main job: DCNN vs dense MLP, side by side")
    c.add_argument("--quick", action="store_true", help="tiny budget (CI smoke test)")
    _add_common(c)

    f = sub.add_parser("families", help="every layer family on the same data and training")
    f.add_argument("--families", default=None, help="comma-separated subset (default: all)")
    f.add_argument("--width", type=int, default=None, help="hidden width (default: input size)")
    f.add_argument("--depth", type=int, default=None, help="structured hidden layers (1 = SHL)")
    f.add_argument("--quick", action="store_true", help="1 epoch on 2,000 images (CI)")
    f.add_argument("--out-dir", default=None,
                   help="default: results/families, or <runs-dir>/quick-results/families "
                        "with --quick")
    _add_common(f)

    r = sub.add_parser("reproduce", help="run one of the paper's experiments (or all)")
    r.add_argument("name", help=f"{', '.join(available('experiment'))} or all")
    r.add_argument("--quick", action="store_true", help="CI budget (seconds, not a result)")
    r.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="default: the experiment's own (at least 3 where a verdict rests on "
                        "them), 0 with --quick")
    r.add_argument("--report-only", action="store_true",
                   help="train nothing: write the page from the runs already finished, "
                        "listing the missing ones")
    r.add_argument("--results-dir", default=None,
                   help="default: results/, or <runs-dir>/quick-results with --quick")
    _add_common(r, train_flags=False)

    z = sub.add_parser("compress", help="swap a trained run's dense layers for structured "
                       "ones fitted to its weights; evaluate, optionally fine-tune")
    z.add_argument("run_dir", metavar="RUN_DIR", help="a trained run folder (config.toml, "
                   "checkpoint.pt)")
    z.add_argument("--family", required=True, help="a layer family with from_dense: "
                   + ", ".join(f for f in available("linear", capability="from_dense")
                               if f != "dense"))
    target = z.add_mutually_exclusive_group()
    target.add_argument("--ratio", type=float, default=None,
                        help="per-layer compression ratio to reach (dense params / new params)")
    target.add_argument("--budget", type=int, default=None, help="per-layer parameter budget")
    z.add_argument("--kw", action="append", default=[], metavar="KEY=VALUE",
                   help="a family argument (e.g. rank=4, iters=50; repeatable)")
    z.add_argument("--include", nargs="+", default=[], metavar="GLOB",
                   help="replace only layers whose dotted name matches (e.g. '*.mlp.*')")
    z.add_argument("--skip", nargs="+", default=[], metavar="GLOB",
                   help="keep layers whose dotted name matches")
    z.add_argument("--min-size", type=int, default=0, metavar="N",
                   help="keep layers with fewer than N weights (in × out)")
    z.add_argument("--conv1x1", action="store_true", help="also replace 1×1 convolutions")
    z.add_argument("--finetune-epochs", type=int, default=0, metavar="E",
                   help="fine-tune the compressed model for E epochs (the run's optimiser)")
    z.add_argument("--distill", action="store_true",
                   help="fine-tune by distillation from the original model (needs E > 0)")
    z.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate "
                   "(default: the run's)")
    z.add_argument("--temperature", type=float, default=4.0)
    z.add_argument("--alpha", type=float, default=0.9, help="weight of the soft-target loss")
    z.add_argument("--out", required=True, metavar="DIR",
                   help="folder for model.pt, report.json and the run's config")
    z.add_argument("--no-progress", action="store_true", help="no progress bars")

    rp = sub.add_parser("report", help="write results/README.md linking every table and plot")
    rp.add_argument("--results-dir", default="results")
    return p


#: torch.OutOfMemoryError exists from torch 2.5; the core supports 2.4 (CUDA's is its base)
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def _one_line(e: BaseException) -> str:
    """An exception as one line: an ``OSError`` as "reason: file", else its first line."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    text = str(e).strip()
    if isinstance(e, KeyError):  # str(KeyError('x')) is "'x'"
        text = f"missing key {text}"
    first = text.splitlines()[0] if text else type(e).__name__
    return first + (" …" if len(text.splitlines()) > 1 else "")


def _error(message: str) -> None:
    print(f"compactnn: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status: 0 done, 2 a problem with the input,
    the environment or an interruption (one line on stderr, never a traceback), 1 a bug in
    compactnn (one line; ``COMPACTNN_DEBUG=1`` shows the traceback)."""
    args = build_parser().parse_args(argv)
    if args.keep_freed_memory and not keep_freed_memory():
        print("compactnn: warning: --keep-freed-memory needs glibc's mallopt; ignored",
              file=sys.stderr)
    cmds = {"list": _cmd_list, "train": _cmd_train, "compare": _cmd_compare,
            "families": _cmd_families, "reproduce": _cmd_reproduce, "report": _cmd_report,
            "compress": _cmd_compress}
    try:
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and args.command not in (
                "train", "compare", "families", "reproduce"):
            raise ValueError(f"'{args.command}' trains nothing: run it as one process, not "
                             "under torchrun")
        status = cmds[args.command](args)
        destroy_distributed(wait=True)  # every rank got here: let all finish before closing
        return status
    except BrokenPipeError:  # `compactnn list | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as e:  # runs say where their last checkpoint is
        print(f"compactnn: {str(e) or 'interrupted'}", file=sys.stderr)
        return 2
    except ImportError as e:  # MissingDependency says what to install; a bare one may not
        missing = getattr(e, "name", None)
        hint = (f" ({DISTRIBUTIONS[missing]} is an optional dependency: pip install "
                "'compactnn[experiments]')" if missing in DISTRIBUTIONS
                and not isinstance(e, MissingDependency) else "")
        _error(_one_line(e) + hint)
        return 2
    except _OUT_OF_MEMORY:
        _error("out of memory on the training device: lower train.batch_size "
               "(--batch-size) or train.eval_batch_size, or use a smaller model")
        return 2
    except (ValueError, DataError, NonFiniteLossError, OSError) as e:
        _error(_one_line(e))
        return 2
    except Exception as e:  # a bug: one line, the traceback on request
        if os.environ.get("COMPACTNN_DEBUG"):
            raise
        print(f"compactnn: internal error: {type(e).__name__}: {_one_line(e)} (a bug in "
              "compactnn: rerun with COMPACTNN_DEBUG=1 for the traceback and report it)",
              file=sys.stderr)
        return 1
    finally:
        destroy_distributed()


if __name__ == "__main__":
    sys.exit(main())
