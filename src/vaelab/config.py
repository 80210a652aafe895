"""The resolved settings of one run: data, model and training sections plus output options.

Precedence: defaults < TOML file (``--config``) < command-line flags. Every option name is unique
across sections, so a flat ``name=value`` (CLI flags, ``--grid`` in sweeps) finds its section.
Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaelab.data.config import DataConfig
from vaelab.errors import ConfigError
from vaelab.models.config import ModelConfig
from vaelab.train.config import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


@dataclass
class Config:
    """All settings of a run; written resolved to ``config.json``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str | None = None
    """Run directory; default runs/<dataset>-<model>."""
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> Config:
        """Build from nested ``{section: {key: value}}`` and/or flat ``{key: value}`` items."""
        cfg = cls()
        return apply_overrides(cfg, flatten_dict(raw, source=source), source=source)

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"Config file {p} does not exist; check the path.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {p} cannot be read ({exc}).") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Config file {p} is not valid TOML: {exc}.") from None
        raw.pop("runs", None)  # a recipe's variants; see vaelab.recipes
        return cls.from_dict(raw, source=str(p))

    def run_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        base = Path(self.data.data).stem if self.data.data else self.data.dataset
        return Path("runs") / f"{base}-{self.model.model}"


def option_index() -> dict[str, tuple[str | None, dataclasses.Field]]:
    """Map every flat option name to (section or None for top level, dataclass field)."""
    index: dict[str, tuple[str | None, dataclasses.Field]] = {}
    for section, klass in SECTIONS.items():
        for f in dataclasses.fields(klass):
            index[f.name] = (section, f)
    for f in dataclasses.fields(Config):
        if f.name not in SECTIONS:
            index[f.name] = (None, f)
    return index


def flatten_dict(raw: dict[str, Any], *, source: str = "config") -> dict[str, Any]:
    """Turn ``{"model": {"beta": 2}}`` into ``{"beta": 2}``; refuse unknown keys and sections."""
    flat: dict[str, Any] = {}
    index = option_index()
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, dict):
            for sub, subval in value.items():
                owner = index.get(sub)
                if owner is None or owner[0] != key:
                    raise ConfigError(
                        f"{source}: unknown key '{sub}' in section [{key}]; "
                        f"valid keys are {', '.join(sorted(_section_keys(key)))}."
                    )
                flat[sub] = subval
        elif key == "model" and isinstance(value, str):
            flat["model"] = value
        elif key in index:
            flat[key] = value
        else:
            raise ConfigError(
                f"{source}: unknown key '{key}'; use sections [data], [model], [train] or "
                f"top-level keys out, name (see `vaelab options`)."
            )
    return flat


def _section_keys(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(SECTIONS[section])]


def apply_overrides(cfg: Config, flat: dict[str, Any], *, source: str = "option") -> Config:
    """Return a copy of ``cfg`` with flat ``name: value`` items set, each coerced and checked."""
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data),
        model=dataclasses.replace(cfg.model),
        train=dataclasses.replace(cfg.train),
    )
    index = option_index()
    for key, value in flat.items():
        norm = key.replace("-", "_")
        if norm not in index:
            raise ConfigError(f"{source}: unknown option '{key}' (see `vaelab options`).")
        section, f = index[norm]
        target = cfg if section is None else getattr(cfg, section)
        setattr(target, norm, coerce(value, f, source=source))
    validate(cfg)
    return cfg


def _hint(f: dataclasses.Field) -> Any:
    owner = next(
        (k for k in (*SECTIONS.values(), Config) if f in dataclasses.fields(k)), Config
    )
    return typing.get_type_hints(owner)[f.name]


def coerce(value: Any, f: dataclasses.Field, *, source: str = "option") -> Any:
    """Convert a TOML / JSON / command-line value to the field's declared type."""
    hint = _hint(f)
    try:
        return _coerce(value, hint)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source}: option '{f.name}' got {value!r}, which is not {_describe(hint)}."
        ) from None


