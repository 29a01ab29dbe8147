"""Run configs of both trainers: dataclasses that load from YAML, take `--field value` command-line overrides and
are validated in one place (`YamlConfig.__post_init__`)."""

from __future__ import annotations

import dataclasses
import operator
import typing
from pathlib import Path
from typing import ClassVar

import yaml

from .collapse_guard import CHECK_EVERY, DEFAULT_COSINE, DEFAULT_PATIENCE


MIXED_PRECISION = ("no", "bf16", "fp16")


YAML_NULLS = ("null", "Null", "NULL", "~")


def option(default, help: str, *, min=None, max=None, gt=None, lt=None, choices=None):
    """A config field with its one-line meaning (shown by `fit --help`) and its declared bounds: `min`/`max`
    (inclusive), `gt`/`lt` (exclusive), `choices`. Bounds apply to each item of a list/tuple field; None
    values are not checked. List/dict defaults are copied per instance."""
    bounds = {"min": min, "max": max, "gt": gt, "lt": lt, "choices": choices}
    metadata = {"help": help, **{key: value for key, value in bounds.items() if value is not None}}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# declared bound -> (test, how an error states it)
_BOUNDS = {"min": (operator.ge, ">="), "gt": (operator.gt, ">"), "max": (operator.le, "<="), "lt": (operator.lt, "<")}


