"""What Optuna's own clients show of a campaign: optuna-dashboard's API, served in-process, on a
finished campaign's optuna.sqlite (curves, params, the metric's name, user attributes); and the
intermediate values a pruner leaves (no training there: a scripted executor)."""

import json
import statistics
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
from optuna_dashboard import wsgi

import study.campaign
from study import records
from study.campaign import run_campaign
from study.config import parse_campaign
from study.results import RunResult, Status
from tests.conftest import tiny_campaign
from tests.study.test_trial_loop import _seed_of


def get(app, path: str):
    """The JSON that optuna-dashboard's server answers to GET `path`."""
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda code, headers, exc_info=None: status.append(code)))
    assert status == ["200 OK"], (path, status, body[:200])
    return json.loads(body)


def attrs(serialized) -> dict:
    """The dashboard's user attributes ({"key", "value"} pairs, values as strings) as a dict."""
    out = {}
    for a in serialized:
        try:
            out[a["key"]] = json.loads(a["value"])
        except json.JSONDecodeError:
            out[a["key"]] = a["value"]  # a plain string
    return out


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A finished tiny campaign (2 configurations x 2 seeds x 2 epochs): its folder, records and
    chosen configuration, and the dashboard's view of its study."""
    directory = tmp_path_factory.mktemp("dashboard")
    raw = tiny_campaign()
    raw["space"] = {"dropout": [0.0, 0.5]}
    chosen = run_campaign(parse_campaign(raw), directory, progress=False)
    app = wsgi(f"sqlite:///{directory / 'optuna.sqlite'}")
    [summary] = get(app, "/api/studies")["study_summaries"]
    detail = get(app, f"/api/studies/{summary['study_id']}")
    return records.load(directory), chosen, summary, detail


def test_the_dashboard_names_the_metric_and_states_what_the_value_is(dashboard):
    _, _, summary, detail = dashboard
    assert summary["study_name"] == "tiny" and summary["directions"] == ["maximize"]
    assert detail["objective_names"] == ["val_accuracy"]
    about = attrs(detail["user_attrs"])
    assert about["value"] == "mean over seeds of each seed's best-epoch val_accuracy (maximize)"
    assert about["intermediate_values"].startswith("step e: val_accuracy after epoch e, the mean")
    assert "study_trial" in about["user_attrs"]


def test_the_dashboard_shows_each_configuration_with_its_curve_and_seeds(dashboard):
    (trials, epochs), _, _, detail = dashboard
    assert len(detail["trials"]) == 2 and detail["has_intermediate_values"]
    for shown in detail["trials"]:
        assert shown["state"] == "Complete"
        [param] = shown["params"]
        user = attrs(shown["user_attrs"])
        ours = trials[trials["trial"] == user["study_trial"]]
        assert param["name"] == "dropout"
        assert float(param["param_external_value"]) == ours["param_dropout"].iloc[0]
        best = dict(zip(ours["seed"].astype(str), ours["best_val_accuracy"], strict=True))
        assert user["seed_objectives"] == pytest.approx(best)
        assert user["seed_objective_std"] == pytest.approx(statistics.stdev(best.values()))
        assert shown["values"] == [pytest.approx(statistics.fmean(best.values()))]
        curves = epochs[epochs["trial"] == user["study_trial"]]
        per_seed = curves.groupby("seed")["val_accuracy"].apply(list)
        assert user["seed_curves"] == {str(s): pytest.approx(c) for s, c in per_seed.items()}
        mean = curves.groupby("epoch")["val_accuracy"].mean()
        assert [v["step"] for v in shown["intermediate_values"]] == [1, 2]
        assert [v["value"] for v in shown["intermediate_values"]] == pytest.approx(list(mean))


def test_the_dashboard_shows_the_chosen_configuration_and_its_test_metrics(dashboard):
    (trials, _), chosen, _, detail = dashboard
    shown = attrs(detail["user_attrs"])["chosen"]
    assert shown["trial"] == chosen["trial"]
    tested = trials[trials["trial"] == chosen["trial"]].set_index("seed")["test_accuracy"]
    assert {s: m["accuracy"] for s, m in shown["test"].items()} == pytest.approx(
        {str(s): v for s, v in tested.items()}
    )
    [number] = shown["optuna_trials"]
    [trial] = [t for t in detail["trials"] if t["number"] == number]
    assert attrs(trial["user_attrs"])["study_trial"] == chosen["trial"]


def value(dropout: float, seed: int, epoch: int) -> float:
    """The scripted objective: better with epochs, worse with dropout, a little apart per seed."""
    return 0.5 + epoch / 10 - dropout + seed / 100


class Scripted:
    """An executor that trains nothing: each run's curve is `value`'s, reported epoch by epoch
    (the pruner's hook), stopped PRUNED when the hook says so."""

    size, isolated, why_not, epochs = 1, False, "", 3

    def train(self, members, on_epoch):
        [member] = members
        dropout, seed = member.values["dropout"], _seed_of(member.weights_path)
        history = {"val_accuracy": [], "val_loss": []}
        for epoch in range(1, self.epochs + 1):
            history["val_accuracy"].append(value(dropout, seed, epoch))
            history["val_loss"].append(1.0)
            if on_epoch(epoch, history["val_accuracy"][-1]):
                return [RunResult(Status.PRUNED, history)]
        return [RunResult(Status.COMPLETE, history)]

    def close(self):
        pass


def test_with_a_pruner_the_intermediate_values_end_as_the_mean_over_seeds(tmp_path, monkeypatch):
    """The pruner decides on the first seed's values; a configuration that completes ends with
    the mean over its seeds, a pruned one with its first seed's values, up to where it stopped."""
    raw = tiny_campaign(campaign={"pruner": "median", "seeds": [0, 1]})
    raw["space"] = {"dropout": [0.0, 0.1, 0.4]}  # the last is worse at every epoch
    monkeypatch.setattr(study.campaign, "make_executor", lambda *a, **k: Scripted())
    run_campaign(parse_campaign(raw), tmp_path, progress=False, evaluate=False)
    engine = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'optuna.sqlite'}")
    told = {t.params["dropout"]: t for t in engine.get_trials()}
    for dropout in (0.0, 0.1):
        assert told[dropout].state.name == "COMPLETE"
        assert told[dropout].intermediate_values == pytest.approx(
            {e: (value(dropout, 0, e) + value(dropout, 1, e)) / 2 for e in (1, 2, 3)}
        )
    pruned = told[0.4]
    assert pruned.state.name == "PRUNED"
    steps = sorted(pruned.intermediate_values)
    assert steps == list(range(1, len(steps) + 1)) and len(steps) < Scripted.epochs
    assert pruned.intermediate_values == pytest.approx({e: value(0.4, 0, e) for e in steps})
    assert pruned.user_attrs["seed_curves"] == {
        "0": pytest.approx([value(0.4, 0, e) for e in steps])
    }
    assert pruned.user_attrs["study_trial"] == 3
