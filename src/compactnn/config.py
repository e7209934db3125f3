"""A run is one nested, frozen :class:`RunConfig`: the only input of a training run.

Sections (TOML tables): ``[model]`` (a registered model and its keyword arguments), ``[data]``,
``[task]`` (loss and metrics; distillation), ``[train]`` (optimisation), plus the run's
``name``, ``seed`` and free-form ``tags`` (labels reports group by; training ignores them).
Every CLI command builds one, a run folder saves the resolved one as ``config.toml``, and that
file reruns it (``compactnn train --config runs/<id>/config.toml``). Overrides use one syntax
everywhere — ``--set train.epochs=5``, ``--set model.layer_kwargs.rank=4`` — and an unknown
key is an error (model keys are checked against the model's signature).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from .registry import accepted_kwargs, available, get, registry

__all__ = ["DataConfig", "ModelConfig", "RunConfig", "TaskConfig", "TrainConfig",
           "apply_overrides", "assign", "dumps_toml", "parse_value"]


def _bad(section: str, msg: str):
    raise ValueError(f"{section}: {msg}")


def _freeze(d: dict) -> dict:
    """A plain copy without ``None`` values (``None`` = the default; TOML has no null)."""
    return {k: (_freeze(v) if isinstance(v, dict) else v) for k, v in dict(d).items()
            if v is not None}


@dataclass(frozen=True)
class ModelConfig:
    """``name``: a registered model (``compactnn list``); ``args``: its keyword arguments
    (written flat in ``[model]``). ``in_features``/``num_classes``/``input_shape`` come from the
    data and are not set here."""

    name: str = "dcnn"
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "args", _freeze(self.args))
        cls = get("model", self.name)
        ok = accepted_kwargs(cls)
        data_given = {"in_features", "num_classes", "input_shape"}
        if ok is not None:
            for key in self.args:
                if key not in ok or key in data_given - {"input_shape"}:
                    _bad("model", f"{self.name!r} does not take {key!r}"
                         + ("" if key in data_given else
                            f" (it takes: {', '.join(sorted(ok - data_given))})"))

    def to_dict(self) -> dict:
        return {"name": self.name, **self.args}

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        return cls(name=d.pop("name", cls.name), args=d)


@dataclass(frozen=True)
class DataConfig:
    """``name``: a registered data set or ``auto`` (Fashion-MNIST when installed, else digits);
    ``data_dir`` is authoritative when given; ``val_fraction`` holds out a seeded part of the
    training set; ``limit_train`` keeps a seeded random subset; ``features``: a fixed transform
    (``scattering-j2``); ``standardize``: ``global``, ``feature`` or ``none``."""

    name: str = "auto"
    data_dir: str | None = None
    val_fraction: float = 0.0
    limit_train: int | None = None
    features: str | None = None
    standardize: str = "global"

    def __post_init__(self):
        get("dataset", self.name)
        if not isinstance(self.val_fraction, (int, float)) or not 0 <= self.val_fraction < 1:
            _bad("data", f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.limit_train is not None and (isinstance(self.limit_train, bool) or not isinstance(
                self.limit_train, int) or self.limit_train < 1):
            _bad("data", f"limit_train must be a positive int, got {self.limit_train!r}")
        if self.standardize not in ("global", "feature", "none"):
            _bad("data", f"standardize must be global, feature or none, got {self.standardize!r}")


@dataclass(frozen=True)
class TaskConfig:
    """``name``: a registered task (loss + metrics) or ``auto`` (the data set's own task).
    ``teacher`` (a run folder, or ``run:<config name>`` inside an experiment) trains by
    distillation with ``temperature`` and ``alpha`` (weight of the soft targets)."""

    name: str = "auto"
    teacher: str | None = None
    temperature: float = 4.0
    alpha: float = 0.9

    def __post_init__(self):
        if self.name != "auto":
            get("task", self.name)
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0
                and math.isfinite(self.temperature)):
            _bad("task", f"temperature must be a positive number, got {self.temperature!r}")
        if not (isinstance(self.alpha, (int, float)) and 0 <= self.alpha <= 1):
            _bad("task", f"alpha must be in [0, 1], got {self.alpha!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (``compactnn list`` shows the registered optimizers/schedules).

    ``schedule``: ``constant``; ``cosine`` (to zero, no warm-up); ``piecewise`` (multiply the
    LR by ``lr_factors[i]`` from fraction ``lr_milestones[i]`` of the steps on); ``paper``:
    ``lr × (1, 0.5, 0.1, 0.02)`` at 40 / 60 / 80 % of training — our reading of Araujo et al.'s
    piecewise-constant schedule (the paper steps at 40K/60K/80K iterations, which at batch 200
    exceed 200 epochs of CIFAR-10, so the fractions are an interpretation).
    ``steps_per_epoch`` is needed only for a streaming training set without a length.
    """

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    lr_milestones: tuple[float, ...] = (0.5, 0.75)
    lr_factors: tuple[float, ...] = (0.1, 0.01)
    grad_clip: float | None = None
    device: str = "cpu"
    eval_batch_size: int = 2048
    steps_per_epoch: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "lr_milestones", tuple(self.lr_milestones))
        object.__setattr__(self, "lr_factors", tuple(self.lr_factors))

        def pos_int(name):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                _bad("train", f"{name} must be a positive int, got {v!r}")

        for name in ("epochs", "batch_size", "eval_batch_size"):
            pos_int(name)
        if self.steps_per_epoch is not None:
            pos_int("steps_per_epoch")
        if self.optimizer not in registry("optimizer"):
            _bad("train", f"optimizer must be one of {available('optimizer')}, "
                 f"got {self.optimizer!r}")
        if self.schedule not in registry("schedule"):
            _bad("train", f"schedule must be one of {available('schedule')}, "
                 f"got {self.schedule!r}")
        for name in ("lr", "momentum", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v < 0 or (name == "lr" and v == 0):
                _bad("train", f"{name} must be a {'positive' if name == 'lr' else 'non-negative'}"
                     f" number, got {v!r}")
        if len(self.lr_milestones) != len(self.lr_factors):
            _bad("train", "lr_milestones and lr_factors must have the same length")
        if any(not 0 < m < 1 for m in self.lr_milestones) or list(self.lr_milestones) != sorted(
                self.lr_milestones):
            _bad("train", "lr_milestones must be increasing fractions of training in (0, 1)")
        if self.grad_clip is not None and not (isinstance(self.grad_clip, (int, float))
                                               and self.grad_clip > 0):
            _bad("train", f"grad_clip must be > 0 or None, got {self.grad_clip!r}")
        if not isinstance(self.device, str) or not self.device:
            _bad("train", f"device must be a string such as 'cpu' or 'cuda', got {self.device!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTIONS = {"data": DataConfig, "task": TaskConfig, "train": TrainConfig}


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run depends on; see the module docstring."""

    name: str = "run"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tags: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a run config needs a non-empty name")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        object.__setattr__(self, "tags", _freeze(self.tags))

    # --- dict / TOML ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"name": self.name, "seed": self.seed, "model": self.model.to_dict()}
        for key in _SECTIONS:
            d[key] = dataclasses.asdict(getattr(self, key))
        d["tags"] = dict(self.tags)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown run-config keys: {', '.join(sorted(unknown))}")
        kw: dict[str, Any] = {k: d[k] for k in ("name", "seed", "tags") if k in d}
        if "model" in d:
            kw["model"] = ModelConfig.from_dict(_table("model", d["model"]))
        for key, section in _SECTIONS.items():
            if key in d:
                values = _table(key, d[key])
                bad = set(values) - {f.name for f in dataclasses.fields(section)}
                if bad:
                    raise ValueError(f"unknown {key} keys: {', '.join(sorted(bad))}")
                try:
                    kw[key] = section(**values)
                except TypeError as e:
                    raise ValueError(f"{key}: {e}") from None
        return cls(**kw)

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())

    @classmethod
    def from_toml(cls, text: str) -> RunConfig:
        try:
            return cls.from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"invalid TOML: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        if path.is_dir():
            path = path / "config.toml"
        if not path.is_file():
            raise FileNotFoundError(f"no run config at {path}")
        try:
            return cls.from_toml(path.read_text())
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def with_overrides(self, overrides: list[str]) -> RunConfig:
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))

    def replace(self, **changes) -> RunConfig:
        """``cfg.replace(seed=1, train={"epochs": 3})``: sections given as dicts are merged."""
        d = self.to_dict()
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(d.get(key), dict) and key != "tags":
                d[key] = {**d[key], **value}
            else:
                d[key] = value
        return RunConfig.from_dict(d)

    def digest(self) -> str:
        """A short hash of the resolved configuration (equal configs, equal digests)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _table(key: str, v) -> dict:
    if not isinstance(v, dict):
        raise ValueError(f"{key} must be a table, got {type(v).__name__}")
    return dict(v)


# --- overrides ---------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """``3`` → int, ``0.5`` → float, ``true``/``false``/``none``, JSON lists/dicts, else str."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


#: sections whose keys are free-form here (checked later: model keys against the model's
#: signature, layer kwargs by the layer, tags not at all)
_FREE = ("model", "tags")


def assign(d: dict, path: str, value: Any) -> None:
    """Set ``d[a][b][c] = value`` for ``path = "a.b.c"`` in place. The path must exist, except
    inside ``model`` and ``tags`` (free-form here, checked when the config is built)."""
    keys = path.split(".")
    if any(not k for k in keys):
        raise ValueError(f"--set expects key=value (e.g. train.epochs=5), got {path!r}")
    free = keys[0] in _FREE
    node = d
    for i, k in enumerate(keys[:-1]):
        if isinstance(node.get(k), dict):
            node = node[k]
        elif free and k not in node:
            node = node.setdefault(k, {})
        else:
            raise ValueError(f"--set {path}: no section {'.'.join(keys[:i + 1])!r}")
    last = keys[-1]
    if last not in node and not free:
        raise ValueError(f"--set {path}: unknown key {last!r}"
                         + (f" (keys: {', '.join(sorted(node))})" if node else ""))
    node[last] = value


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` assignments (values parsed by :func:`parse_value`) to a nested
    config dict; returns a copy."""
    d = json.loads(json.dumps(d))
    for item in overrides:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--set expects key=value (e.g. train.epochs=5), got {item!r}")
        assign(d, path, parse_value(value))
    return d


# --- TOML writer -------------------------------------------------------------------------
def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()
                               if x is not None) + "}"
    raise ValueError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(d: dict) -> str:
    """Minimal TOML writer for run configs: top-level scalars, then one table per section
    (nested mappings inline); ``None`` is omitted — loading restores the default."""
    lines, tables = [], []
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in tables:
        lines.append(f"\n[{_key(k)}]")
        lines.extend(f"{_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items() if vv is not None)
    return "\n".join(lines) + "\n"
