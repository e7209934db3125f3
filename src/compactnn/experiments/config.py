"""Experiments as data: a frozen run configuration that round-trips to TOML, with
``--set section.key=value`` overrides."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from ..train import TrainConfig

__all__ = ["RunConfig", "apply_overrides", "dumps_toml", "parse_value"]


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run depends on (the seed lives in ``train.seed``)."""

    name: str
    model: str = "dcnn"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "auto"
    data_dir: str | None = None
    val_fraction: float = 0.0
    limit_train: int | None = None
    features: str | None = None  # a fixed transform of the inputs, e.g. "scattering-j2"
    teacher: str | None = None  # "run:<config name>" = that run of the same experiment & seed
    temperature: float = 4.0
    alpha: float = 0.9
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a run config needs a non-empty name")
        # ``None`` means "the model's default": drop it so the config round-trips through TOML
        object.__setattr__(self, "model_kwargs",
                           {k: v for k, v in dict(self.model_kwargs).items() if v is not None})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train"] = self.train.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown run-config keys: {', '.join(sorted(unknown))}")
        train = dict(d.pop("train", {}))
        tfields = {f.name for f in dataclasses.fields(TrainConfig)}
        bad = set(train) - tfields
        if bad:
            raise ValueError(f"unknown train keys: {', '.join(sorted(bad))}")
        for key in ("lr_milestones", "lr_factors"):
            if key in train:
                train[key] = tuple(train[key])
        return cls(train=TrainConfig(**train), **d)

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
        return cls.from_toml(Path(path).read_text())

    def with_overrides(self, overrides: list[str]) -> RunConfig:
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))


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


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` assignments to a nested dict (copy); unknown paths are errors
    except inside the free-form ``model_kwargs`` mapping."""
    d = json.loads(json.dumps(d))
    for item in overrides:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--set expects key=value, got {item!r}")
        keys = path.split(".")
        free = keys[0] == "model_kwargs"  # free-form: new keys allowed
        node = d
        for i, k in enumerate(keys[:-1]):
            if isinstance(node.get(k), dict):
                node = node[k]
            elif free:
                node = node.setdefault(k, {})
            else:
                raise ValueError(f"--set {path}: no section {'.'.join(keys[:i + 1])!r}")
        last = keys[-1]
        if last not in node and not free:
            raise ValueError(f"--set {path}: unknown key {last!r}")
        node[last] = parse_value(value)
    return d


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()
                               if x is not None) + "}"
    raise ValueError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(d: dict) -> str:
    """Minimal TOML writer for run configs (scalars, lists, one level of tables; ``None`` is
    omitted since TOML has no null — loading restores the dataclass default)."""
    lines, tables = [], []
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    for k, v in tables:
        lines.append(f"\n[{k}]")
        for kk, vv in v.items():
            if vv is not None:
                lines.append(f"{json.dumps(kk) if not kk.isidentifier() else kk} = "
                             f"{_toml_value(vv)}")
    return "\n".join(lines) + "\n"