def check_options(config) -> None:
    """Every field's declared bounds and choices (see `option`); raises ValueError naming the field."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        rules = {key: field.metadata[key] for key in ("min", "max", "gt", "lt", "choices") if key in field.metadata}
        value = getattr(config, field.name)
        if not rules or value is None:
            continue
        items = list(value) if _is_sequence(hints[field.name]) else [value]
        for item in items:
            if "choices" in rules:
                if item not in rules["choices"]:
                    raise ValueError(f"{field.name}: {item!r} is not one of {list(rules['choices'])}")
                continue
            whole = int in (hints[field.name], *typing.get_args(hints[field.name]))
            if isinstance(item, bool) or not isinstance(item, int if whole else (int, float)):
                raise ValueError(f"{field.name}: must be {'a whole number' if whole else 'a number'}, got {item!r}")
            bounds = {key: rules[key] for key in _BOUNDS if key in rules}
            if not all(_BOUNDS[key][0](item, bound) for key, bound in bounds.items()):
                text = " and ".join(f"{_BOUNDS[key][1]} {bound}" for key, bound in bounds.items())
                raise ValueError(f"{field.name}: must be {text}, got {item!r}")

_NUMBER_HINTS = {float: float, float | None: float, int: int, int | None: int}


def _is_sequence(hint) -> bool:
    return hint in (list, tuple) or typing.get_origin(hint) in (list, tuple)


@dataclasses.dataclass
class TrainingOptions:
    """The fields every trainer has (SARCLIP `fit`, SCIO, KnowLIP `finetune`), declared once; the collapse guard acts
    in the one optimizer step (`train/common/loop.py`)."""

    mixed_precision: str = option("no", "no | bf16 | fp16 (Accelerate)")
    collapse_patience: int = option(
        DEFAULT_PATIENCE, "collapse guard: stop when the watched loss sits at its uniform value ln B (SARCLIP: B = the "
        "global batch; SCIO and KnowLIP retrieval, captioning, VQA: the ITC loss, B = batch + queue_size; "
        "classification: the cross-entropy, B = classes) or the probe features' mean pairwise cosine exceeds "
        f"collapse_cosine for this many steps after the warm-up (checked every log_every steps, KnowLIP every "
        f"{CHECK_EVERY}; 0: off; a non-finite loss or gradient always stops the run)", min=0)
    collapse_cosine: float = option(DEFAULT_COSINE, "collapse guard: mean pairwise cosine of the probe batch's "
                                    "embeddings above which features count as collapsed, in (0, 1]", gt=0, max=1)
    gradient_accumulation_steps: int = option(
        1, "batches per optimizer step. SARCLIP: micro-batches of one step's batch, contrasted together (GradCache: the "
        "same loss as the whole batch at once). SAR-KnowLIP (SCIO, finetune): the gradients of that many batches summed "
        "into one step (our choice: each batch keeps its own in-batch ITM negatives; ITC also has the queue)", min=1)
    report_to: str = option("tensorboard", "where metrics go besides OUTPUT_DIR/metrics.jsonl: tensorboard (under "
                            "OUTPUT_DIR/logs) | wandb | none", choices=("tensorboard", "wandb", "none"))
    allow_outside_data: bool = option(False, "let a --data table or image folder name images outside its folder "
                                      "(absolute paths, '..', symlinks leading out); refused by default")


class YamlConfig:
    """Mixin for a config dataclass: YAML keys and CLI flags are its field names.

    Validation, in one place for every run config: number fields given as strings (YAML reads "1e-4" as a string)
    are converted, bool fields must be true or false, `mixed_precision` must be known, every field's declared
    bounds and choices hold (`check_options`); then the subclass's `check()` applies the rules that involve several
    fields. Errors name the field; all of it runs before any work.
    """

    # options whose bare flag (no value) means something other than true, e.g. {"resume": "latest"}
    BARE_FLAG_VALUES: ClassVar[dict[str, object]] = {}

    def __post_init__(self):
        for name, hint in typing.get_type_hints(type(self)).items():
            if name.isupper() or not hasattr(self, name):
                continue
            value = getattr(self, name)
            kind = _NUMBER_HINTS.get(hint)
            if kind is not None and isinstance(value, str):
                try:
                    setattr(self, name, kind(value))
                except ValueError:
                    raise ValueError(f"{name} must be a number, got {value!r}") from None
            elif hint is bool and not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, got {value!r}")
        if getattr(self, "mixed_precision", "no") not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        check_options(self)
        self.check()

    def check(self) -> None:
        """Rules of one config class (override); raise ValueError naming the field."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    @classmethod
    def field_names(cls) -> list[str]:
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a readable YAML config ({err})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a config must be a YAML mapping of field: value")
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"{path}: unknown config keys {unknown}; valid keys: {cls.field_names()}")
        return cls(**{**values, **overrides})

    @classmethod
    def from_cli(cls, config_path: str | None, flags: list[str]):
        """YAML (optional) + `--field value` overrides; a bare `--flag` sets a bool field to true."""
        overrides = cls.parse_overrides(flags)
        return cls.from_yaml(config_path, **overrides) if config_path else cls(**overrides)

    @classmethod
    def parse_overrides(cls, flags: list[str]) -> dict:
        """`["--learning_rate", "1e-4", "--lora", "--model_overrides", "{embed_dim: 64}"]` -> typed dict (values
        parsed as YAML, except for string fields; list fields also take `a,b` and repeated flags)."""
        hints, names = typing.get_type_hints(cls), cls.field_names()
        overrides, repeated, i = {}, set(), 0
        while i < len(flags):
            flag = flags[i]
            if not flag.startswith("--"):
                raise ValueError(f"expected a --field flag, got {flag!r}")
            name = flag[2:].replace("-", "_")
            if name not in names:
                raise ValueError(f"unknown option {flag}; valid options: --{', --'.join(names)}")
            if i + 1 >= len(flags) or flags[i + 1].startswith("--"):
                if name in cls.BARE_FLAG_VALUES:
                    overrides[name] = cls.BARE_FLAG_VALUES[name]
                elif hints[name] is bool:
                    overrides[name] = True
                else:
                    raise ValueError(f"option {flag} needs a value")
                i += 1
                continue
            raw = flags[i + 1]
            if _is_sequence(hints[name]):
                # `--eval_tasks zero_shot,linear_probe`, `--eval_tasks zero_shot --eval_tasks linear_probe` or
                # YAML `[zero_shot, linear_probe]`; a repeated flag adds to the list
                items = yaml.safe_load(raw) if raw.lstrip().startswith("[") else [
                    yaml.safe_load(item) for item in raw.split(",") if item.strip()]
                overrides[name] = (overrides.get(name, []) if name in repeated else []) + list(items)
                repeated.add(name)
            elif hints[name] == str | None and raw in YAML_NULLS:  # `--eval_split null`, as in the YAML files
                overrides[name] = None
            else:
                overrides[name] = raw if hints[name] in (str, str | None) else yaml.safe_load(raw)
            i += 2
        return overrides
