"""The campaign file: read, validated up front, resolved with every default filled in.

Every problem is reported with its key (`space.dropout: 1.5 is outside [0, 1)`), all of them at
once, before any data is loaded or model trained. Unknown keys are errors.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from search_spaces import (
    BUILDERS,
    MAX_GRID,
    PRESETS,
    TRAIN_KEYS,
    Builder,
    Choice,
    Condition,
    CustomBuilder,
    Float,
    Int,
    KeySpec,
    ModelSpec,
    Param,
    SearchSpace,
)
from search_spaces.keys import REGULARIZATION_KEYS
from search_spaces.user_code import UserCodeError, find_function, is_import_path
from study.data import SPEC_FORMS, DataError, find_loader, is_loader_spec
from study.native_log import native_chatter_held
from study.results import direction_of

STRATEGIES = {
    "optuna": ("grid", "random", "quasi-random", "tpe"),
    "keras-tuner": ("grid", "random", "bayesian", "hyperband"),
}
PRUNERS = ("none", "median", "hyperband")
TASK_METRICS = {"classification": ("loss", "accuracy"), "regression": ("loss", "mae")}
# A campaign's name is a folder name (runs/<name>), an Optuna study name and a database key.
NAME_RULE = "1 to 100 letters, digits, '.', '_' or '-', not starting with '.'"
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
MAX_SEEDS = 1_000
MAX_POPULATION = 4_096


class ConfigError(ValueError):
    """One or more problems in a campaign file, one line each, each naming its key."""


@dataclass(frozen=True)
class Campaign:
    """A validated campaign. `resolved` is the plain mapping it was built from, defaults filled;
    `builder` is the `Builder` that `model.builder` names."""

    name: str
    engine: str
    strategy: str
    seeds: tuple[int, ...]
    seed: int
    max_trials: int
    objective: str
    pruner: str
    storage: str | None
    max_consecutive_failures: int
    dataset: str
    validation_fraction: float
    test_fraction: float
    limit: int | None
    builder: Builder
    fixed: dict[str, Any]
    space: SearchSpace
    resolved: dict[str, Any]
    deterministic: bool = True
    population: int | str = "auto"  # members trained together (study.population), or 1
    population_masks: str = "member"  # study.population.MASKS
    # The campaign file's folder, where a `py:` dataset's module is looked for before sys.path;
    # not part of `resolved` (a campaign moved elsewhere is the same campaign).
    folder: Path | None = None

    @property
    def direction(self) -> str:
        """Whether the objective is minimized (losses, errors) or maximized."""
        return direction_of(self.objective)

    @property
    def fingerprint(self) -> str:
        """sha256 of the resolved campaign: equal fingerprints train equal trials."""
        text = json.dumps(self.resolved, sort_keys=True, allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def values(self, searched: Mapping[str, Any]) -> dict[str, Any]:
        """Every model and training value of one configuration: fixed ones, then searched ones."""
        return {**self.fixed, **searched}

    @property
    def max_epochs(self) -> int:
        """The most epochs any configuration trains."""
        return int(max(_candidates("epochs", self.fixed, self.space)))

    def n_configurations(self) -> int | None:
        """Configurations the campaign will try: the grid's size, max_trials, or None when the
        engine decides as it goes (Hyperband)."""
        if self.strategy == "hyperband":
            return None
        return self.space.grid_size() if self.strategy == "grid" else self.max_trials


def load_campaign(path: str | Path | None) -> Campaign:
    """Read and validate a campaign file; None gives the built-in default campaign."""
    if path is None:
        text = resources.files("study").joinpath("defaults/campaign.toml").read_text()
        return parse_campaign(tomllib.loads(text), source="default campaign")
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such campaign file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read it ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    return parse_campaign(raw, source=str(path), folder=path.absolute().parent)


def parse_campaign(
    raw: Mapping[str, Any], *, source: str = "campaign", folder: Path | None = None
) -> Campaign:
    """Validate a parsed campaign mapping; raises ConfigError listing every problem.
    `folder`: the campaign file's folder (a `py:` dataset's module may be there)."""
    problems: list[str] = []
    sections = ("campaign", "data", "model", "train", "space")
    for name in raw:
        if name not in sections:
            problems.append(f"{name}: unknown section (expected {', '.join(sections)})")
    tables = {}
    for name in sections:
        table = raw.get(name, {})
        if not isinstance(table, dict):
            problems.append(f"{name}: must be a table, got {table!r}")
            table = {}
        tables[name] = table
    reader = _Reader(problems)

    c = reader.section("campaign", tables["campaign"], _CAMPAIGN_KEYS)
    d = reader.section("data", tables["data"], _DATA_KEYS)
    if isinstance(d["dataset"], str) and not _is_dataset_spec(d["dataset"]):
        problems.append(f"data.dataset: {d['dataset']!r} is not a dataset (forms: {SPEC_FORMS})")
    # The user's modules are imported now, so that a typo is answered before any work (they
    # may import Keras, and with it the backend's start-up chatter, held back here).
    with native_chatter_held():
        if isinstance(d["dataset"], str) and is_loader_spec(d["dataset"]):
            try:
                find_loader(d["dataset"], folder)
            except DataError as error:
                problems.append(str(error))
        builder = _builder(tables, folder, problems)
    model_keys = {"builder": KeySpec(str, "mlp")} | builder.keys
    m = reader.section("model", tables["model"], model_keys)
    t = reader.section("train", tables["train"], TRAIN_KEYS)
    space = reader.space(tables["space"], builder)

    if space is not None:
        problems += _combination_problems(c, tables, m | t, space)
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))

    fixed = {k: v for k, v in (m | t).items() if k != "builder" and k not in space.params}
    resolved = {
        "campaign": c,
        "data": d,
        "model": m,
        "train": t,
        "space": json.loads(space.to_json()),
    }
    return Campaign(
        name=c["name"],
        engine=c["engine"],
        strategy=c["strategy"],
        seeds=tuple(c["seeds"]),
        seed=c["seed"],
        max_trials=c["max_trials"],
        objective=c["objective"],
        pruner=c["pruner"],
        storage=c["storage"],
        max_consecutive_failures=c["max_consecutive_failures"],
        dataset=d["dataset"],
        validation_fraction=d["validation_fraction"],
        test_fraction=d["test_fraction"],
        limit=d["limit"],
        builder=builder,
        fixed=fixed,
        space=space,
        resolved=resolved,
        deterministic=c["deterministic"],
        population=c["population"],
        population_masks=c["population_masks"],
        folder=folder,
    )


def _builder(tables: dict[str, Any], folder: Path | None, problems: list[str]) -> Builder:
    """The builder `model.builder` names: a built-in one, or the user's function (imported now,
    so that a typo is answered before any work) with the keys the campaign file types."""
    name = tables["model"].get("builder", "mlp")
    if isinstance(name, str) and is_import_path(name):
        try:
            find_function(name, folder)
        except UserCodeError as error:
            problems.append(f"model.builder: {name}: {error}")
        if "preset" in tables["space"]:
            problems.append(
                "space.preset: presets search the built-in builders' keys; list the keys of "
                f"{name} to search in [space]"
            )
        keys = _custom_keys(tables["model"], tables["space"], problems)
        return CustomBuilder(name, keys, folder=None if folder is None else str(folder))
    if not isinstance(name, str) or name not in BUILDERS:
        problems.append(
            f"model.builder: {_clip(name)} is not one of {', '.join(BUILDERS)}, nor an import "
            "path package.module:function"
        )
        name = "mlp"
    return BUILDERS[name]


def _custom_keys(
    model: Mapping[str, Any], space: Mapping[str, Any], problems: list[str]
) -> dict[str, KeySpec]:
    """A custom builder's keys: any name in [model] or [space], typed by its values (a [model]
    value is also its default). The regularization keys keep their specs and meaning."""
    keys: dict[str, KeySpec] = {}
    for section, table in (("model", model), ("space", space)):
        for name, value in table.items():
            if name in ("builder", "preset") or (section == "space" and name in TRAIN_KEYS):
                continue
            key = f"{section}.{name}"
            if name in TRAIN_KEYS:
                problems.append(f"{key}: a training key; set it in [train]")
            elif name in REGULARIZATION_KEYS:
                keys[name] = REGULARIZATION_KEYS[name]
            elif section == "model":
                kind = _kind_of(key, value, problems)
                keys[name] = KeySpec(kind, value, per_layer=isinstance(value, list))
            elif name not in keys:
                if isinstance(value, dict):
                    value = value.get("values", [value.get("low"), value.get("high")])
                keys[name] = KeySpec(_kind_of(key, value, problems), None)
    return keys


def _kind_of(key: str, value: Any, problems: list[str]) -> type:
    """The type of a value, or of a list's values (ints among floats are floats)."""
    values = value if isinstance(value, list) else [value]
    kinds = {type(v) for v in values if v is not None}
    if kinds == {int, float}:
        return float
    if len(kinds) == 1 and next(iter(kinds)) in (bool, int, float, str):
        return next(iter(kinds))
    what = "values of different types" if len(kinds) > 1 else f"{_clip(value)}"
    problems.append(
        f"{key}: {what}; a key of a custom builder takes one of true/false, integers, numbers "
        "or strings (or, in [model], a list of one of them)"
    )
    return object


