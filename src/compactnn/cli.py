"""Command line: ``compactnn list | train | compare``."""

from __future__ import annotations

import argparse
import sys

from .data import DATASETS, DataError
from .init import INIT_SCHEMES
from .layers.registry import available_layers, get_layer_class
from .models import MODELS
from .models.mlp import ACTIVATIONS
from .runtime import keep_freed_memory
from .train import NonFiniteLossError, TrainConfig
from .train.loop import OPTIMIZERS, SCHEDULES


def _cmd_list(args) -> int:
    print("layers (make_linear(name, in, out)):")
    for name in available_layers():
        cls = get_layer_class(name)
        print(f"  {name:<22} {cls.__name__:<22} params = {cls.param_formula}")
    print("models:   " + ", ".join(MODELS))
    print("datasets: " + ", ".join(DATASETS))
    print("inits:    " + ", ".join(INIT_SCHEMES))
    from .experiments.paper import EXPERIMENTS

    print("experiments (compactnn reproduce NAME): " + ", ".join(EXPERIMENTS))
    return 0


def _add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=10)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    g.add_argument("--grad-clip", type=float, default=None, help="max gradient norm")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu")
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=DATASETS, default="auto")
    d.add_argument("--data-dir", default=None, help="directory with the IDX files")
    d.add_argument("--runs-dir", default="runs")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")


def _train_config(args) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                       lr=args.lr, weight_decay=args.weight_decay, schedule=args.schedule,
                       grad_clip=args.grad_clip, seed=args.seed, device=args.device)


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(v.lower(), v)


def _layer_kwargs(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--layer-kw expects key=value, got {item!r}")
        out[key] = _parse_value(value)
    return out


def _cmd_train(args) -> int:
    from .experiments import train_run

    kwargs = dict(depth=args.depth, activation=args.activation,
                  negative_slope=args.negative_slope, nonlinearity_every=args.nonlinearity_every,
                  batchnorm=args.batchnorm, dropout=args.dropout)
    if args.width is not None:
        kwargs["width"] = args.width
    if args.model in ("mlp", "shl"):
        kwargs["layer"] = args.layer
    elif args.layer not in (None, {"dcnn": "dc", "dense-mlp": "dense"}[args.model]):
        raise ValueError(f"--layer {args.layer} conflicts with --model {args.model}; "
                         "use --model mlp --layer <family>")
    if args.classifier is not None:
        kwargs["classifier"] = args.classifier
    if args.init is not None:
        kwargs["init"] = args.init
    if args.layer_kw:
        kwargs["layer_kwargs"] = _layer_kwargs(args.layer_kw)
    if args.model == "shl":
        for key in ("depth", "nonlinearity_every"):
            kwargs.pop(key)
    res = train_run(model=args.model, model_kwargs=kwargs, train=_train_config(args),
                    dataset=args.dataset, data_dir=args.data_dir,
                    val_fraction=args.val_fraction, limit_train=args.limit_train,
                    runs_dir=args.runs_dir, progress=not args.no_progress,
                    teacher=args.teacher, temperature=args.temperature, alpha=args.alpha)
    h = res["history"]
    print(f"parameters {res['num_params']:,}  final test accuracy {h['final']['test_acc']:.4f}  "
          f"time/epoch {h['time_per_epoch_s']:.1f}s")
    print(f"run written to {res['run_dir']}")
    return 0


def _cmd_compare(args) -> int:
    from .experiments.compare import run_compare

    run_compare(dataset=args.dataset, data_dir=args.data_dir, quick=args.quick,
                train=_train_config(args),
                runs_dir=args.runs_dir, progress=not args.no_progress)
    return 0


def _cmd_families(args) -> int:
    from .experiments.families import run_families

    fams = None if args.families is None else [f.strip() for f in args.families.split(",")]
    for f in fams or []:
        get_layer_class(f)  # clear error for an unknown name
    run_families(families=fams, dataset=args.dataset, data_dir=args.data_dir, width=args.width,
                 depth=args.depth, train=_train_config(args), quick=args.quick,
                 out_dir=args.out_dir, runs_dir=args.runs_dir, progress=not args.no_progress)
    return 0


def _cmd_reproduce(args) -> int:
    from .experiments.paper import EXPERIMENTS
    from .experiments.runner import run_experiment

    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    for name in names:
        if name not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {name!r}; choose one of "
                             f"{', '.join(EXPERIMENTS)} or all")
    for name in names:
        print(f"== {name} ==")
        run_experiment(EXPERIMENTS[name], quick=args.quick, dataset=args.dataset,
                       data_dir=args.data_dir, seeds=tuple(args.seeds), overrides=args.set,
                       runs_root=args.runs_dir, results_root=args.results_dir,
                       progress=not args.no_progress)
    return 0


