"""Driver overhead: the same grid of digits MLPs trained six ways, in one process.

Contenders, in this order, each over the same configurations (Dropout x L2, 12 by default), the
same seeds, epochs and batch size, the same train/validation split and the same model builder
(`search_spaces.build_mlp`):

  bare              a plain loop: clear_session, set_random_seed, build, model.fit
  keras-tuner       plain KerasTuner GridSearch with a hypermodel function
  optuna            plain Optuna with a GridSampler and in-memory storage
  ours-optuna       study.campaign.run_campaign, engine "optuna", strategy "grid"
  ours-keras-tuner  study.campaign.run_campaign, engine "keras-tuner", strategy "grid"
  ours-custom       as ours-optuna, with the same MLP given as a custom builder
                    (`model.builder = "__main__:custom_mlp"`, search_spaces.custom)

Our drivers are timed over the whole `run_campaign` call, which does everything `study run` does
besides parsing the file: loading the data, the manifest, the records store, the engine's state on
disk, keeping the best epoch's weights, and evaluating the chosen configuration on the test split.

Every contender seeds each (configuration, seed) run with the seed our trial loop derives for it
(`study.seeding.derive_seed`), so all six start from identical weights. Our runs visit the
training examples in their own seeded order (`study.seeding.data_order`, which population
training shares), the others in `model.fit`'s shuffle, so the best validation accuracy, printed
as a check, agrees between ours-optuna and ours-keras-tuner and between the three others, not
across. ours-custom's configurations hold other keys (its builder's own: none but the searched
and training keys), so its derived seeds, and its check figure, differ too. Our campaigns run
with `population = 1`: one run at a time, as the others train. One small fit runs
before any timing so TensorFlow's start-up cost is not charged to whoever runs first.

Fairness in one process: TensorFlow never frees the graph of a traced training step (the
optimizer's cross-replica all_reduce registers a `CustomGradient-N` function in TF's global
gradient registry, whose closure holds the graph's tensors), so every `model.fit` leaves about ten
thousand Python objects behind that `clear_session` cannot release. Every full garbage collection
(`clear_session(free_memory=True)`, KerasTuner's `gc.collect()`) then scans all that came before,
and in a fixed order the later contenders would pay for the leaks of the earlier ones. So before
each contender the heap is collected and frozen (`gc.collect(); gc.freeze()`): each starts from the
same state and pays only for its own objects. `--no-gc-freeze` turns this off, to see the bias.

    .venv/bin/python benchmarks/overhead.py                 # 12 configurations, 10 epochs, 1 seed
    .venv/bin/python benchmarks/overhead.py --repeat 5 --rotate  # medians; each in every position
    .venv/bin/python benchmarks/overhead.py --epochs 20 --seeds 0 1 2

Target: each of our drivers within 1.10x of the bare loop's wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled


@contextlib.contextmanager
def _stderr_silenced():
    """File descriptor 2 to /dev/null: TensorFlow's C++ start-up lines ignore its log level."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


with _stderr_silenced():
    import keras  # noqa: E402  (imports TensorFlow)

DROPOUT = (0.0, 0.25, 0.5)
L2 = (0.0, 1e-4, 1e-3, 1e-2)
TARGET = 1.10
CONTENDERS = ("bare", "keras-tuner", "optuna", "ours-optuna", "ours-keras-tuner", "ours-custom")
OURS = ("ours-optuna", "ours-keras-tuner", "ours-custom")
OBJECTIVE = "val_accuracy"


