"""Population training: each member trains as the same configuration would alone."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import study.executor
from search_spaces import BUILDERS, MLP
from search_spaces.stacked import member_initial_state
from study import records
from study.campaign import run_campaign, weights_path
from study.config import ConfigError, parse_campaign
from study.data import load_dataset
from study.population import (
    Member,
    architecture_key,
    evaluate_population,
    plan_populations,
    population_size,
    train_population,
)
from study.seeding import seed_everything
from study.trial import evaluate_run, train_run
from tests.conftest import tiny_campaign

TINY = {"hidden_layers": 1, "units": 16, "epochs": 2, "batch_size": 128}
CURVES = ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _train_alone(values, seed, data, weights_path=None):
    return train_run(
        values,
        builder=MLP,
        data=data,
        seed=seed,
        objective="val_accuracy",
        direction="maximize",
        weights_path=weights_path,
    )


def _train_together(members, data):
    return train_population(
        members, builder=MLP, data=data, objective="val_accuracy", direction="maximize"
    )


CNN = {  # a tiny CNN on digits' 8 x 8 images
    "conv_blocks": 2,
    "filters": [4, 6],
    "dense_layers": 1,
    "dense_units": 16,
    "epochs": 2,
    "batch_size": 128,
}


@pytest.mark.parametrize(
    "builder, values",
    [
        ("mlp", {"hidden_layers": 1, "units": 16}),
        ("mlp", {"hidden_layers": 2, "units": [16, 8], "dropout": 0.5, "input_dropout": 0.2}),
        ("mlp", {"hidden_layers": 0, "l2": 1e-3}),
        ("cnn", CNN | {"convs_per_block": 2, "block_dropout": 0.2, "spatial_dropout": True}),
        ("cnn", CNN | {"pooling": "none", "dense_layers": 0, "dropout": 0.5}),
        ("cnn", CNN | {"pooling": "average", "block_dropout": 0.3, "dropout": 0.5}),
    ],
)
def test_initial_state_is_the_builders_bit_for_bit(builder, values):
    builder = BUILDERS[builder]
    values = builder.complete(values)
    seed_everything(1234)
    model = builder.build(values, input_shape=(8, 8, 1), n_outputs=10)
    state = member_initial_state(values, 1234, builder.layers(values, (8, 8, 1), 10))
    kernels = [w for w in model.weights if w.path.endswith("kernel")]
    assert len(kernels) == len(state["kernels"])
    for kernel, expected in zip(kernels, state["kernels"], strict=True):
        assert np.array_equal(np.asarray(kernel), expected)
    dropouts = {
        layer.name: int(np.asarray(layer.seed_generator.state)[0])
        for layer in model.layers
        if hasattr(layer, "seed_generator")
    }
    assert dropouts == state["dropout_seeds"]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_member_masks_are_keras_dropouts_to_the_bit(shared, spatial, dtype):
    """`masks="member"`: each member's Dropout, step after step, is `keras.random.dropout` from
    the seed generator its own Dropout layer would own, bit for bit (no tolerance)."""
    import keras

    from search_spaces.stacked import StackedModel

    builder, key = (BUILDERS["cnn"], "block_dropout") if spatial else (MLP, "dropout")
    base = CNN | {"spatial_dropout": True} if spatial else TINY
    rates, seeds = [0.5, 0.0, 0.1, 0.25], [3, 4, 5, 6]
    values = [builder.complete(base | {key: r}) for r in rates]
    model = StackedModel(
        values, seeds, builder=builder, input_shape=(8, 8, 1), n_outputs=10, task="classification"
    )
    layer = next(lay for lay in model.plan if getattr(lay, "key", None) == key)
    initial = [member_initial_state(v, s, model.plan) for v, s in zip(values, seeds, strict=True)]
    generators = {
        k: keras.random.SeedGenerator(initial[k]["dropout_seeds"][layer.name])
        for k in range(len(rates))
        if rates[k] > 0
    }
    sample = (4, 4, 3) if spatial else (5,)
    rng = np.random.default_rng(0)
    for _ in range(3):  # steps
        x = rng.normal(size=((6,) if shared else (4, 6)) + sample).astype(dtype)
        got, _ = model._dropout(keras.ops.convert_to_tensor(x), layer, shared, training=True)
        for k, rate in enumerate(rates):
            part = x if shared else x[k]
            if rate > 0:
                noise = (6, 1, 1, 3) if spatial else None
                part = keras.random.dropout(part, rate, noise_shape=noise, seed=generators[k])
            assert np.array_equal(np.asarray(got[k]), np.asarray(part))


@pytest.mark.parametrize("shared", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_one_trace_of_the_training_step_serves_every_batch_size(digits, shared):
    """`StackedModel.train_batch` traces once for a full and a shorter batch, and trains as
    Keras's own `train_on_batch` does: the same weights, the same metrics (the loss of members
    with a penalty to its last bits)."""
    from search_spaces.stacked import StackedModel, member_optimizer

    values = [MLP.complete(TINY | v) for v, _ in MEMBERS]
    seeds = [s for _, s in MEMBERS]

    def model() -> StackedModel:
        stacked = StackedModel(
            values,
            seeds,
            builder=MLP,
            input_shape=digits.input_shape,
            n_outputs=digits.n_outputs,
            task="classification",
        )
        stacked.compile(optimizer=member_optimizer(values))
        return stacked

    ours, keras_own = model(), model()
    rng = np.random.default_rng(0)
    for size in (32, 32, 7, 32):  # a shorter batch between full ones
        rows = rng.permutation(len(digits.x_train))[:size]
        if not shared:
            rows = np.stack([np.roll(rows, k) for k in range(len(values))])
        x, y = digits.x_train[rows], digits.y_train[rows]
        got, expected = ours.train_batch(x, y), keras_own.train_on_batch(x, y, return_dict=True)
        assert got.keys() == expected.keys()
        np.testing.assert_array_equal(got["accuracy"], expected["accuracy"])
        np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-6)
    assert ours._step_for_any_batch.experimental_get_tracing_count() == 1
    for a, b in zip(ours.get_weights(), keras_own.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


MEMBERS = [  # one architecture, different regularization (Dropout included) and seeds
    ({"dropout": 0.0, "l2": 0.0}, 11),
    ({"dropout": 0.0, "l2": 1e-3}, 12),
    ({"dropout": 0.0, "l1": 1e-4}, 13),
    ({"dropout": 0.5, "l1": 1e-5, "l2": 1e-3}, 14),
    ({"dropout": 0.25, "learning_rate": 3e-3}, 15),  # its own learning rate
]


@pytest.fixture(scope="module")
def side_by_side(digits, tmp_path_factory):
    """MEMBERS trained alone (study.trial.train_run) and as one population."""
    folder = tmp_path_factory.mktemp("weights")
    alone = [_train_alone(TINY | v, s, digits, folder / f"alone-{s}.npz") for v, s in MEMBERS]
    members = [Member(TINY | v, s, folder / f"together-{s}.npz") for v, s in MEMBERS]
    together = _train_together(members, digits)
    return folder, alone, together


@pytest.mark.slow
def test_each_member_matches_its_run_alone(side_by_side):
    _, alone, together = side_by_side
    for one, member in zip(alone, together, strict=True):
        assert one.status == member.status == "COMPLETE"
        assert list(member.history) == list(one.history)  # the same columns, in the same order
        for column in CURVES:
            np.testing.assert_allclose(member.history[column], one.history[column], **TOLERANCE)


@pytest.mark.slow
def test_best_weights_evaluate_like_the_run_alone(side_by_side, digits):
    folder, _, _ = side_by_side
    for values, seed in MEMBERS:
        scores = [
            evaluate_run(
                TINY | values, builder=MLP, data=digits, weights_path=folder / f"{how}-{seed}.npz"
            )
            for how in ("alone", "together")
        ]
        assert scores[0]["accuracy"] == pytest.approx(scores[1]["accuracy"], abs=1e-9)
        assert scores[0]["loss"] == pytest.approx(scores[1]["loss"], rel=1e-4)


@pytest.mark.slow
def test_one_pass_over_the_population_evaluates_like_each_run(side_by_side, digits):
    folder, _, _ = side_by_side
    members = [Member(TINY | v, s, folder / f"together-{s}.npz") for v, s in MEMBERS]
    together = evaluate_population(members, builder=MLP, data=digits)
    for member, scores in zip(members, together, strict=True):
        alone = evaluate_run(
            member.values, builder=MLP, data=digits, weights_path=member.weights_path
        )
        assert list(scores) == list(alone)  # the same metrics, in the same order
        assert scores["accuracy"] == pytest.approx(alone["accuracy"], abs=1e-9)
        assert scores["loss"] == pytest.approx(alone["loss"], rel=1e-5)


CNN_MEMBERS = [  # Dropout in the blocks and the head, L1/L2, learning rates
    ({"l2": 0.0}, 41),
    ({"block_dropout": 0.25, "dropout": 0.5, "l2": 1e-3}, 42),
    ({"block_dropout": 0.1, "l1": 1e-4, "learning_rate": 3e-3}, 43),
]


@pytest.mark.slow
@pytest.mark.parametrize("shared", [{}, {"spatial_dropout": True, "pooling": "average"}])
def test_cnn_members_match_their_runs_alone(digits, shared):
    kw = dict(builder=BUILDERS["cnn"], data=digits, objective="val_accuracy", direction="maximize")
    members = [Member(CNN | shared | v, s) for v, s in CNN_MEMBERS]
    alone = [train_run(m.values, seed=m.seed, **kw) for m in members]
    together = train_population(members, **kw)
    for one, member in zip(alone, together, strict=True):
        assert one.status == member.status == "COMPLETE"
        for column in CURVES:
            np.testing.assert_allclose(member.history[column], one.history[column], **TOLERANCE)


@pytest.mark.slow
def test_one_mask_draw_changes_only_the_cnn_members_with_dropout(digits):
    kw = dict(builder=BUILDERS["cnn"], data=digits, objective="val_accuracy", direction="maximize")
    members = [Member(CNN | {"spatial_dropout": True} | v, s) for v, s in CNN_MEMBERS]
    exact, one_draw = (train_population(members, masks=m, **kw) for m in ("member", "population"))
    assert [r.status for r in one_draw] == ["COMPLETE"] * len(members)
    np.testing.assert_allclose(  # the first member has no Dropout
        one_draw[0].history["val_loss"], exact[0].history["val_loss"], **TOLERANCE
    )
    for a, b in zip(one_draw[1:], exact[1:], strict=True):
        assert a.history["train_loss"] != b.history["train_loss"]  # other masks
        assert np.isfinite(a.history["val_loss"]).all()


@pytest.mark.slow
@pytest.mark.parametrize("order", ["member", "shared"])  # one batch per member, or one for all
def test_grouped_convolution_trains_as_the_members_convolutions(digits, order):
    """conv="grouped" (one convolution with K groups, for GPUs) trains as "loop" does."""
    members = [Member(CNN | v | {"epochs": 1}, s) for v, s in CNN_MEMBERS]
    kw = dict(builder=BUILDERS["cnn"], data=digits, objective="val_accuracy", direction="maximize")
    grouped, loop = (
        train_population(members, conv=c, order=order, **kw) for c in ("grouped", "loop")
    )
    for a, b in zip(grouped, loop, strict=True):
        assert a.status == b.status == "COMPLETE"
        for column in CURVES:
            np.testing.assert_allclose(a.history[column], b.history[column], **TOLERANCE)


@pytest.mark.slow
def test_with_dropout_final_accuracy_has_the_same_distribution(digits):
    values = TINY | {"dropout": 0.5}
    seeds = list(range(100, 108))
    alone = [_train_alone(values, s, digits).history["val_accuracy"][-1] for s in seeds]
    results = _train_together([Member(values, s) for s in seeds], digits)
    together = [r.history["val_accuracy"][-1] for r in results]
    assert np.std(alone) > 0  # the seeds do vary the outcome
    assert stats.ttest_ind(together, alone, equal_var=False).pvalue > 0.05


@pytest.mark.slow
def test_a_diverging_member_fails_alone(digits):
    members = [Member(TINY, 21), Member(TINY | {"l2": 1e38}, 22), Member(TINY, 23)]
    results = _train_together(members, digits)
    assert [r.status for r in results] == ["COMPLETE", "FAILED", "COMPLETE"]
    assert results[1].failure.startswith("diverged: training loss")
    assert len(results[1].history["train_loss"]) == 1  # stopped after its first epoch
    for r in results[::2]:
        assert len(r.history["val_accuracy"]) == 2 and np.isfinite(r.history["val_loss"]).all()
    # The survivors are unaffected: the same curves as in a population without it.
    pair = _train_together([members[0], members[2]], digits)
    for kept, again in zip(results[::2], pair, strict=True):
        np.testing.assert_allclose(kept.history["val_loss"], again.history["val_loss"], rtol=1e-5)


@pytest.mark.slow
def test_regression_members_match_their_runs_alone(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype("float32")
    np.savez(tmp_path / "regression.npz", x=x, y=x @ np.array([1.0, -2.0, 3.0, 0.5]))
    data = load_dataset(f"npz:{tmp_path / 'regression.npz'}", seed=0)
    values = TINY | {"optimizer": "sgd", "learning_rate": 0.01, "batch_size": 32}
    members = [
        Member(values, 31),
        Member(values | {"l2": 1e-2, "dropout": 0.25}, 32),
        Member(values | {"learning_rate": 0.03}, 33),
    ]
    kw = dict(builder=MLP, data=data, objective="val_mae", direction="minimize")
    alone = [train_run(m.values, seed=m.seed, **kw) for m in members]
    together = train_population(members, **kw)
    for one, member in zip(alone, together, strict=True):
        assert list(member.history) == ["train_loss", "train_mae", "val_loss", "val_mae"]
        for column in member.history:
            np.testing.assert_allclose(member.history[column], one.history[column], **TOLERANCE)


@pytest.mark.slow
def test_shared_order_and_one_mask_draw_are_close_in_distribution(digits):
    """The fast options (all members in one order, one Dropout draw): not curve for curve, but
    the same final accuracy on average as the exact population."""
    values = TINY | {"dropout": 0.5}
    members = [Member(values, s) for s in range(200, 208)]
    exact = _train_together(members, digits)
    fast = train_population(
        members,
        builder=MLP,
        data=digits,
        objective="val_accuracy",
        direction="maximize",
        masks="population",
        order="shared",
    )
    finals = [[r.history["val_accuracy"][-1] for r in results] for results in (exact, fast)]
    assert finals[0] != finals[1]  # other masks and batches
    assert stats.ttest_ind(finals[1], finals[0], equal_var=False).pvalue > 0.05


def test_architecture_key_and_plan():
    assert architecture_key(TINY | {"dropout": 0.5}, MLP) == architecture_key(
        TINY | {"l1": 1e-3, "regularizer": "l1"}, MLP
    )
    assert architecture_key(TINY, MLP) != architecture_key(TINY | {"units": 32}, MLP)
    assert architecture_key(TINY, MLP) == architecture_key(TINY | {"learning_rate": 1e-2}, MLP)
    assert architecture_key(TINY, MLP) != architecture_key(TINY | {"momentum": 0.9}, MLP)
    assert architecture_key(TINY | {"batch_norm": True}, MLP) is None
    cnn = BUILDERS["cnn"]
    assert architecture_key(CNN | {"block_dropout": 0.1}, cnn) == architecture_key(CNN, cnn)
    assert architecture_key(CNN, cnn) != architecture_key(CNN | {"spatial_dropout": True}, cnn)
    assert architecture_key(CNN | {"batch_norm": True}, cnn) is None
    runs = [(i, TINY | {"units": 16 if i < 5 else 32}) for i in range(6)]
    groups, alone = plan_populations(runs, builder=MLP, size=3)
    assert groups == [[0, 1, 2], [3, 4]] and alone == [5]


def test_population_size():
    assert population_size(1, pruner="none") == (1, "")
    assert population_size("auto", pruner="none") == (32, "")
    size, why = population_size(8, pruner="median")
    assert size == 1 and "pruning" in why
    # "auto" (the default) trains one at a time with --isolate and in shared workers; K does not.
    size, why = population_size("auto", pruner="none", isolated=True)
    assert size == 1 and "--isolate" in why
    size, why = population_size("auto", pruner="none", shared=True)
    assert size == 1 and "workers" in why
    assert population_size(8, pruner="none", isolated=True, shared=True) == (8, "")


def test_populations_are_of_near_equal_sizes():
    runs = [(i, TINY) for i in range(33)]
    groups, alone = plan_populations(runs, builder=MLP, size=32)
    assert [len(g) for g in groups] == [17, 16] and alone == []
    assert sorted(t for g in groups for t in g) == list(range(33))


@pytest.mark.parametrize("value", [0, -2, "many", True, 2.5])
def test_population_key_is_validated(value):
    with pytest.raises(ConfigError, match="campaign.population"):
        parse_campaign(tiny_campaign(campaign={"population": value}))


@pytest.mark.parametrize("value", [1, 4, "auto"])
def test_population_key_accepts(value):
    assert parse_campaign(tiny_campaign(campaign={"population": value})).population == value


def test_population_masks_key():
    assert parse_campaign(tiny_campaign()).population_masks == "member"
    with pytest.raises(ConfigError, match="campaign.population_masks"):
        parse_campaign(tiny_campaign(campaign={"population_masks": "mine"}))


@pytest.fixture(scope="module")
def sequential_grid(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sequential")
    run_campaign(
        parse_campaign(tiny_campaign(campaign={"population": 1})), directory, progress=False
    )
    return records.load(directory)


def _curves(frames):
    trials, epochs = frames
    params = trials.drop_duplicates("trial").set_index("trial")[["param_dropout", "param_l2"]]
    curves = epochs.join(params, on="trial").drop(columns="trial")
    return curves.sort_values(["param_dropout", "param_l2", "seed", "epoch"]).reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.parametrize("engine, masks", [("optuna", "member"), ("keras-tuner", "population")])
def test_population_campaign_gives_the_records_of_a_sequential_one(
    tmp_path, sequential_grid, digits, engine, masks
):
    raw = tiny_campaign(campaign={"engine": engine, "population": 8, "population_masks": masks})
    campaign = parse_campaign(raw)
    chosen = run_campaign(campaign, tmp_path, progress=False)
    trials, epochs = records.load(tmp_path)
    assert len(trials) == 8 and not trials.duplicated(["trial", "seed"]).any()
    assert set(trials["status"]) == {"COMPLETE"}
    assert list(trials.columns) == list(sequential_grid.trials.columns)
    assert list(epochs.columns) == list(sequential_grid.epochs.columns)
    assert len(epochs) == 16
    population, sequential = _curves((trials, epochs)), _curves(sequential_grid)
    for column in ["seed", "epoch", "param_dropout", "param_l2"]:
        assert population[column].tolist() == sequential[column].tolist()
    # One Dropout draw for all members changes the masks: then only members without Dropout
    # match curve for curve.
    exact = population["param_dropout"] == 0 if masks == "population" else population.index >= 0
    assert exact.sum() >= 8
    for column in CURVES:
        np.testing.assert_allclose(
            population.loc[exact, column], sequential.loc[exact, column], **TOLERANCE
        )
    assert population["val_accuracy"].between(0, 1).all()
    tested = trials[trials["test_accuracy"].notna()]
    assert set(tested["trial"]) == {chosen["trial"]} and len(tested) == 2
    # Its seeds trained together and were evaluated in one pass: as each run alone evaluates.
    values = campaign.values(chosen["values"])
    for seed, recorded in chosen["test"].items():
        path = weights_path(tmp_path, chosen["trial"], seed)
        alone = evaluate_run(values, builder=campaign.builder, data=digits, weights_path=path)
        assert recorded["accuracy"] == pytest.approx(alone["accuracy"], abs=1e-9)
        assert recorded["loss"] == pytest.approx(alone["loss"], rel=1e-5)


@pytest.mark.slow
def test_population_campaign_resumes_without_retraining(tmp_path, monkeypatch):
    campaign = parse_campaign(tiny_campaign(campaign={"population": 2}))
    real = study.executor.train_population
    calls = []

    def interrupted_on_second(*args, **kwargs):
        calls.append(len(args[0]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(study.executor, "train_population", interrupted_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(campaign, tmp_path, progress=False)
    before = records.load(tmp_path).trials
    assert sorted(before["status"]) == ["COMPLETE", "COMPLETE", "RUNNING", "RUNNING"]
    calls.clear()
    monkeypatch.setattr(
        study.executor, "train_population", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    run_campaign(campaign, tmp_path, progress=False)
    after = records.load(tmp_path).trials
    assert len(calls) == 3  # 4 configurations x 2 seeds in pairs; the first pair was done
    assert len(after) == 8 and set(after["status"]) == {"COMPLETE"}
    done = before[before["status"] == "COMPLETE"].set_index(["trial", "seed"])["duration_s"]
    assert (
        after.set_index(["trial", "seed"]).loc[done.index, "duration_s"].tolist() == done.tolist()
    )


@pytest.mark.slow
def test_pruning_falls_back_to_one_run_at_a_time(tmp_path, capfd):
    raw = tiny_campaign(campaign={"pruner": "median", "population": 4, "seeds": [0]})
    raw["train"]["epochs"] = 1
    raw["space"] = {"dropout": [0.0, 0.5]}
    run_campaign(parse_campaign(raw), tmp_path, progress=False)
    assert "population: pruning" in capfd.readouterr().err
    trials = records.load(tmp_path).trials
    assert len(trials) == 2 and set(trials["status"]) <= {"COMPLETE", "PRUNED"}


@pytest.mark.slow
def test_a_cnn_campaign_trains_populations_with_the_records_of_a_sequential_one(tmp_path, capfd):
    model = {"builder": "cnn", "conv_blocks": 1, "filters": 4, "dense_units": 8}
    frames = []
    for population in (1, "auto"):
        raw = tiny_campaign(campaign={"population": population, "seeds": [0]}, train={"epochs": 1})
        raw["model"] = model
        raw["space"] = {"dropout": [0.0, 0.5], "block_dropout": [0.0, 0.25]}
        run_campaign(parse_campaign(raw), tmp_path / str(population), progress=False)
        frames.append(records.load(tmp_path / str(population)))
    assert "runs that share an architecture train together" in capfd.readouterr().err
    key = ["param_dropout", "param_block_dropout", "seed"]
    sequential, together = (t.sort_values(key).reset_index(drop=True) for t, _ in frames)
    assert len(together) == 4 and set(together["status"]) == {"COMPLETE"}
    assert together[key].equals(sequential[key])
    for column in ["final_train_loss", "final_val_loss", "final_val_accuracy"]:
        np.testing.assert_allclose(together[column], sequential[column], **TOLERANCE)


_JAX_CHECK = """
import json, numpy as np
from search_spaces import BUILDERS
from study.data import load_dataset
from study.population import Member, train_population
from study.trial import train_run
data = load_dataset("digits", seed=0, limit=400)
errors = []
for builder, shape in (("mlp", dict(hidden_layers=1, units=8)),
                       ("cnn", dict(conv_blocks=1, filters=4, dense_units=8))):
    values = [shape | dict(epochs=2, batch_size=128, dropout=d, l2=l2, learning_rate=rate)
              for d, l2, rate in ((0.0, 1e-3, 1e-3), (0.5, 0.0, 3e-3))]
    kw = dict(builder=BUILDERS[builder], data=data, objective="val_accuracy", direction="maximize")
    alone = [train_run(v, seed=s, **kw).history for s, v in enumerate(values)]
    members = [Member(v, s) for s, v in enumerate(values)]
    for conv in ("loop", "grouped") if builder == "cnn" else ("loop",):
        together = [r.history for r in train_population(members, conv=conv, **kw)]
        errors += [float(np.max(np.abs(np.subtract(a[c], t[c])) / (1e-5 + np.abs(a[c]))))
                   for a, t in zip(alone, together) for c in a]
print(json.dumps(errors))
"""


@pytest.mark.slow
def test_members_match_on_the_jax_backend():
    result = subprocess.run(
        [sys.executable, "-c", _JAX_CHECK],
        env=os.environ | {"KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    relative_errors = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(relative_errors) == 24 and max(relative_errors) < 1e-4


@pytest.mark.slow
def test_runs_of_different_architectures_train_alone_and_say_so(tmp_path, capfd):
    raw = tiny_campaign(campaign={"population": 4, "seeds": [0]}, train={"epochs": 1})
    raw["space"] = {"units": [8, 16]}  # two architectures, one run each
    del raw["model"]["units"]
    run_campaign(parse_campaign(raw), tmp_path, progress=False)
    assert "population: 2 run(s) share their architecture with no other" in capfd.readouterr().err
    trials = records.load(tmp_path).trials
    assert len(trials) == 2 and set(trials["status"]) == {"COMPLETE"}