def _coerce(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (
            isinstance(value, str) and value.lower() in ("none", "null", "")
        )
        if is_none and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0])
    if origin is list:
        (item,) = args
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise TypeError
        return [_coerce(v, item) for v in value]
    if origin is dict:  # NAME=VALUE pairs on the command line, a table in TOML
        if isinstance(value, str):
            pairs = [p for p in value.split(",") if p.strip()]
            if not all("=" in p for p in pairs):
                raise ValueError
            value = dict(tuple(x.strip() for x in p.split("=", 1)) for p in pairs)
        if not isinstance(value, dict):
            raise TypeError
        return {str(k): str(v) for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError
    if hint is int:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value)
    if hint is float:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str) and "/" in value:  # allow 1/784 as in the lecture
            num, den = value.split("/", 1)
            return float(num) / float(den)
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise TypeError
        return str(value)
    return value


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _describe(inner[0]) + " (or none)"
    if origin is list:
        return "a list of " + _describe(typing.get_args(hint)[0]) + " values"
    if origin is dict:
        return "a table of NAME = VALUE (on the command line NAME=VALUE,NAME=VALUE)"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        hint, str(hint)
    )


CHOICES: dict[str, tuple[str, ...]] = {
    "preprocess": ("auto", "none", "minmax", "standardize", "binarize", "binarize-dynamic",
                   "columns"),
    "nan": ("auto", "mask", "error", "drop"),
    "decimal": ("auto", ".", ","),
    "encoding": ("auto", "utf-8", "utf-16", "cp1252", "latin-1"),
    "color": ("auto", "grayscale", "rgb"),
    "header": ("auto", "yes", "no"),
    "stream": ("auto", "on", "off"),
    "activation": ("relu", "leaky_relu", "elu", "gelu", "tanh"),
    "arch": ("mlp", "conv"),
    "likelihood": ("auto", "bernoulli", "gaussian", "gaussian-learned", "mixed"),
    "noise": ("gaussian", "mask"),
    "lr_schedule": ("auto", "constant", "step", "exponential", "cosine"),
    "precision": ("fp32", "bf16"),
    "factor_metrics": ("auto", "full", "reduced", "off"),
    "dip_type": ("i", "ii"),
}


def validate(cfg: Config) -> None:
    """Check ranges and choices; raise ConfigError naming the option."""
    for section in SECTIONS:
        obj = getattr(cfg, section)
        for name, choices in CHOICES.items():
            if hasattr(obj, name) and getattr(obj, name) not in choices:
                raise ConfigError(
                    f"option '{name}' got {getattr(obj, name)!r}; choose one of "
                    f"{', '.join(choices)}."
                )
    checks = [
        ("latent_dim", cfg.model.latent_dim >= 1, "at least 1"),
        ("epochs", cfg.train.epochs >= 1, "at least 1"),
        ("batch_size", cfg.train.batch_size >= 1, "at least 1"),
        ("lr", cfg.train.lr > 0, "positive"),
        ("beta", cfg.model.beta >= 0, "zero or more"),
        ("sigma", cfg.model.sigma > 0, "positive"),
        ("dropout", 0 <= cfg.model.dropout < 1, "in [0, 1)"),
        ("val_fraction", 0 <= cfg.data.val_fraction < 1, "in [0, 1)"),
        ("test_fraction", 0 <= cfg.data.test_fraction < 1, "in [0, 1)"),
        ("iwae_k", cfg.model.iwae_k >= 1, "at least 1"),
        ("free_bits", cfg.model.free_bits >= 0, "zero or more"),
        ("kl_warmup_epochs", cfg.model.kl_warmup_epochs >= 0, "zero or more"),
        ("hidden", all(h >= 1 for h in cfg.model.hidden), "a list of positive sizes"),
        ("checkpoint_every", cfg.train.checkpoint_every >= 0,
         "zero (a checkpoint after every epoch) or a number of seconds"),
    ]
    for name, ok, what in checks:
        if not ok:
            raise ConfigError(f"option '{name}' must be {what}; fix it in the flag or config file.")
    if cfg.train.time_budget is not None:
        from vaelab.train.config import parse_duration

        try:
            parse_duration(cfg.train.time_budget)
        except ValueError:
            raise ConfigError(
                f"option 'time_budget' got {cfg.train.time_budget!r}; give a positive duration "
                "such as 90s, 5m, 1h30m or a number of seconds."
            ) from None
    if cfg.data.val_fraction + cfg.data.test_fraction >= 1:
        raise ConfigError(
            "options 'val_fraction' + 'test_fraction' must add up to less than 1."
        )
