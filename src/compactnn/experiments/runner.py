"""Run a registered experiment (its configs × seeds), resume finished runs, report.

Layout: ``<runs_root>/<experiment>/<config>/seed<k>/`` per run (a run folder, see
:mod:`compactnn.runs`); ``<results_root>/<experiment>/`` gets ``results.json``, ``README.md``
(ours, mean ± std over seeds, beside the paper's numbers; the paper's table in full) and plots.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._optional import progress_bar
from ..config import RunConfig, apply_overrides, assign
from ..data import DatasetSpec, resolve_dataset
from ..registry import register
from ..runs import count_params, load_data, resolve_config, run
from ..train import CHECKPOINT, PREVIOUS_CHECKPOINT, NonFiniteLossError, write_json
from ..train.distributed import DistInfo, broadcast_object

__all__ = ["PROTOCOLS", "Experiment", "aggregate", "budget_config", "format_summary",
           "markdown_table", "paper_table", "register_experiment", "run_experiment",
           "seed_summary", "verdict", "verdict_table"]


@dataclass
class Experiment:
    """A paper table or figure, registered under ``name`` (``kind="experiment"``).

    ``configs(quick, data)`` returns its runs for the resolved data set ``data`` (a
    :class:`~compactnn.data.DatasetSpec`: input size, classes); ``report(rows, out_dir)``
    writes plots and returns extra Markdown. A ``custom`` experiment (no training runs, e.g. a
    Monte-Carlo check) replaces both by ``custom(quick=, out_dir=, log=) -> markdown``.
    ``paper``: the paper's numbers as data — ``{"source", "dataset", "metric", "budget",
    "rows": [{"label", "key", "params", "value", "status", "source", ...}]}``; a row's ``key``
    is the name of our config it corresponds to (shown beside it), or ``None``.
    """

    name: str
    title: str
    description: str
    configs: Callable[[bool, DatasetSpec], list[RunConfig]] | None = None
    report: Callable[[list[dict], Path], str] | None = None
    custom: Callable[..., str] | None = None
    paper: dict[str, Any] | None = None
    budget_note: str = ""
    #: the seeds of a full run (``--seeds`` overrides); a verdict needs at least 3
    seeds: tuple[int, ...] = (0,)
    #: the data set when the command line names none (``--dataset`` overrides)
    dataset: str = "auto"


def register_experiment(exp: Experiment) -> Experiment:
    return register(exp.name, kind="experiment")(exp)


#: the optimisation of the experiments: ours (fast on 2 cores) and the DCNN paper's (§6.3:
#: Adam, batch 200, lr 5e-5 → 2.5e-5 → 5e-6 → 1e-6; its steps at 40K/60K/80K iterations lie
#: beyond 200 epochs of CIFAR-10 at batch 200 (50K steps), so ``schedule="paper"`` places them
#: at 40/60/80 % of training — our interpretation, not the paper's statement)
PROTOCOLS = {
    "ours": {"batch_size": 128, "lr": 1e-3, "optimizer": "adam", "schedule": "cosine"},
    "paper": {"batch_size": 200, "lr": 5e-5, "optimizer": "adam", "schedule": "paper"},
}


def budget_config(name: str, quick: bool, epochs: int, data: DatasetSpec, *, model: str,
                  limit_train: int | None = None, features: str | None = None,
                  task: dict | None = None, tags: dict | None = None,
                  protocol: str = "ours", **model_args) -> RunConfig:
    """A run of ``epochs`` epochs with the optimisation of ``protocol`` (:data:`PROTOCOLS`:
    ``"ours"`` Adam 1e-3, cosine, batch 128; ``"paper"`` the DCNN paper's Adam 5e-5, batch
    200, piecewise-constant); quick: 1 epoch on at most 2,000 training images."""
    limit = min(limit_train or 2000, 2000) if quick else limit_train
    return RunConfig.from_dict({
        "name": name, "tags": tags or {}, "model": {"name": model, **model_args},
        "data": {"name": data.name, "limit_train": limit, "features": features},
        "task": task or {},
        "train": {"epochs": 1 if quick else epochs, **PROTOCOLS[protocol]}})


def verdict(a: dict, b: dict, *, higher_is_better: bool = True, min_seeds: int = 3) -> str:
    """Compare two :func:`aggregate` rows: ``">"`` or ``"<"`` (``a`` better or worse) when both
    have at least ``min_seeds`` seeds without divergence and the means differ by more than the
    sum of their standard deviations; ``"not settled"`` otherwise (too few seeds, or a
    difference inside the spread). A diverged run counts as a seed with no score: a cell whose
    runs all diverged is worse than one that trained."""
    def ok(r):
        return r["mean"] is not None and r["n_seeds"] - r["diverged"] >= min_seeds
    if a["mean"] is None and b["mean"] is not None and ok(b):
        return "<" if a["n_seeds"] >= min_seeds else "not settled"
    if b["mean"] is None and a["mean"] is not None and ok(a):
        return ">" if b["n_seeds"] >= min_seeds else "not settled"
    if not (ok(a) and ok(b)):
        return "not settled"
    diff = a["mean"] - b["mean"]
    if abs(diff) <= a["std"] + b["std"]:
        return "not settled"
    return ">" if (diff > 0) == higher_is_better else "<"


def seed_summary(values: list[float]) -> dict:
    """An :func:`aggregate`-like row (``mean``, ``std``, ``n_seeds``, ``diverged``) of one
    number per seed, NaN meaning diverged — what :func:`verdict` compares."""
    ok = [v for v in values if math.isfinite(v)]
    return {"mean": statistics.fmean(ok) if ok else None,
            "std": statistics.stdev(ok) if len(ok) > 1 else 0.0,
            "n_seeds": len(values), "diverged": len(values) - len(ok)}


def format_summary(c: dict, mean: str = ".4f", std: str = ".4f") -> str:
    """``mean ± std`` of a :func:`seed_summary`/:func:`aggregate` row (no spread for a single
    seed; diverged seeds said)."""
    if c["mean"] is None:
        return f"diverged ({c['diverged']}/{c['n_seeds']})"
    spread = f" ± {c['std']:{std}}" if c["n_seeds"] - c["diverged"] > 1 else ""
    return f"{c['mean']:{mean}}{spread}" + (f" ({c['diverged']} diverged)"
                                             if c["diverged"] else "")


def verdict_table(agg: dict[str, dict], pairs: list[tuple[str, str]]) -> str:
    """A Markdown table comparing each ``(a, b)`` pair of :func:`aggregate` rows (keyed by
    name) with :func:`verdict`: ``a`` better / worse than ``b``, or not settled; pairs with a
    missing run are left out."""
    lines = ["`better` / `worse` only when the means over ≥ 3 seeds differ by more than the sum "
             "of their standard deviations, else `not settled`.", "",
             "| model | parameters | accuracy | vs | parameters | accuracy | verdict |",
             "|---|---:|---:|---|---:|---:|---|"]
    for a, b in pairs:
        if a in agg and b in agg:
            x, y = agg[a], agg[b]
            word = {">": "better", "<": "worse"}.get(verdict(x, y), "not settled")
            lines.append(f"| {a} | {x['num_params']:,} | {format_summary(x)} | {b} | "
                         f"{y['num_params']:,} | {format_summary(y)} | {word} |")
    return "\n".join(lines)


def _dirname(config_name: str) -> str:
    """A config name as one directory level (``hashnet-1/64`` → ``hashnet-1_64``)."""
    return config_name.replace("/", "_").replace("\\", "_")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _finished(run_dir: Path, digest: str) -> dict | None:
    """The outcome of a finished run of exactly this config (``requested_digest``): its
    metrics, or ``{"diverged": message}``; ``None`` when there is none to reuse."""
    rec = _read_json(run_dir / "run.json") or _read_json(run_dir / "diverged.json") or {}
    if rec.get("requested_digest") != digest:
        return None
    if (run_dir / "diverged.json").is_file():
        return {"diverged": (_read_json(run_dir / "diverged.json") or {}).get("error", "")}
    m = _read_json(run_dir / "metrics.json")
    return m if m and "final" in m else None


def _interrupted(run_dir: Path, digest: str) -> bool:
    """An unfinished run of exactly this config with a checkpoint to continue from."""
    rec = _read_json(run_dir / "run.json") or {}
    return rec.get("requested_digest") == digest and any(
        (run_dir / name).is_file() for name in (CHECKPOINT, PREVIOUS_CHECKPOINT))


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean and std of the final test metric (the task's primary one) per config name, over
    seeds."""
    out: dict[str, dict] = {}
    for r in rows:
        a = out.setdefault(r["name"], {"name": r["name"], "num_params": r["num_params"],
                                       "metric": r.get("metric", "acc"), "accs": [],
                                       "tags": r.get("tags", {}),
                                       "model": r.get("model", {}), "diverged": 0})
        if r.get("diverged"):
            a["diverged"] += 1
        else:
            a["accs"].append(r["test"])
    for a in out.values():
        accs = a.pop("accs")
        a["n_seeds"] = len(accs) + a["diverged"]
        a["mean"] = statistics.fmean(accs) if accs else None
        a["std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return list(out.values())


def _paper_cell(row: dict | None) -> str:
    if row is None:
        return "—"
    if row.get("status") == "diverged":
        return "diverged"
    value = row.get("value_as_accuracy", row.get("value"))
    return "—" if value is None else f"{value:.3f}"


def markdown_table(agg: list[dict], paper: dict | None = None) -> str:
    """Ours (mean ± std over seeds) beside the paper's number for the same model, when the
    paper reports one (matched by the paper row's ``key``)."""
    by_key = {r["key"]: r for r in (paper or {}).get("rows", []) if r.get("key")}
    metric = {"acc": "accuracy"}.get(agg[0]["metric"], agg[0]["metric"]) if agg else "accuracy"
    lines = [f"| run | parameters | ours: test {metric} (mean ± std) | seeds | "
             "paper (its data set) | paper's parameters |", "|---|---:|---:|---:|---:|---:|"]
    for a in agg:
        if a["mean"] is None:
            ours = "diverged"
        elif a["n_seeds"] - a["diverged"] > 1:
            ours = f"{a['mean']:.4f} ± {a['std']:.4f}"
        else:
            ours = f"{a['mean']:.4f}"
        if a["diverged"] and a["mean"] is not None:
            ours += f" ({a['diverged']} diverged)"
        p = by_key.get(a["name"])
        params = "—" if p is None or p.get("params") is None else f"{p['params']:,}"
        lines.append(f"| {a['name']} | {a['num_params']:,} | {ours} | {a['n_seeds']} | "
                     f"{_paper_cell(p)} | {params} |")
    return "\n".join(lines)


def paper_table(paper: dict) -> str:
    """The paper's numbers in full, with where each comes from and what the text claims."""
    head = [f"The paper's numbers ({paper.get('source', '')}; {paper.get('dataset', '')}; "
            f"{paper.get('metric', '')}). The paper's budget: {paper.get('budget', 'not stated')}.",
            ""]
    lines = ["| paper's model | parameters | value | status | source | our run |",
             "|---|---:|---|---|---|---|"]
    for r in paper.get("rows", []):
        value = r.get("value")
        cell = "—" if value is None else f"{value:g}"
        if r.get("value_as_accuracy") is not None:
            cell += f" (accuracy {r['value_as_accuracy']:.4f})"
        if r.get("claim"):
            cell = r["claim"] if value is None else f"{cell}: {r['claim']}"
        params = (f"{r['params']:,}" if r.get("params") is not None
                  else r.get("params_text", "—"))
        key = r.get("key") or "—"
        if r.get("key") and r.get("key_inferred"):
            key += " (inferred from the parameter count)"
        lines.append(f"| {r.get('label', '')} | {params} | {cell.replace('|', '/')} | "
                     f"{r.get('status', '')} | {r.get('source', '')} | {key} |")
    claims = paper.get("text_claims") or []
    tail = ["", "What the paper's text claims:", ""] + [
        f"- \"{c['claim']}\" ({c['source']})" if isinstance(c, dict) else f"- {c}"
        for c in claims] if claims else []
    return "\n".join(head + lines + tail)


def _experiment_configs(exp: Experiment, quick: bool, assignments: list[tuple[str, Any]],
                        overrides: list[str]) -> list[RunConfig]:
    """``exp``'s configs for the data set the assignments/overrides choose, each with them
    applied (typed assignments first, then ``--set`` overrides)."""
    def apply(d: dict) -> RunConfig:
        for path, value in assignments:
            assign(d, path, value)
        return RunConfig.from_dict(apply_overrides(d, overrides))

    base = RunConfig().to_dict()
    base["data"]["name"] = exp.dataset
    data = apply(base).data
    spec, _ = resolve_dataset(data.name, data.data_dir)
    configs = [apply(c.to_dict()) for c in exp.configs(quick, spec)]
    names = [c.name for c in configs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{exp.name}: several runs would share the name(s) {', '.join(dup)} "
                         "(an override of `name`?)")
    return configs


def run_experiment(
    exp: Experiment,
    *,
    quick: bool = False,
    seeds: tuple[int, ...] | None = None,
    overrides: list[str] | None = None,
    assignments: list[tuple[str, Any]] | None = None,
    runs_root: str | Path = "runs",
    results_root: str | Path = "results",
    progress: bool = True,
    log=print,
    dist: DistInfo | None = None,
    report_only: bool = False,
) -> dict:
    """Run every config × seed of ``exp`` and write its report (``seeds``: default the
    experiment's own, one seed when ``quick``). ``assignments`` (typed
    ``(path, value)`` pairs) then ``overrides`` (``--set`` syntax) apply to every config;
    ``data.*`` ones also choose the data set the configs are built for. A finished run is
    reused only when its recorded config equals the requested one; otherwise it is rerun.

    ``dist``: under torchrun every rank calls this with the same arguments; each run is
    data-parallel (:func:`~compactnn.runs.run`), rank 0 decides which runs to reuse, resume or
    redo (and tells the others), logs and writes; an experiment that trains nothing runs on
    rank 0 only.

    ``report_only``: train nothing; write the page from the runs already finished, saying on
    it which runs are missing (a long experiment's results so far)."""
    info = dist if dist is not None else DistInfo()
    if not info.is_main:
        log, progress = (lambda *_: None), False
    overrides, assignments = list(overrides or []), list(assignments or [])
    out_dir = Path(results_root) / exp.name
    t0 = time.perf_counter()
    if exp.custom is not None:
        if overrides or assignments or seeds not in (None, (0,)):
            raise ValueError(f"{exp.name} trains no models: --set, --dataset, --data-dir and "
                             "--seeds do not apply to it")
        if report_only:
            raise ValueError(f"{exp.name} trains no models: its page is computed each time "
                             "(--report-only does not apply)")
        if info.distributed:  # rank 0 alone would leave the others waiting in a collective
            raise ValueError(f"{exp.name} trains no models: run it as one process, not under "
                             "torchrun")
        out_dir.mkdir(parents=True, exist_ok=True)
        md = exp.custom(quick=quick, out_dir=out_dir, log=log)
        if exp.paper:
            md += "\n\n" + paper_table(exp.paper)
        _write_readme(exp, out_dir, md, quick, time.perf_counter() - t0)
        return {"experiment": exp.name, "markdown": md}
    configs = _experiment_configs(exp, quick, assignments, overrides)
    seeds = tuple(seeds) if seeds is not None else ((0,) if quick else exp.seeds)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    exp_runs = Path(runs_root) / exp.name
    data_cache: dict = {}

    def data_for(cfg: RunConfig, key):
        if key not in data_cache:  # one data set in memory at a time
            data_cache.clear()
            data_cache[key] = load_data(cfg, cache_dir=Path(runs_root) / "cache",
                                        progress=progress)
        return data_cache[key]

    rows, missing = [], []
    jobs = [(c, s) for c in configs for s in seeds]
    bar = progress_bar(jobs, desc=exp.name, disable=not progress)
    for cfg, seed in bar:
        cfg = resolve_config(cfg.replace(seed=seed))
        run_dir = exp_runs / _dirname(cfg.name) / f"seed{seed}"
        bar.set_postfix_str(cfg.name)
        key = (json.dumps(cfg.to_dict()["data"], sort_keys=True), seed)
        done, resume = None, False
        if info.is_main:  # one decision, from rank 0's view of the run folder
            done = _finished(run_dir, cfg.digest())
            resume = done is None and _interrupted(run_dir, cfg.digest())
        done, resume = broadcast_object((done, resume))
        row = {"name": cfg.name, "seed": seed, "tags": cfg.to_dict()["tags"],
               "model": cfg.model.to_dict(), "dataset": cfg.data.name,
               "epochs": cfg.train.epochs}
        if done is None and report_only:
            missing.append(f"{cfg.name} seed {seed}")
            continue
        if done is None:
            if resume:
                log(f"{cfg.name} seed {seed}: resuming the interrupted run")
            elif info.is_main and run_dir.exists():  # nothing there to reuse: replace it
                rec = _read_json(run_dir / "run.json") or {}
                why = ("settings differ from the recorded run"
                       if rec.get("requested_digest") not in (None, cfg.digest())
                       else "an unfinished run with no checkpoint")
                log(f"{cfg.name} seed {seed}: {why}; rerunning")
                shutil.rmtree(run_dir)
            try:
                done = run(cfg, run_dir=run_dir, data=data_for(cfg, key), teacher_root=exp_runs,
                           progress=False, log=None, resume=resume, dist=info)["history"]
            except NonFiniteLossError as e:  # a diverged run is a result (on every rank)
                if info.is_main:
                    write_json(run_dir / "diverged.json",
                               {"error": str(e), "requested_digest": cfg.digest()})
                done = {"diverged": str(e)}
                log(f"{cfg.name} seed {seed}: diverged ({e})")
        if "diverged" in done:
            rows.append({**row, "diverged": True, "test": None,
                         "num_params": count_params(cfg, data_for(cfg, key))})
            continue
        metric = done.get("primary", "acc")
        rows.append({**row, "num_params": done["num_params"], "metric": metric,
                     "test": done["final"][f"test_{metric}"], "diverged": False,
                     "history": [e[f"test_{metric}"] for e in done["epochs"]],
                     "train_loss": [e["train_loss"] for e in done["epochs"]],
                     "train_time_s": sum(e["time_s"] for e in done["epochs"])})
    if not rows:
        raise ValueError(f"{exp.name}: no finished runs under {exp_runs} to report")
    agg = aggregate(rows)
    md = markdown_table(agg, exp.paper)
    if missing:
        md = (f"**Partial report: {len(rows)} of {len(jobs)} runs finished.** Not yet run: "
              f"{', '.join(missing)}.\n\n" + md)
    if not info.is_main:  # the report (plots, pages) is rank 0's
        return {"experiment": exp.name, "rows": rows, "aggregate": agg, "markdown": md}
    if exp.report is not None:
        md += "\n\n" + exp.report(rows, out_dir)
    if exp.paper:
        md += "\n\n" + paper_table(exp.paper)
    write_json(out_dir / "results.json", {
        "experiment": exp.name, "quick": quick, "seeds": list(seeds),
        "assignments": [[p, v] for p, v in assignments], "overrides": overrides,
        "rows": rows, "aggregate": agg, "paper": exp.paper, "missing": missing})
    trained = sum(r.get("train_time_s", 0.0) for r in rows)
    _write_readme(exp, out_dir, md, quick, time.perf_counter() - t0, trained)
    log(md)
    return {"experiment": exp.name, "rows": rows, "aggregate": agg, "markdown": md}


def _write_readme(exp: Experiment, out_dir: Path, md: str, quick: bool, seconds: float,
                  trained: float | None = None) -> None:
    """The experiment's page; ``trained``: the training time summed over its runs (they may
    have run in earlier calls: ``seconds`` is this call's)."""
    head = [f"# {exp.title}", "", exp.description, ""]
    if exp.budget_note:
        head += [f"Budget: {exp.budget_note}", ""]
    when = (f"training time {trained / 60:.1f} min summed over the runs (epochs only, on this "
            f"project's machines); this report {seconds / 60:.1f} min" if trained is not None
            else f"wall time {seconds / 60:.1f} min on this machine")
    head += [f"Mode: {'quick (CI smoke budget — not a result)' if quick else 'full'}; {when}.",
             ""]
    (out_dir / "README.md").write_text("\n".join(head) + "\n" + md + "\n")