def check_against_data(campaign: Campaign, input_shape: tuple[int, ...], task: str) -> None:
    """Problems only the data reveals: a CNN on flat features, an objective the task lacks."""
    problems = []
    if campaign.builder.needs_images and len(input_shape) != 3:
        problems.append(
            f"model.builder: {campaign.builder.name} needs images (height, width, channels); "
            f"{campaign.dataset} has examples of shape {input_shape}"
        )
    metrics = [f"val_{m}" for m in TASK_METRICS[task]]
    if campaign.objective not in metrics:
        problems.append(
            f"campaign.objective: {campaign.objective} is not computed for {task} data "
            f"(choose {' or '.join(metrics)})"
        )
    if problems:
        raise ConfigError("\n".join(problems))


def check_custom_model(campaign: Campaign, data: Any) -> None:
    """A custom builder's model for the first configuration (each searched key at its first
    value or low end), built and called on two training examples: a builder that raises,
    returns no Keras model, or whose output does not fit the data is refused before any run."""
    builder = campaign.builder
    if not isinstance(builder, CustomBuilder):
        return
    first = campaign.space.from_unit(dict.fromkeys(campaign.space.params, 0.0))
    spec = ModelSpec(data.input_shape, data.n_outputs, data.task)
    try:
        builder.check(campaign.values(first), spec, data.x_train[:2])
    except UserCodeError as error:
        raise ConfigError(f"model.builder: {builder.name}: {error}") from None