def _cmd_report(args) -> int:
    from .experiments.report import write_results_index

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

    sub.add_parser("list", help="list layer families, models, data sets, inits")

    t = sub.add_parser("train", help="train one model, write runs/<id>/")
    m = t.add_argument_group("model")
    m.add_argument("--model", choices=list(MODELS), default="dcnn")
    m.add_argument("--layer", choices=available_layers(), default=None,
                   help="layer family of --model mlp/shl (default dc)")
    m.add_argument("--width", type=int, default=None, help="hidden width (default: input size)")
    m.add_argument("--depth", type=int, default=2, help="number of hidden structured layers")
    m.add_argument("--activation", choices=ACTIVATIONS, default="leaky_relu")
    m.add_argument("--negative-slope", type=float, default=0.5)
    m.add_argument("--nonlinearity-every", type=int, default=1,
                   help="an activation after every k-th hidden layer, identity otherwise")
    m.add_argument("--batchnorm", action="store_true")
    m.add_argument("--dropout", type=float, default=0.0)
    m.add_argument("--classifier", choices=available_layers(), default=None,
                   help="family of the classifier layer (default: same as hidden)")
    m.add_argument("--init", default=None,
                   help=f"initialization scheme ({', '.join(INIT_SCHEMES)} for circulant "
                        "families; each family lists its own)")
    m.add_argument("--layer-kw", action="append", default=[], metavar="KEY=VALUE",
                   help="extra layer argument, e.g. rank=4, compression=0.015625, permute=true")
    k = t.add_argument_group("distillation")
    k.add_argument("--teacher", default=None, help="run directory of a trained teacher model")
    k.add_argument("--temperature", type=float, default=4.0)
    k.add_argument("--alpha", type=float, default=0.9, help="weight of the soft-target loss")
    t.add_argument("--val-fraction", type=float, default=0.0)
    t.add_argument("--limit-train", type=int, default=None,
                   help="use a random subset of this many training examples")
    _add_train_args(t)

    c = sub.add_parser("compare", help="the main job: DCNN vs dense MLP, side by side")
    c.add_argument("--quick", action="store_true", help="tiny budget (CI smoke test)")
    _add_train_args(c)
    c.set_defaults(epochs=12)

    f = sub.add_parser("families", help="every layer family on the same data and training")
    f.add_argument("--families", default=None, help="comma-separated subset (default: all)")
    f.add_argument("--width", type=int, default=None, help="hidden width (default: input size)")
    f.add_argument("--depth", type=int, default=1, help="structured hidden layers (1 = SHL)")
    f.add_argument("--quick", action="store_true", help="1 epoch on 2,000 images (CI)")
    f.add_argument("--out-dir", default="results/families")
    _add_train_args(f)
    f.set_defaults(epochs=5)

    r = sub.add_parser("reproduce", help="run one of the paper's experiments (or all)")
    r.add_argument("name", help="experiment name, or 'all'")
    r.add_argument("--quick", action="store_true", help="CI budget (seconds, not a result)")
    r.add_argument("--seeds", type=int, nargs="+", default=[0])
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field of every run, e.g. train.epochs=10")
    r.add_argument("--dataset", choices=DATASETS, default="auto")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--runs-dir", default="runs")
    r.add_argument("--results-dir", default="results")
    r.add_argument("--no-progress", action="store_true")

    rp = sub.add_parser("report", help="write results/README.md linking every table and plot")
    rp.add_argument("--results-dir", default="results")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.keep_freed_memory and not keep_freed_memory():
        print("compactnn: warning: --keep-freed-memory needs glibc's mallopt; ignored",
              file=sys.stderr)
    if args.command == "train" and args.model in ("mlp", "shl") and args.layer is None:
        args.layer = "dc"
    try:
        cmds = {"list": _cmd_list, "train": _cmd_train, "compare": _cmd_compare,
                "families": _cmd_families, "reproduce": _cmd_reproduce, "report": _cmd_report}
        return cmds[args.command](args)
    except (ValueError, DataError, NonFiniteLossError, FileNotFoundError) as e:
        print(f"compactnn: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
