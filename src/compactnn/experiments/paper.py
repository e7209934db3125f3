"""The DCNN paper's experiments (Araujo et al., ECAI 2020) as data, on the data we have.

Flattened CIFAR-10 (n = 3072) is replaced by flattened Fashion-MNIST (n = 784) unless the
user has CIFAR-10; the paper's numbers are shown for orientation, not as equal-footing
targets. Every experiment has a ``quick`` budget for CI.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..init import variance_trace
from ..models import StructuredMLP
from ..train import TrainConfig, write_json
from .config import RunConfig
from .runner import Experiment

__all__ = ["EXPERIMENTS"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _train(quick: bool, epochs: int, **kw) -> TrainConfig:
    return TrainConfig(epochs=1 if quick else epochs, batch_size=128, lr=1e-3,
                       schedule="cosine", **kw)


def _limit(quick: bool) -> int | None:
    return 2000 if quick else None


# --- 1. init-variance (Proposition 4) -------------------------------------------------------
def _init_variance(*, quick: bool, out_dir: Path, log) -> str:
    n, depth, trials = (64, 16, 30) if quick else (256, 64, 300)
    schemes = ("paper", "lecun", "normal")
    curves = {}
    for scheme in schemes:
        z2, h2, target = variance_trace(n, depth, trials, scheme)
        ratio = z2 / target
        curves[scheme] = {"mean": ratio.mean(0).tolist(), "median": ratio.median(0).values.tolist(),
                          "layer_gain": (z2[:, 1:] / (2 * h2[:, :-1])).mean(0).tolist()}
    write_json(out_dir / "results.json", {"n": n, "depth": depth, "trials": trials,
                                          "curves": curves})
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for scheme, c in curves.items():
        d = range(1, depth + 1)
        line, = ax.plot(d, c["mean"], label=f"{scheme}: mean")
        ax.plot(d, c["median"], "--", color=line.get_color(), label=f"{scheme}: median")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("depth (DC layers, ReLU between)")
    ax.set_ylabel("E||z||² / (2·||x||²)")
    ax.set_title(f"Proposition 4, n={n}, {trials} networks per scheme")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "init_variance.png", dpi=120)
    plt.close(fig)
    show = [d for d in (1, 2, 4, 8, 16, 32, 64) if d <= depth]
    lines = ["| init | " + " | ".join(f"depth {d}" for d in show) + " | mean per-layer gain |",
             "|---|" + "---:|" * (len(show) + 1)]
    for scheme, c in curves.items():
        cells = " | ".join(f"{c['mean'][d - 1]:.3g} (median {c['median'][d - 1]:.2g})"
                           for d in show)
        gain = sum(c["layer_gain"]) / len(c["layer_gain"])
        lines.append(f"| {scheme} | {cells} | {gain:.3f} |")
    return ("Ratio of the Monte-Carlo E||z||² to the proposition's (2/n)·||x||²·n (1 = exact).\n\n"
            + "\n".join(lines) + "\n\n![variance vs depth](init_variance.png)\n\n"
            "The per-layer gain E[||z_{L+1}||² | h_L] / (2||h_L||²) is the exact step of the "
            "proof (1 for the paper's init, n/2 for N(0,1), 1/2 for N(0,1/n)). With the paper's "
            "init the *mean* stays at 1 but the *median* drifts down with depth: ReLU outputs "
            "put ~1/π of their energy in the zero frequency, which one real Gaussian DFT bin of "
            "c scales, so ||z||² is heavy-tailed — the expectation is right, typical networks "
            "are smaller.")


# --- 2. synthetic-regression (Fig. 3a) -------------------------------------------------------
def _synthetic_regression(*, quick: bool, out_dir: Path, log) -> str:
    from ..layers import ACDC, DiagonalCirculant

    dim, samples, iters, batch, lr = 32, 10_000, (300 if quick else 5000), 100, 0.01
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(samples, dim, generator=gen) * 2 - 1
    w = torch.rand(dim, dim, generator=gen) * 2 - 1
    y = x @ w + 0.1 * torch.randn(samples, dim, generator=gen)  # noise variance 0.01
    depths = (1, 4, 16) if not quick else (1, 4)
    curves = {}
    for family in ("dc", "acdc"):
        for depth in depths:
            torch.manual_seed(0)
            layers = [DiagonalCirculant(dim, dim) if family == "dc" else
                      ACDC(dim, dim, permute=True) for _ in range(depth)]
            model = torch.nn.Sequential(*layers)
            opt = torch.optim.SGD(model.parameters(), lr=lr)
            losses = []
            for _ in range(iters):
                idx = torch.randint(0, samples, (batch,), generator=gen)
                loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if not math.isfinite(loss.item()):
                    losses.append(float("nan"))
                    break
                losses.append(loss.item())
            curves[f"{family}-{depth}"] = losses
            log(f"synthetic-regression {family} depth {depth}: final loss {losses[-1]:.4f}")
    write_json(out_dir / "results.json", {"dim": dim, "samples": samples, "iters": iters,
                                          "curves": curves})
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, losses in curves.items():
        k = 25  # moving average for readability
        sm = [sum(losses[max(0, i - k):i + 1]) / len(losses[max(0, i - k):i + 1])
              for i in range(len(losses))]
        ax.plot(sm, label=name, ls="-" if name.startswith("dc") else "--")
    ax.set_yscale("log")
    ax.set_xlabel("iteration (SGD, lr 0.01, batch 100)")
    ax.set_ylabel("training MSE")
    ax.set_title("Linear stacks on Y = XW + ε (32-dim)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "synthetic_regression.png", dpi=120)
    plt.close(fig)
    lines = ["| model | loss at 10% | loss at 50% | final loss |", "|---|---:|---:|---:|"]
    for name, losses in curves.items():
        at = [losses[min(len(losses) - 1, int(f * iters))] for f in (0.1, 0.5)]
        lines.append(f"| {name} | {at[0]:.4f} | {at[1]:.4f} | {losses[-1]:.4f} |")
    return ("The authors' code setting: 32-dim X, W ~ U[-1, 1], 10,000 samples, noise variance "
            "0.01, SGD lr 0.01, batch 100, linear stacks (no activation) of DC layers "
            "(paper init) vs ACDC layers (near-identity init, fixed permutations).\n\n"
            + "\n".join(lines) + "\n\n![training loss](synthetic_regression.png)")


# --- 3. nonlinearity (Fig. 2a/2b) ------------------------------------------------------------
def _nonlinearity_configs(quick: bool, dataset: str) -> list[RunConfig]:
    depths = (2, 10) if quick else (2, 5, 10, 20, 30)
    out = []

    def add(name: str, **kw) -> None:
        out.append(RunConfig(name=name, model="dcnn", model_kwargs=kw, dataset=dataset,
                             limit_train=_limit(quick), train=_train(quick, 3)))

    for depth in depths:
        for every in (1, 2, 3):
            add(f"relu-every{every}-depth{depth}", depth=depth, activation="relu",
                nonlinearity_every=every)
        for slope in (0.2, 0.3, 0.5):
            add(f"leaky{slope}-depth{depth}", depth=depth, activation="leaky_relu",
                negative_slope=slope)
    return out


def _nonlinearity_report(rows: list[dict], out_dir: Path) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    groups: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        key, depth = r["config"].rsplit("-depth", 1)
        acc = float("nan") if r["diverged"] else r["test_acc"]
        groups.setdefault(key, {}).setdefault(int(depth), []).append(acc)
    for key, pts in sorted(groups.items()):
        ax = axes[0] if key.startswith("relu") else axes[1]
        ds = sorted(pts)
        ax.plot(ds, [sum(pts[d]) / len(pts[d]) for d in ds], marker="o", label=key)
    for ax, title in zip(axes, ("ReLU every k DC layers (identity between)",
                                "leaky-ReLU slope, after every DC layer"), strict=True):
        ax.set_xlabel("number of hidden DC layers")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test accuracy")
    fig.tight_layout()
    fig.savefig(out_dir / "nonlinearity.png", dpi=120)
    plt.close(fig)
    return "![accuracy vs depth](nonlinearity.png)"


# --- 4. size-vs-accuracy (Fig. 4a, Table 1) -------------------------------------------------
def _narrow_width(params: int, n_in: int, classes: int = 10) -> int:
    """Width of a one-hidden-layer dense MLP with about ``params`` parameters."""
    return max(1, round((params - classes) / (n_in + 1 + classes)))


def _size_configs(quick: bool, dataset: str, n_in: int = 784) -> list[RunConfig]:
    t = _train(quick, 5)
    lim = _limit(quick)
    out = []

    def add(name, model, **kw):
        out.append(RunConfig(name=name, model=model, model_kwargs=kw, dataset=dataset,
                             limit_train=lim, train=t))

    depths = (1, 4) if quick else (1, 2, 4, 8)
    for k in depths:
        add(f"dcnn-{k}", "dcnn", depth=k, activation="leaky_relu", negative_slope=0.5)
        add(f"dtnn-{k}", "mlp", layer="dtnn", depth=k, activation="leaky_relu",
            negative_slope=0.5)
        add(f"toeplitz-{k}", "mlp", layer="toeplitz", depth=k, activation="relu")
        add(f"acdc-{k}", "mlp", layer="acdc", depth=k, activation="relu",
            layer_kwargs={"permute": True})
        add(f"circproj-{k}", "mlp", layer="circulant_projection", depth=k, activation="relu")
        dc_params = StructuredMLP.predicted_num_params(n_in, 10, layer="dc", depth=k)
        add(f"narrow-dense-{k}", "dense-mlp", depth=1, width=_narrow_width(dc_params, n_in))
    for r in ((2, 16) if quick else (2, 8, 32)):
        add(f"lowrank-r{r}", "mlp", layer="lowrank", depth=2, activation="relu",
            layer_kwargs={"rank": r})
    for r in ((1,) if quick else (1, 2, 4)):
        add(f"toeplitz-like-shl-r{r}", "shl", layer="toeplitz_like", layer_kwargs={"rank": r})
    add("dense", "dense-mlp", depth=1, width=n_in)
    return out


def _pareto(points: list[tuple[int, float, str]]) -> list[tuple[int, float, str]]:
    front, best = [], -1.0
    for p in sorted(points):
        if p[1] > best:
            front.append(p)
            best = p[1]
    return front


def _size_report(rows: list[dict], out_dir: Path) -> str:
    from .runner import aggregate

    agg = [a for a in aggregate(rows) if a["mean"] is not None]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    fams: dict[str, list] = {}
    for a in agg:
        fam = a["config"].rsplit("-", 1)[0] if a["config"] != "dense" else "dense"
        fams.setdefault(fam, []).append((a["num_params"], a["mean"], a["config"]))
    for fam, pts in sorted(fams.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=fam)
    front = _pareto([p for pts in fams.values() for p in pts])
    ax.plot([p[0] for p in front], [p[1] for p in front], "k:", lw=2, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_dir / "size_vs_accuracy.png", dpi=120)
    plt.close(fig)
    return ("Pareto front (fewest parameters for a given accuracy): "
            + ", ".join(f"{p[2]} ({p[0]:,}: {p[1]:.4f})" for p in front)
            + "\n\n![accuracy vs parameters](size_vs_accuracy.png)")


def _scatter_report(filename: str, title: str):
    """Report: test accuracy against parameters (log x), one labelled point per run."""

    def report(rows: list[dict], out_dir: Path) -> str:
        from .runner import aggregate

        agg = [a for a in aggregate(rows) if a["mean"] is not None]
        plt = _plt()
        fig, ax = plt.subplots(figsize=(7, 4.8))
        for a in agg:
            ax.scatter(a["num_params"], a["mean"])
            ax.annotate(a["config"], (a["num_params"], a["mean"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel("test accuracy")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        fig.savefig(out_dir / filename, dpi=120)
        plt.close(fig)
        return f"![accuracy vs parameters]({filename})"

    return report


# --- 5. scattering (Table 2) ------------------------------------------------------------------
def _scattering_configs(quick: bool, dataset: str) -> list[RunConfig]:
    t = _train(quick, 3)
    out = []

    def add(name, limit, **kw):
        out.append(RunConfig(name=name, model="mlp", dataset=dataset, limit_train=limit,
                             features="scattering-j2", train=t,
                             model_kwargs={"input_batchnorm": True, "classifier": "dc",
                                           "activation": "leaky_relu", "negative_slope": 0.5,
                                           **kw}))

    # LDR layers at n = 3,969 cost O(r n²) per sample (minutes per epoch on 2 cores), so the
    # equal-budget comparison uses 5,000 training images; DC also runs on 30,000.
    small = 2000 if quick else 5000
    if not quick:
        add("scat-dc-1", 30_000, layer="dc", depth=1)
        add("scat-dc-3", 30_000, layer="dc", depth=3)
    add("5k-scat-dc-1", small, layer="dc", depth=1)
    add("5k-scat-dc-3", small, layer="dc", depth=3)
    add("5k-scat-ldr-sd-r1", small, layer="ldr_sd", depth=1, layer_kwargs={"rank": 1})
    add("5k-scat-toeplitz-like-r1", small, layer="toeplitz_like", depth=1,
        layer_kwargs={"rank": 1})
    return out


# --- 6. compression (Table 3) -----------------------------------------------------------------
def _compression_configs(quick: bool, dataset: str) -> list[RunConfig]:
    t = _train(quick, 4)
    lim = _limit(quick)
    out = [RunConfig(name="lenet", model="lenet", dataset=dataset, limit_train=lim, train=t)]

    def add(name, model, **kw):
        extra = kw.pop("cfg", {})
        out.append(RunConfig(name=name, model=model, model_kwargs=kw, dataset=dataset,
                             limit_train=lim, train=t, **extra))

    # 8 / 10 DC layers at n = 1024 (784 inputs zero-padded): 25,620 / 31,764 weights
    add("dcnn-8x1024", "dcnn", width=1024, depth=8, activation="leaky_relu",
        negative_slope=0.5)
    add("dcnn-10x1024", "dcnn", width=1024, depth=10, activation="leaky_relu",
        negative_slope=0.5)
    # HashNet: 784-1000-1000-1000-10 with 1/64 and 1/40 of the weights
    for frac, label in ((1 / 64, "64"), (1 / 40, "40")):
        add(f"hashnet-1/{label}", "mlp", layer="hashed", width=1000, depth=3,
            activation="relu", layer_kwargs={"compression": frac, "seed": 0})
    # Dark Knowledge: a dense student with the HashNet budgets, distilled from the LeNet run
    for width in (59, 98):
        add(f"distilled-dense-{width}", "dense-mlp", width=width, depth=1,
            cfg={"teacher": "run:lenet", "temperature": 4.0, "alpha": 0.9})
        add(f"dense-{width}", "dense-mlp", width=width, depth=1)
    return out


EXPERIMENTS: dict[str, Experiment] = {
    "init-variance": Experiment(
        name="init-variance", title="Proposition 4: output variance vs depth",
        description="Monte-Carlo over independently initialized bias-free DC stacks (ReLU "
                    "between layers, identity at the end) of the pre-activation second moment, "
                    "for the paper's init and two naive ones.",
        custom=_init_variance, budget_note="full: n=256, depth 1–64, 300 networks; "
                                           "quick: n=64, depth 16, 30 networks"),
    "synthetic-regression": Experiment(
        name="synthetic-regression", title="Fig. 3a: DC vs ACDC on linear regression",
        description="Linear stacks of DC and ACDC layers fitted to Y = XW + ε.",
        custom=_synthetic_regression, paper_note="DC converges faster than ACDC (Fig. 3a).",
        budget_note="full: 5,000 SGD iterations; quick: 300"),
    "nonlinearity": Experiment(
        name="nonlinearity", title="Fig. 2a/2b: where to put the non-linearities",
        description="DCNN (width = input size, DC classifier) on flattened images: depth × "
                    "{ReLU every 1/2/3 layers} and × {leaky-ReLU slope 0.2/0.3/0.5}.",
        configs=_nonlinearity_configs, report=_nonlinearity_report,
        paper_note="flattened CIFAR-10, 200 epochs: ReLU every layer diverges at depth ≥ 20, "
                   "every 2 at 40, every 3 trains to 39 layers (.533–.552); slope 0.2 "
                   "diverges at ≥ 20, 0.3 at ≥ 30, 0.5 reaches .536 (2) … .561 (30).",
        budget_note="full: 3 epochs per run (paper: 200), Adam 1e-3 cosine, batch 128; "
                    "quick: 1 epoch on 2,000 images"),
    "size-vs-accuracy": Experiment(
        name="size-vs-accuracy", title="Fig. 4a / Table 1: accuracy per parameter",
        description="DCNN, DTNN, Toeplitz, ACDC, circulant projection, low-rank, "
                    "Toeplitz-like LDR (SHL protocol), a dense MLP, and a *narrow dense MLP with "
                    "the same parameter count as each DCNN* (the honest baseline the paper "
                    "omits).",
        configs=_size_configs, report=_size_report,
        paper={},
        paper_note="flattened CIFAR-10: DCNN 2/5/10/20 layers .536/.543/.544/.560 at "
                   "21.5K–187K weights; dense 9.4M .562; DTNN 18K–374K .479–.539; Toeplitz "
                   ".463–.504; low-rank .286–.523; LDR-TD r=2 .511, Toeplitz-like r=2 .483.",
        budget_note="full: 5 epochs per run (paper: 200), Adam 1e-3 cosine, batch 128; "
                    "quick: 1 epoch on 2,000 images"),
    "scattering": Experiment(
        name="scattering", title="Table 2: scattering + BatchNorm + structured layers",
        description="kymatio 2-D scattering (J = 2) of each image → BatchNorm → one or three "
                    "structured hidden layers (leaky-ReLU 0.5) → DC classifier. On "
                    "Fashion-MNIST the scattering output has 81·7·7 = 3,969 features (15,552 "
                    "for RGB CIFAR-10 in the paper).",
        configs=_scattering_configs,
        report=_scatter_report("scattering.png", "scattering + BatchNorm + structured layer"),
        paper_note="CIFAR-10: DC(1) 124K .757, DC(3) 217K .785, LDR-SD r=1 140K .701, "
                   "r=10 420K .728, Toeplitz-like r=1 110K .711, r=10 388K .720.",
        budget_note="full: 3 epochs (paper: 200), Adam 1e-3 cosine, batch 128; DC on 30,000 "
                    "training images, and DC vs LDR rank 1 at an equal budget of 5,000 images "
                    "(explicit Krylov matrices of size 3,969² make LDR minutes per epoch on 2 "
                    "cores); quick: 1 epoch on 2,000 images"),
    "compression": Experiment(
        name="compression", title="Table 3: DCNN vs HashNet vs distillation vs a CNN",
        description="A LeNet-style CNN (also the distillation teacher), DCNNs of 8/10 DC layers "
                    "at n = 1024 (the inferred 25,620 / 31,764-weight models), HashNet "
                    "784-1000-1000-1000-10 at 1/64 and 1/40 of the weights, and dense students "
                    "with HashNet's budgets trained with and without distillation (Dark "
                    "Knowledge, T = 4, α = 0.9) from the LeNet run of the same seed.",
        configs=_compression_configs,
        report=_scatter_report("compression.png", "compression baselines"),
        paper_note="MNIST test error: LeNet 4.26M 0.61 %; DCNN 25,620 1.74 %, 31,764 1.60 %; "
                   "HashNet 46,875 2.79 %, 78,125 1.99 %; Dark Knowledge 46,875 6.32 %, "
                   "78,125 2.16 %.",
        budget_note="full: 4 epochs (paper: not stated), Adam 1e-3 cosine, batch 128; "
                    "quick: 1 epoch on 2,000 images"),
}