def _combination_problems(
    c: dict[str, Any], tables: dict[str, Any], fixed: dict[str, Any], space: SearchSpace
) -> list[str]:
    """Problems between keys: strategy and engine, fixed and searched, layer lists and counts."""
    problems = []
    if c["strategy"] not in STRATEGIES.get(c["engine"], ()):
        allowed = ", ".join(STRATEGIES.get(c["engine"], ()))
        problems.append(f"campaign.strategy: {c['engine']} offers {allowed}, not {c['strategy']!r}")
    if c["pruner"] != "none" and c["engine"] != "optuna":
        problems.append(
            'campaign.pruner: only the optuna engine prunes (use strategy = "hyperband")'
        )
    if c["storage"] is not None and c["engine"] != "optuna":
        problems.append("campaign.storage: only the optuna engine takes a storage URL")
    if isinstance(c["name"], str) and not _NAME.fullmatch(c["name"]):
        problems.append(
            f"campaign.name: {_clip(c['name'])} is not a safe name ({NAME_RULE}); it names the "
            "folder runs/<name> and the Optuna study"
        )
    population = c["population"]
    if population != "auto" and not (
        isinstance(population, int)
        and not isinstance(population, bool)
        and 1 <= population <= MAX_POPULATION
    ):
        problems.append(
            f"campaign.population: {_clip(population)} is not an integer in "
            f'[1, {MAX_POPULATION:,}] or "auto" '
            "(the number of runs trained together; 1 = one at a time)"
        )
    all_metrics = sorted({f"val_{m}" for metrics in TASK_METRICS.values() for m in metrics})
    if c["objective"] not in all_metrics:
        problems.append(
            f"campaign.objective: {c['objective']!r} is not one of {', '.join(all_metrics)} "
            "(the validation split chooses; the test split never does)"
        )
    seeds = c["seeds"]
    if not isinstance(seeds, list):
        problems.append("campaign.seeds: must be a list of integers, like [0, 1, 2]")
    elif not seeds or len(set(map(repr, seeds))) != len(seeds):
        problems.append(f"campaign.seeds: needs one or more distinct seeds, got {_clip(seeds)}")
    elif len(seeds) > MAX_SEEDS:
        problems.append(f"campaign.seeds: {len(seeds):,} seeds, more than {MAX_SEEDS:,}")
    for name, param in space.params.items():
        section = "train" if name in TRAIN_KEYS else "model"
        if name in tables[section]:
            problems.append(f"space.{name}: also fixed in {section}.{name}; keep one")
        if c["strategy"] == "grid" and isinstance(param, Float) and param.step is None:
            problems.append(f"space.{name}: a grid needs a list or a range with a step")
    problems += _grid_problems(c["strategy"], space)
    if c["strategy"] == "hyperband" and "epochs" in space.params:
        problems.append("space.epochs: hyperband chooses the epochs itself; fix train.epochs")
    for list_key, count_key in (("units", "hidden_layers"), ("filters", "conv_blocks")):
        lists = [v for v in _candidates(list_key, fixed, space) if isinstance(v, list)]
        counts = _candidates(count_key, fixed, space)
        for value in lists:
            mismatched = [n for n in counts if n != len(value)]
            if mismatched:
                section = "space" if list_key in space.params else "model"
                problems.append(
                    f"{section}.{list_key}: {len(value)} values, "
                    f"but {count_key} may be {mismatched[0]}"
                )
    return problems