def quiet() -> None:
    """TensorFlow, absl and Optuna logging down to errors; no progress bars anywhere."""
    import absl.logging
    import optuna
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    absl.logging.set_verbosity(absl.logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    keras.utils.disable_interactive_logging()


class Setup:
    """What every contender shares: the data, the grid, fixed values and per-run seeds."""

    def __init__(self, epochs: int, seeds: Sequence[int], batch_size: int) -> None:
        from study.config import parse_campaign
        from study.data import load_dataset

        self.epochs, self.seeds, self.batch_size = epochs, tuple(seeds), batch_size
        self.grid = [{"dropout": d, "l2": l2} for d, l2 in itertools.product(DROPOUT, L2)]
        # The campaign our drivers run; its fixed values and seed derivation are used by all.
        self.campaign_raw = {
            "campaign": {
                "name": "overhead",
                "engine": "optuna",
                "strategy": "grid",
                "seeds": list(self.seeds),
                "objective": OBJECTIVE,
                "population": 1,  # one run at a time, as the others train (docs/population.md)
            },
            "data": {"dataset": "digits"},
            "model": {"builder": "mlp"},
            "train": {"epochs": epochs, "batch_size": batch_size},
            "space": {"dropout": list(DROPOUT), "l2": list(L2)},
        }
        self.campaign = parse_campaign(self.campaign_raw, source="overhead benchmark")
        c = self.campaign
        # The same split `run_campaign` loads, so every contender trains and validates alike.
        self.data = load_dataset(
            c.dataset,
            validation_fraction=c.validation_fraction,
            test_fraction=c.test_fraction,
            seed=c.seed,
            limit=c.limit,
        )

    def values(self, searched: dict) -> dict:
        """Every model and training value of one configuration (fixed ones included)."""
        return self.campaign.values(searched)

    def run_seed(self, searched: dict, seed: int) -> int:
        """The seed our trial loop gives this configuration x seed; everyone uses it."""
        from search_spaces import configuration_key
        from study.seeding import derive_seed

        return derive_seed(self.campaign.seed, configuration_key(self.values(searched)), seed)

    def build(self, searched: dict) -> keras.Model:
        from search_spaces import build_mlp

        return build_mlp(
            self.values(searched), input_shape=self.data.input_shape, n_outputs=self.data.n_outputs
        )

    def fit(self, model: keras.Model, **kwargs) -> keras.callbacks.History:
        d = self.data
        return model.fit(
            d.x_train,
            d.y_train,
            validation_data=(d.x_val, d.y_val),
            epochs=self.epochs,
            batch_size=self.batch_size,
            verbose=0,
            **kwargs,
        )


# --- the contenders: each returns the mean over seeds of the best epoch's val_accuracy of the
# --- configuration it chose -----------------------------------------------------------------


def run_bare(s: Setup, _tmp: Path) -> float:
    best = -1.0
    for searched in s.grid:
        scores = []
        for seed in s.seeds:
            keras.utils.clear_session()
            keras.utils.set_random_seed(s.run_seed(searched, seed))
            history = s.fit(s.build(searched))
            scores.append(max(history.history[OBJECTIVE]))
        best = max(best, statistics.fmean(scores))
    return best


def run_keras_tuner(s: Setup, tmp: Path) -> float:
    import keras_tuner as kt

    builds: dict[tuple, int] = {}

    def hypermodel(hp: kt.HyperParameters) -> keras.Model:
        searched = {"dropout": hp.Choice("dropout", list(DROPOUT)), "l2": hp.Choice("l2", list(L2))}
        # One build per execution (one execution per seed); KerasTuner clears the session first.
        key = tuple(searched.values())
        n = builds.get(key, 0)
        builds[key] = n + 1
        keras.utils.set_random_seed(s.run_seed(searched, s.seeds[n % len(s.seeds)]))
        return s.build(searched)

    tuner = kt.GridSearch(
        hypermodel,
        objective=OBJECTIVE,
        executions_per_trial=len(s.seeds),
        directory=str(tmp),
        project_name="kt",
        overwrite=True,
    )
    builds.clear()  # the Tuner built once to find the space; seeds count from the search on
    d = s.data
    tuner.search(
        d.x_train,
        d.y_train,
        validation_data=(d.x_val, d.y_val),
        epochs=s.epochs,
        batch_size=s.batch_size,
        verbose=0,
    )
    return float(tuner.oracle.get_best_trials(1)[0].score)


def run_optuna(s: Setup, _tmp: Path) -> float:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        searched = {
            "dropout": trial.suggest_categorical("dropout", list(DROPOUT)),
            "l2": trial.suggest_categorical("l2", list(L2)),
        }
        scores = []
        for seed in s.seeds:
            keras.utils.clear_session()
            keras.utils.set_random_seed(s.run_seed(searched, seed))
            scores.append(max(s.fit(s.build(searched)).history[OBJECTIVE]))
        return statistics.fmean(scores)

    sampler = optuna.samplers.GridSampler({"dropout": list(DROPOUT), "l2": list(L2)}, seed=0)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(objective, n_trials=len(s.grid))
    return float(study.best_value)


def custom_mlp(values: dict, spec) -> keras.Model:
    """The bare loop's model, as a user's own builder (compiled: study keeps it as it is)."""
    from search_spaces import build_mlp

    return build_mlp(values, input_shape=spec.input_shape, n_outputs=spec.outputs)


def _run_ours(engine: str, builder: str = "mlp") -> Callable[[Setup, Path], float]:
    def run(s: Setup, tmp: Path) -> float:
        from study.campaign import run_campaign
        from study.config import parse_campaign

        raw = {
            **s.campaign_raw,
            "campaign": {**s.campaign_raw["campaign"], "engine": engine},
            "model": {"builder": builder},
        }
        summary = run_campaign(parse_campaign(raw), tmp / "campaign", progress=False)
        return float(summary["validation"]["mean"])

    return run


RUNNERS = {
    "bare": run_bare,
    "keras-tuner": run_keras_tuner,
    "optuna": run_optuna,
    "ours-optuna": _run_ours("optuna"),
    "ours-keras-tuner": _run_ours("keras-tuner"),
    "ours-custom": _run_ours("optuna", "__main__:custom_mlp"),
}


def warm_up(s: Setup) -> None:
    """One small fit (and evaluate), so TensorFlow's one-time start-up is charged to nobody;
    the engines are imported here for the same reason."""
    import keras_tuner  # noqa: F401
    import optuna  # noqa: F401

    import study.campaign  # noqa: F401
    import study.drivers.keras_tuner_driver  # noqa: F401
    import study.drivers.optuna_driver  # noqa: F401

    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    model = s.build(s.grid[-1])
    d = s.data
    model.fit(
        d.x_train,
        d.y_train,
        validation_data=(d.x_val, d.y_val),
        epochs=1,
        batch_size=s.batch_size,
        verbose=0,
    )
    model.evaluate(d.x_test, d.y_test, batch_size=s.batch_size, verbose=0)
    keras.utils.clear_session()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default 10)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="seeds per configuration (default: 0)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="default 64")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of all the contenders; the median per contender is reported",
    )
    parser.add_argument(
        "--rotate",
        action="store_true",
        help="start round r at the r-th contender (order otherwise kept), so that "
        "with --repeat 5 each contender runs once in each position",
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=CONTENDERS,
        default=list(CONTENDERS),
        help="which to run (default all; bare is always run: the ratios divide by it)",
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="do not collect and freeze the heap before each contender",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.epochs < 1 or len(set(args.seeds)) != len(args.seeds):
        parser.error("--repeat and --epochs must be >= 1, and --seeds distinct")

    contenders = [name for name in CONTENDERS if name == "bare" or name in args.contenders]
    quiet()
    setup = Setup(args.epochs, args.seeds, args.batch_size)
    n_runs = len(setup.grid) * len(setup.seeds)
    print(
        f"{len(setup.grid)} configurations (dropout {list(DROPOUT)} x l2 {list(L2)}) x "
        f"{len(setup.seeds)} seed(s) = {n_runs} fits per contender; {args.epochs} epochs, "
        f"batch {args.batch_size}; digits: {len(setup.data.y_train)} train / "
        f"{len(setup.data.y_val)} validation examples",
        flush=True,
    )
    warm_up(setup)

    times: dict[str, list[float]] = {name: [] for name in contenders}
    scores: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(1, args.repeat + 1):
        shift = (round_ - 1) % len(contenders) if args.rotate else 0
        for name in contenders[shift:] + contenders[:shift]:
            keras.utils.clear_session()
            if args.gc_freeze:  # see the module docstring: level the field for each contender
                gc.collect()
                gc.freeze()
            with tempfile.TemporaryDirectory(prefix=f"overhead-{name}-") as tmp:
                start = time.perf_counter()
                score = RUNNERS[name](setup, Path(tmp))
                elapsed = time.perf_counter() - start
            times[name].append(elapsed)
            scores[name].append(score)
            print(
                f"  round {round_}/{args.repeat}  {name:<17} {elapsed:7.2f} s  "
                f"best {OBJECTIVE} {score:.4f}",
                flush=True,
            )

    median = {name: statistics.median(times[name]) for name in contenders}
    print()
    spread = args.repeat > 1
    print(
        f"{'contender':<17} {'wall s':>8}"
        + (f" {'min..max s':>13}" if spread else "")
        + f" {'s/fit':>7} {'x bare':>7}  {'best ' + OBJECTIVE:>18}  target <= {TARGET:.2f}x"
    )
    for name in contenders:
        ratio = median[name] / median["bare"]
        verdict = ("met" if ratio <= TARGET else "MISSED") if name in OURS else ""
        between = f" {min(times[name]):6.2f}..{max(times[name]):<6.2f}" if spread else ""
        print(
            f"{name:<17} {median[name]:8.2f}{between} {median[name] / n_runs:7.3f} "
            f"{ratio:7.3f}  {statistics.fmean(scores[name]):18.4f}  {verdict}"
        )
    if args.repeat > 1:
        rotated = ", order rotated each round" if args.rotate else ""
        print(f"(median of {args.repeat} rounds{rotated}; best {OBJECTIVE}: mean over rounds)")
    if not args.gc_freeze:
        print("(--no-gc-freeze: later contenders also pay to scan the graphs earlier ones leaked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
