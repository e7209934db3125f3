"""A run is one nested, frozen :class:`RunConfig`: the only input of a training run.

Sections (TOML tables): ``[model]`` (a registered model and its keyword arguments), ``[data]``,
``[task]`` (a registered task and its arguments; distillation), ``[train]`` (optimisation),
plus the run's ``name``, ``seed`` and free-form ``tags`` (labels reports group by; training
ignores them). Every CLI command builds one, a run folder saves the resolved one as
``config.toml``, and that file reruns it (``compactnn train --config runs/<id>/config.toml``).
Overrides use one syntax everywhere — ``--set train.epochs=5``,
``--set model.layer_kwargs.rank=4`` — and an unknown key is an error (model and task keys are
checked against the registered class's signature). A value is read as its field's type:
``--set name=123`` is the string ``"123"``, ``--set train.lr=1`` the float ``1.0``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from .registry import accepted_kwargs, available, get, registry

__all__ = ["DataConfig", "ModelConfig", "RunConfig", "TaskConfig", "TrainConfig",
           "apply_overrides", "assign", "dumps_toml", "parse_value"]


def _bad(section: str, msg: str):
    raise ValueError(f"{section}: {msg}")


# --- frozen free-form mappings (model args, task args, tags) --------------------------------
def _freeze(v: Any) -> Any:
    """Read-only deep copy: mappings → ``MappingProxyType`` (``None`` values dropped: ``None``
    means the default and TOML has no null), lists/tuples → tuples."""
    if isinstance(v, (dict, types.MappingProxyType)):
        return types.MappingProxyType({str(k): _freeze(x) for k, x in v.items()
                                       if x is not None})
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v: Any) -> Any:
    """Plain ``dict``/``list`` copy of a frozen value."""
    if isinstance(v, (dict, types.MappingProxyType)):
        return {k: _thaw(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_thaw(x) for x in v]
    return v


def _mapping(section: str, name: str, v: Any) -> types.MappingProxyType:
    if not isinstance(v, (dict, types.MappingProxyType)):
        _bad(section, f"{name} must be a table of key = value, got {v!r}")
    for key, x in v.items():
        if isinstance(x, (dict, types.MappingProxyType)):
            _mapping(section, f"{name}.{key}", x)
    return _freeze(v)


def _annotations(cls) -> dict[str, Any]:
    """Parameter types of a builder (a class: its ``__init__`` and those its ``**kwargs``
    lead to): the annotations, else the type of a ``bool``/``int``/``float``/``str``
    default (the layers' keyword arguments are not annotated)."""
    hints: dict[str, Any] = {}
    fns = [c.__init__ for c in reversed(inspect.getmro(cls)) if "__init__" in vars(c)] \
        if inspect.isclass(cls) else [cls]
    for fn in fns:  # base classes first: a subclass's types win
        for p in inspect.signature(fn).parameters.values():
            if p.annotation is p.empty and type(p.default) in (bool, int, float, str):
                hints[p.name] = type(p.default)
        try:
            hints.update(typing.get_type_hints(fn))
        except (NameError, TypeError):  # unresolvable annotations: no type check for them
            pass
    return hints


def _check_args(section: str, owner: str, cls: Any, args: types.MappingProxyType, *,
                given: frozenset = frozenset({"in_features", "num_classes", "input_shape"})
                ) -> types.MappingProxyType:
    """Every key must be a keyword of ``cls`` other than those ``given`` by the caller (the
    data's sizes); values are checked against its annotations. ``owner`` names ``cls`` in
    messages (e.g. ``"'dcnn'"``)."""
    ok = accepted_kwargs(cls)
    if ok is not None:
        for key in args:
            if key not in ok or (key in given and key != "input_shape"):
                _bad(section, f"{owner} does not take {key!r}" + (
                    "" if key in given else
                    f" (it takes: {', '.join(sorted(ok - given))})"))
    hints = _annotations(cls)
    return _freeze({k: _check_value(section, f"{owner}: {k}", hints[k], v) if k in hints else v
                    for k, v in args.items()})


def check_kwargs(owner: str, cls: Any, kwargs: Any, *, section: str = "model",
                 given: tuple[str, ...] = ("in_features", "out_features", "device", "dtype")
                 ) -> dict:
    """``kwargs`` for ``cls`` checked as config arguments are — unknown keys and values of the
    wrong type are a ``ValueError`` naming ``owner`` — and normalised (ints for floats)."""
    return dict(_check_args(section, owner, cls, kwargs, given=frozenset(given)))


# --- typed fields ---------------------------------------------------------------------------
def _types_of(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_value(section: str, name: str, tp, v: Any) -> Any:
    """``v`` as the annotated type ``tp`` (int, float, str, bool, tuple[float, ...], optional);
    ints are accepted for floats (and become floats); anything else is an error."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_value(section, name, inner[0], v) if len(inner) == 1 else v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            _bad(section, f"{name} must be a number, got {v!r}")
        return float(v)
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int) or not -2**63 <= v < 2**63:
            _bad(section, f"{name} must be an integer, got {v!r}")
        return v
    if tp is bool:
        if not isinstance(v, bool):
            _bad(section, f"{name} must be true or false, got {v!r}")
        return v
    if tp is str:
        if not isinstance(v, str):
            _bad(section, f"{name} must be a string, got {v!r}")
        return v
    if typing.get_origin(tp) is tuple:
        if not isinstance(v, (list, tuple)):
            _bad(section, f"{name} must be a list, got {v!r}")
        return tuple(_check_value(section, name, args[0], x) for x in v)
    if tp is dict or typing.get_origin(tp) is dict:
        if not isinstance(v, (dict, types.MappingProxyType)):
            _bad(section, f"{name} must be a table of key = value, got {v!r}")
    return v


def _typed(obj, section: str) -> None:
    """Check (and normalise, e.g. 1 → 1.0 for a float) every annotated field of a section."""
    for f in dataclasses.fields(obj):
        tp = _types_of(type(obj))[f.name]
        if typing.get_origin(tp) is dict or tp in (dict, types.MappingProxyType):
            continue
        object.__setattr__(obj, f.name, _check_value(section, f.name, tp,
                                                     getattr(obj, f.name)))


def _section_from_dict(cls, key: str, d: Any):
    values = _table(key, d)
    bad = set(values) - {f.name for f in dataclasses.fields(cls)}
    if bad:
        raise ValueError(f"unknown {key} keys: {', '.join(sorted(bad))}")
    return cls(**values)


# --- sections -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelConfig:
    """``name``: a registered model (``compactnn list``); ``args``: its keyword arguments
    (written flat in ``[model]``). ``in_features``/``num_classes`` come from the data (and the
    data's ``input_shape`` unless ``args`` sets it)."""

    name: str = "dcnn"
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        _typed(self, "model")
        args = _mapping("model", "model", self.args)
        object.__setattr__(self, "args", _check_args("model", repr(self.name),
                                                     get("model", self.name), args))

    def to_dict(self) -> dict:
        return {"name": self.name, **_thaw(self.args)}

    @classmethod
    def from_dict(cls, d: Any) -> ModelConfig:
        d = _table("model", d)
        return cls(name=d.pop("name", cls.name), args=d)

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))


@dataclass(frozen=True)
class DataConfig:
    """``name``: a registered data set or ``auto`` (Fashion-MNIST when installed, else digits);
    ``data_dir`` is authoritative when given; ``val_fraction`` holds out a seeded part of the
    training set; ``limit_train`` keeps a seeded random subset; ``features``: a fixed transform
    (``scattering-j2``); ``standardize``: ``global``, ``feature`` or ``none``; ``augment``:
    an on-the-fly augmentation of the training batches (``crop-flip``: pad 4, random crop,
    horizontal flip — for image data, without ``features``); ``workers``: DataLoader worker
    processes reading a streamed data set (YouTube-8M; 0: read in the training process; the
    readers' shares, hence the batch order, depend on it)."""

    name: str = "auto"
    data_dir: str | None = None
    val_fraction: float = 0.0
    limit_train: int | None = None
    features: str | None = None
    standardize: str = "global"
    augment: str | None = None
    workers: int = 0

    def __post_init__(self):
        _typed(self, "data")
        if self.workers < 0:
            _bad("data", f"workers must be a non-negative int, got {self.workers!r}")
        get("dataset", self.name)
        if not 0 <= self.val_fraction < 1:
            _bad("data", f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.limit_train is not None and self.limit_train < 1:
            _bad("data", f"limit_train must be a positive int, got {self.limit_train!r}")
        if self.standardize not in ("global", "feature", "none"):
            _bad("data", f"standardize must be global, feature or none, got {self.standardize!r}")
        if self.augment is not None:
            from .data.augment import AUGMENTATIONS

            if self.augment not in AUGMENTATIONS:
                _bad("data", f"augment must be one of {', '.join(AUGMENTATIONS)}, got "
                             f"{self.augment!r}")
            if self.features is not None:
                _bad("data", "augment applies to the images: it cannot be combined with "
                             f"features={self.features!r} (computed once, before training)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TaskConfig:
    """``name``: a registered task (loss + metrics) or ``auto`` (the data set's own task);
    ``args``: the task's keyword arguments, written flat in ``[task]`` (e.g. ``k = 20`` for
    ``multilabel``). ``teacher`` (a run folder; inside an experiment ``run:<config name>``)
    trains by distillation with ``temperature`` and ``alpha`` (weight of the soft targets)."""

    name: str = "auto"
    teacher: str | None = None
    temperature: float = 4.0
    alpha: float = 0.9
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        _typed(self, "task")
        object.__setattr__(self, "args", _mapping("task", "task", self.args))
        if self.name != "auto":
            object.__setattr__(self, "args", _check_args("task", repr(self.name),
                                                         get("task", self.name), self.args))
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            _bad("task", f"temperature must be a positive number, got {self.temperature!r}")
        if not 0 <= self.alpha <= 1:
            _bad("task", f"alpha must be in [0, 1], got {self.alpha!r}")

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "args"}
        return {**d, **_thaw(self.args)}

    @classmethod
    def from_dict(cls, d: Any) -> TaskConfig:
        d = _table("task", d)
        known = {f.name for f in dataclasses.fields(cls)} - {"args"}
        return cls(**{k: d.pop(k) for k in list(d) if k in known}, args=d)

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (``compactnn list`` shows the registered optimizers/schedules).

    ``schedule``: ``constant``; ``cosine`` (to zero, no warm-up); ``piecewise`` (multiply the
    LR by ``lr_factors[i]`` from fraction ``lr_milestones[i]`` of the steps on); ``paper``:
    ``lr × (1, 0.5, 0.1, 0.02)`` at 40 / 60 / 80 % of training — our reading of Araujo et al.'s
    piecewise-constant schedule (the paper steps at 40K/60K/80K iterations, which at batch 200
    exceed 200 epochs of CIFAR-10, so the fractions are an interpretation).
    ``steps_per_epoch``, when set, is the number of training steps per epoch for any loader
    (a sized loader runs ``min(len, steps_per_epoch)``); required for a streaming training set
    without a length unless the schedule is ``constant``.
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
        _typed(self, "train")
        for name in ("epochs", "batch_size", "eval_batch_size", "steps_per_epoch"):
            v = getattr(self, name)
            if v is not None and v < 1:
                _bad("train", f"{name} must be a positive int, got {v!r}")
        if self.optimizer not in registry("optimizer"):
            _bad("train", f"optimizer must be one of {available('optimizer')}, "
                 f"got {self.optimizer!r}")
        if self.schedule not in registry("schedule"):
            _bad("train", f"schedule must be one of {available('schedule')}, "
                 f"got {self.schedule!r}")
        for name in ("lr", "momentum", "weight_decay"):
            v = getattr(self, name)
            # finite in float32 too: optimizers keep these in the parameters' precision
            if not math.isfinite(v) or v < 0 or (name == "lr" and v == 0) or v > 1e30:
                _bad("train", f"{name} must be a {'positive' if name == 'lr' else 'non-negative'}"
                     f" number of at most 1e30, got {v!r}")
        if self.momentum >= 1:
            _bad("train", f"momentum must be below 1, got {self.momentum!r}")
        if len(self.lr_milestones) != len(self.lr_factors):
            _bad("train", "lr_milestones and lr_factors must have the same length")
        if any(not 0 < m < 1 for m in self.lr_milestones) or list(self.lr_milestones) != sorted(
                self.lr_milestones):
            _bad("train", "lr_milestones must be increasing fractions of training in (0, 1)")
        if any(not (f > 0 and math.isfinite(f)) for f in self.lr_factors):
            _bad("train", f"lr_factors must be positive numbers, got {list(self.lr_factors)}")
        if self.grad_clip is not None and not (self.grad_clip > 0 and math.isfinite(
                self.grad_clip)):
            _bad("train", f"grad_clip must be a positive number, got {self.grad_clip!r}")
        if not self.device:
            _bad("train", "device must be a device string such as 'cpu' or 'cuda'")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "task": TaskConfig,
             "train": TrainConfig}


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
        _typed(self, "run config")
        if not self.name:
            raise ValueError("a run config needs a non-empty name")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        object.__setattr__(self, "tags", _mapping("run config", "tags", self.tags))

    def __hash__(self) -> int:
        return hash(self.digest())

    # --- dict / TOML ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"name": self.name, "seed": self.seed}
        for key in _SECTIONS:
            d[key] = getattr(self, key).to_dict()
        d["tags"] = _thaw(self.tags)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        d = dict(_table("run config", d))
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown run-config keys: {', '.join(sorted(unknown))}")
        kw: dict[str, Any] = {k: d[k] for k in ("name", "seed", "tags") if k in d}
        for key, section in _SECTIONS.items():
            if key in d:
                try:
                    kw[key] = (section.from_dict(d[key]) if hasattr(section, "from_dict")
                               else _section_from_dict(section, key, d[key]))
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
        except (ValueError, UnicodeDecodeError) as e:
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
        """A short hash of the configuration (equal configs, equal digests). Fields added
        after runs were recorded (:data:`LATER_FIELDS`) count only when set, so a new field at
        its default leaves every earlier run's digest — and its reuse — as it was."""
        d = self.to_dict()
        for (section, key), default in LATER_FIELDS.items():
            if key in d[section] and d[section][key] == default:
                del d[section][key]
        text = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


#: ``(section, field) → default`` of the fields added after runs were recorded: left out of
#: :meth:`RunConfig.digest` while at their default (add every new field here)
LATER_FIELDS = {("data", "augment"): None, ("data", "workers"): 0}


def _table(key: str, v) -> dict:
    if not isinstance(v, (dict, types.MappingProxyType)):
        raise ValueError(f"{key} must be a table, got {v!r}")
    return dict(v)


# --- overrides ---------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """``3`` → int, ``0.5`` → float, ``true``/``false``/``none``, JSON lists/dicts, else str
    (for keys whose type is not declared: model and task arguments, tags)."""
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


def _declared_type(keys: list[str]):
    """The annotated type of a config path, or ``None`` where keys are free-form."""
    if len(keys) == 1 and keys[0] in ("name", "seed"):
        return _types_of(RunConfig)[keys[0]]
    if len(keys) == 2 and keys[0] in _SECTIONS and keys[1] != "args":
        return _types_of(_SECTIONS[keys[0]]).get(keys[1])
    return None


def parse_for(path: str, text: str) -> Any:
    """The value of ``--set path=text``: read as the field's declared type (a ``str`` field
    keeps the text as is; an optional one reads ``none`` as ``None``), else
    :func:`parse_value`."""
    tp = _declared_type(path.split("."))
    if tp is None:
        return parse_value(text)
    inner = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    if text.strip().lower() in ("none", "null") and type(None) in typing.get_args(tp):
        return None
    if inner == [str]:
        return text
    return parse_value(text)


def assign(d: dict, path: str, value: Any) -> None:
    """Set ``d[a][b][c] = value`` for ``path = "a.b.c"`` in place. The path must exist, except
    inside ``model``, ``task`` and ``tags`` (free-form here, checked when the config is
    built)."""
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


#: sections whose keys are free-form in a dict (checked when the config is built)
_FREE = ("model", "task", "tags")


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` assignments (each value read by :func:`parse_for`) to a nested
    config dict; returns a copy."""
    d = json.loads(json.dumps(d))
    for item in overrides:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--set expects key=value (e.g. train.epochs=5), got {item!r}")
        assign(d, path, parse_for(path, value))
    return d


# --- TOML writer -------------------------------------------------------------------------
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    # JSON escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL
    return json.dumps(s, ensure_ascii=True).replace("\x7f", "\\u007f")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()
                               if x is not None) + "}"
    raise ValueError(f"cannot write {v!r} to TOML")


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