def _grid_problems(strategy: str, space: SearchSpace) -> list[str]:
    """A grid above MAX_GRID configurations, counted without listing it (KerasTuner's grid
    lists each parameter's values, so this bounds each parameter too)."""
    continuous = any(isinstance(p, Float) and p.step is None for p in space.params.values())
    if strategy != "grid" or continuous:
        return []
    size = space.grid_size()
    if size <= MAX_GRID:
        return []
    counts = sorted(((p.count(), n) for n, p in space.params.items()), reverse=True)
    keys = ", ".join(f"{name}: {count:,} values" for count, name in counts if count > 1)
    return [
        f"space: the grid has {size:,} configurations ({keys}), more than the limit of "
        f"{MAX_GRID:,}; use fewer values or a larger step, or a strategy that tries max_trials"
    ]


def _candidates(key: str, fixed: Mapping[str, Any], space: SearchSpace) -> list[Any]:
    """The values `key` may take: a list's values, a range's ends, else its fixed value."""
    if key in space.params:
        param = space.params[key]
        if isinstance(param, Int):
            return [param.low, param.point(param.count() - 1)]
        if isinstance(param, Float):
            return [param.low, param.high]
        return list(param.grid_values())
    return [fixed[key]] if key in fixed else []


def _clip(value: Any, width: int = 40) -> str:
    """repr(value), cut to `width` characters (a 5,000-character name is not repeated whole)."""
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 3]}..."


