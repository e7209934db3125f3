"""Run a paper experiment (a list of configs × seeds), resume finished runs, report.

Layout: ``<runs_root>/<experiment>/<config>/seed<k>/`` per run (``config.json`` with git hash
and seed, ``metrics.json``, ``checkpoint.pt``); ``<results_root>/<experiment>/`` gets
``results.json``, ``table.md`` (ours mean ± std next to the paper's number) and plots.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from ..data import load_dataset
from ..data.features import apply_features
from ..train import write_json
from .config import RunConfig
from .runs import train_run

__all__ = ["Experiment", "aggregate", "markdown_table", "run_experiment"]


@dataclass
class Experiment:
    """A paper table or figure.

    ``configs(quick, dataset)`` returns the runs; ``paper`` maps a config name to the paper's
    reported number; ``report(rows, out_dir)`` writes plots and returns extra Markdown.
    A ``custom`` experiment (no training, e.g. a Monte-Carlo check) replaces all of that by
    ``custom(quick, out_dir, log) -> markdown``.
    """

    name: str
    title: str
    description: str
    configs: Callable[[bool, str], list[RunConfig]] | None = None
    paper: dict[str, float] = field(default_factory=dict)
    paper_note: str = ""
    report: Callable[[list[dict], Path], str] | None = None
    custom: Callable | None = None
    budget_note: str = ""


def _dirname(config_name: str) -> str:
    """A config name as one directory level (``hashnet-1/64`` → ``hashnet-1_64``)."""
    return config_name.replace("/", "_").replace("\\", "_")


def _finished(run_dir: Path) -> dict | None:
    p = run_dir / "metrics.json"
    if not p.is_file():
        return None
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError:
        return None
    return m if "final" in m else None


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean and std of the final test accuracy per config name (over seeds)."""
    out: dict[str, dict] = {}
    for r in rows:
        a = out.setdefault(r["config"], {"config": r["config"], "num_params": r["num_params"],
                                         "accs": [], "meta": r.get("meta", {}),
                                         "diverged": 0})
        if r.get("diverged"):
            a["diverged"] += 1
        else:
            a["accs"].append(r["test_acc"])
    for a in out.values():
        accs = a.pop("accs")
        a["n_seeds"] = len(accs) + a["diverged"]
        a["mean"] = statistics.fmean(accs) if accs else None
        a["std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return list(out.values())


def markdown_table(agg: list[dict], paper: dict[str, float]) -> str:
    lines = ["| run | parameters | ours: test accuracy (mean ± std) | seeds | paper |",
             "|---|---:|---:|---:|---:|"]
    for a in agg:
        if a["mean"] is None:
            ours = "diverged"
        elif a["n_seeds"] - a["diverged"] > 1:
            ours = f"{a['mean']:.4f} ± {a['std']:.4f}"
        else:
            ours = f"{a['mean']:.4f}"
        if a["diverged"] and a["mean"] is not None:
            ours += f" ({a['diverged']} diverged)"
        p = paper.get(a["config"])
        lines.append(f"| {a['config']} | {a['num_params']:,} | {ours} | {a['n_seeds']} | "
                     f"{'—' if p is None else f'{p:.3f}'} |")
    return "\n".join(lines)


def run_experiment(
    exp: Experiment,
    *,
    quick: bool = False,
    dataset: str = "auto",
    data_dir: str | None = None,
    seeds: tuple[int, ...] = (0,),
    overrides: list[str] | None = None,
    runs_root: str | Path = "runs",
    results_root: str | Path = "results",
    progress: bool = True,
    log=print,
) -> dict:
    """Run (or resume) every config × seed of ``exp`` and write its report."""
    out_dir = Path(results_root) / exp.name
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if exp.custom is not None:
        md = exp.custom(quick=quick, out_dir=out_dir, log=log)
        _write_readme(exp, out_dir, md, quick, time.perf_counter() - t0)
        return {"experiment": exp.name, "markdown": md}
    configs = exp.configs(quick, dataset)
    if overrides:
        configs = [c.with_overrides(overrides) for c in configs]
    data_cache: dict = {}
    rows = []
    jobs = [(c, s) for c in configs for s in seeds]
    bar = tqdm(jobs, desc=exp.name, disable=not progress)
    for cfg, seed in bar:
        cfg = replace(cfg, train=replace(cfg.train, seed=seed),
                      data_dir=data_dir if data_dir is not None else cfg.data_dir)
        run_dir = Path(runs_root) / exp.name / _dirname(cfg.name) / f"seed{seed}"
        bar.set_postfix_str(cfg.name)
        done = _finished(run_dir)
        if done is None:
            key = (cfg.dataset, cfg.data_dir, cfg.val_fraction, cfg.limit_train, seed,
                   cfg.features)
            if key not in data_cache:
                data_cache.clear()
                data = load_dataset(cfg.dataset, data_dir=cfg.data_dir,
                                    val_fraction=cfg.val_fraction, seed=seed,
                                    limit_train=cfg.limit_train)
                if cfg.features:
                    data = apply_features(data, cfg.features, Path(runs_root) / "cache",
                                          progress=progress)
                data_cache[key] = data
            teacher = None
            if cfg.teacher is not None:
                if not cfg.teacher.startswith("run:"):
                    raise ValueError(f"{cfg.name}: teacher must be 'run:<config>'")
                teacher = Path(runs_root) / exp.name / _dirname(cfg.teacher[4:]) / f"seed{seed}"
            try:
                res = train_run(model=cfg.model, model_kwargs=cfg.model_kwargs, train=cfg.train,
                                data=data_cache[key], run_dir_exact=run_dir, progress=False,
                                log=None, name=cfg.name, val_fraction=cfg.val_fraction,
                                limit_train=cfg.limit_train, teacher=teacher,
                                temperature=cfg.temperature, alpha=cfg.alpha)
                done = res["history"]
            except RuntimeError as e:  # NonFiniteLossError: a diverged run is a result
                write_json(run_dir / "diverged.json", {"error": str(e)})
                rows.append({"config": cfg.name, "seed": seed, "diverged": True,
                             "num_params": _count(cfg, data_cache[key]), "test_acc": None,
                             "meta": cfg.model_kwargs})
                log(f"{cfg.name} seed {seed}: diverged ({e})")
                continue
        rows.append({"config": cfg.name, "seed": seed, "num_params": done["num_params"],
                     "test_acc": done["final"]["test_acc"], "diverged": False,
                     "history": [e["test_acc"] for e in done["epochs"]],
                     "train_loss": [e["train_loss"] for e in done["epochs"]],
                     "meta": cfg.model_kwargs, "dataset": cfg.dataset,
                     "epochs": cfg.train.epochs})
    agg = aggregate(rows)
    md = markdown_table(agg, exp.paper)
    if exp.report is not None:
        md += "\n\n" + exp.report(rows, out_dir)
    write_json(out_dir / "results.json", {"experiment": exp.name, "quick": quick,
                                          "seeds": list(seeds), "rows": rows, "aggregate": agg,
                                          "paper": exp.paper})
    _write_readme(exp, out_dir, md, quick, time.perf_counter() - t0)
    log(md)
    return {"experiment": exp.name, "rows": rows, "aggregate": agg, "markdown": md}


def _count(cfg: RunConfig, data) -> int:
    from .runs import build_model

    return build_model(cfg.model, data.in_features, data.num_classes,
                       **cfg.model_kwargs).num_params()


def _write_readme(exp: Experiment, out_dir: Path, md: str, quick: bool, seconds: float) -> None:
    head = [f"# {exp.title}", "", exp.description, ""]
    if exp.budget_note:
        head += [f"Budget: {exp.budget_note}", ""]
    if exp.paper_note:
        head += [f"Paper: {exp.paper_note}", ""]
    head += [f"Mode: {'quick (CI smoke budget — not a result)' if quick else 'full'}; "
             f"wall time {seconds / 60:.1f} min on this machine.", ""]
    (out_dir / "README.md").write_text("\n".join(head) + "\n" + md + "\n")