_CAMPAIGN_KEYS = {
    "name": KeySpec(str, "campaign", doc=NAME_RULE),
    "engine": KeySpec(str, "optuna", choices=tuple(STRATEGIES)),
    "strategy": KeySpec(
        str, "grid", choices=tuple(sorted({s for v in STRATEGIES.values() for s in v}))
    ),
    "seeds": KeySpec(int, [0], low=-(2**31), high=2**31 - 1, per_layer=True),
    "seed": KeySpec(
        int,
        0,
        low=0,
        high=2**31 - 1,
        doc="seeds the sampler, the validation split, `limit`, and every run's derived seed",
    ),
    "max_trials": KeySpec(int, 20, low=1, high=100_000),
    "objective": KeySpec(str, "val_accuracy"),
    "pruner": KeySpec(str, "none", choices=PRUNERS),
    "storage": KeySpec(str, None, doc="Optuna storage URL; default: SQLite in the campaign folder"),
    "max_consecutive_failures": KeySpec(int, 5, low=1, high=100_000),
    "deterministic": KeySpec(
        bool, True, doc="deterministic ops (TensorFlow op determinism); reruns give equal curves"
    ),
    "population": KeySpec(
        object,
        "auto",
        doc="train up to this many configurations x seeds of one architecture together; "
        '"auto": up to 32 where it applies (study.population.population_size); 1: one at a time',
    ),
    "population_masks": KeySpec(
        str,
        "member",
        choices=("member", "population"),
        doc="Dropout masks in a population: each member's own, or one draw for all (faster)",
    ),
}
_DATA_KEYS = {
    "dataset": KeySpec(str, "digits"),
    "validation_fraction": KeySpec(float, 0.2, low=0.01, high=0.99),
    "test_fraction": KeySpec(float, 0.2, low=0.01, high=0.99),
    "limit": KeySpec(
        int, None, low=10, doc="keep this many examples for training and validation together"
    ),
}
_RANGE_KEYS = {"low", "high", "log", "step", "when"}
_CHOICE_KEYS = {"values", "when"}


class _Reader:
    """Reads tables against key specs, appending each problem (with its key) to `problems`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def value(self, key: str, spec: KeySpec, value: Any) -> Any:
        if spec.per_layer and isinstance(value, list):
            value = [spec.coerce(v) for v in value]
        else:
            value = spec.coerce(value)
        problem = spec.check(value)
        if problem:
            self.problems.append(f"{key}: {problem}")
        return value

    def section(self, name: str, table: Mapping[str, Any], specs: Mapping[str, KeySpec]) -> dict:
        out = {k: spec.default for k, spec in specs.items()}
        for key, value in table.items():
            if key not in specs:
                self.problems.append(f"{name}.{key}: unknown key{_suggest(key, specs)}")
            else:  # a bad value is reported once; later checks see the default
                known = len(self.problems)
                value = self.value(f"{name}.{key}", specs[key], value)
                out[key] = value if len(self.problems) == known else specs[key].default
        return out

    def space(self, table: Mapping[str, Any], builder: Builder) -> SearchSpace | None:
        specs = builder.keys | TRAIN_KEYS
        params: dict[str, Param] = {}
        table = dict(table)
        preset = table.pop("preset", None)
        if preset is not None:
            if not isinstance(preset, str) or preset not in PRESETS:
                self.problems.append(
                    f"space.preset: {_clip(preset)} is not one of {', '.join(PRESETS)}"
                )
            else:
                params.update(PRESETS[preset](builder.name).params)
        for name, value in table.items():
            key = f"space.{name}"
            if name not in specs:
                self.problems.append(f"{key}: unknown key{_suggest(name, specs)}")
                continue
            param = self.param(key, specs[name], value, params)
            if param is not None:
                params[name] = param
        try:
            return SearchSpace(params)
        except ValueError as error:
            self.problems.append(f"space: {error}")
            return None

    def param(
        self, key: str, spec: KeySpec, value: Any, before: Mapping[str, Param]
    ) -> Param | None:
        spec = replace(spec, per_layer=False)  # one width for all layers: a list is refused
        if isinstance(value, list):
            value = {"values": value}
        if not isinstance(value, dict):
            self.problems.append(
                f"{key}: a searched value is a list or a range table; fix a single value in "
                f"[model] or [train]"
            )
            return None
        allowed = _CHOICE_KEYS if "values" in value else _RANGE_KEYS
        unknown = sorted(set(value) - allowed)
        if unknown:
            self.problems.append(
                f"{key}: unknown field {unknown[0]!r} (expected {', '.join(sorted(allowed))})"
            )
            return None
        known = len(self.problems)
        condition = self.condition(key, value.get("when"), before)
        try:
            if "values" in value and not isinstance(value["values"], list):
                self.problems.append(f"{key}.values: must be a list, got {_clip(value['values'])}")
                return None
            if "values" in value:
                if any(isinstance(v, (list, dict)) for v in value["values"]):
                    self.problems.append(
                        f"{key}: a choice of lists is not supported; search {key[6:]} as one "
                        "value for every layer, or fix the list in [model]"
                    )
                    return None
                values = tuple(self.value(key, spec, v) for v in value["values"])
                return Choice(values, condition=condition)
            if "low" not in value or "high" not in value:
                self.problems.append(f"{key}: a range needs low and high")
                return None
            low, high = (self.value(key, spec, value[b]) for b in ("low", "high"))
            log = self.value(f"{key}.log", KeySpec(bool, False), value.get("log", False))
            step = value.get("step")
            if step is not None and spec.kind in (int, float):
                step = self.value(f"{key}.step", KeySpec(spec.kind, None, low=0), step)
            if len(self.problems) > known:
                return None
            if spec.kind is int:
                step = 1 if step is None else step
                return Int(low, high, step=step, log=log, condition=condition)
            if spec.kind is float:
                return Float(low, high, log=log, step=step, condition=condition)
            self.problems.append(f"{key}: {spec.kind.__name__} values take a list, not a range")
        except (ValueError, TypeError) as error:
            self.problems.append(f"{key}: {error}")
        return None

    def condition(self, key: str, when: Any, before: Mapping[str, Param]) -> Condition | None:
        if when is None:
            return None
        if not isinstance(when, dict) or len(when) != 1:
            self.problems.append(
                f'{key}.when: must be one table entry, like {{ regularizer = ["l1"] }}'
            )
            return None
        ((parent, values),) = when.items()
        if parent not in before:
            self.problems.append(f"{key}.when: {parent!r} must be a searched key listed before it")
            return None
        values = tuple(values) if isinstance(values, list) else (values,)
        problem = _never_taken(before[parent], values)
        if problem:
            self.problems.append(f"{key}.when: {parent} {problem}")
            return None
        return Condition(parent, values)


def _never_taken(parent: Param, values: tuple[Any, ...]) -> str | None:
    """What is wrong with a condition on `parent` that names `values`, if anything."""
    if not values:
        return "needs one or more values"
    if isinstance(parent, Float) and parent.step is None:
        return "is a continuous range, which takes no value exactly; give it a list or a step"
    taken = parent.points_among(values)
    never = [v for v in values if v not in taken]
    if not never:
        return None
    if isinstance(parent, (Int, Float)):
        takes = f"{parent.low} to {parent.high} in steps of {parent.step}"
    else:
        takes = ", ".join(map(repr, parent.grid_values()))
    return f"never takes {_clip(never[0])} (it takes {takes})"


def _is_dataset_spec(spec: str) -> bool:
    """The forms of SPEC_FORMS: a dataset name, `idx:`, `npz:` or `csv:` and a path, or
    `py:module:function`."""
    kind, sep, arg = spec.partition(":")
    return (
        (not sep and spec in ("digits", "mnist", "fashion_mnist", "cifar10"))
        or (kind in ("idx", "npz", "csv") and bool(arg))
        or is_loader_spec(spec)
    )


def _suggest(key: str, specs: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(specs), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (expected one of {', '.join(specs)})"
