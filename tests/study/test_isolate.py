"""`--isolate`'s parent side in this process, against a stand-in worker that speaks the protocol
(study.isolate's doc): epochs answered, workers replaced, a dead worker failing its run only.
The real worker subprocess is trained by the slow tests (test_verify.py, test_failures.py)."""

import signal
from types import SimpleNamespace

import pytest

import study.isolate
from study.isolate import IsolatedRunner, WorkerDied
from study.results import RunResult, Status

DATA = object()  # the runner only passes its dataset on, once per worker
OPTIONS = dict(builder=None, data=DATA, objective="val_accuracy", direction="maximize")


class StandIn:
    """A worker process: two epochs then the result per run; dies when a run's values say so."""

    def __init__(self, started):
        started.append(self)
        self.sent, self.replies, self.stopped = [], [], None

    def send(self, message):
        self.sent.append(message)
        if isinstance(message, tuple) and message[0] == "train":
            if message[1].get("die"):
                raise WorkerDied("SIGKILL, perhaps killed for memory")
            self.replies = [
                ("epoch", 1, 0.5),
                ("epoch", 2, 0.6),
                ("result", RunResult(Status.COMPLETE)),
            ]

    def receive(self):
        return self.replies.pop(0)

    def stop(self, *, kill=False):
        self.stopped = "killed" if kill else "exit"


@pytest.fixture
def started(monkeypatch):
    workers = []
    monkeypatch.setattr(study.isolate, "_Worker", lambda: StandIn(workers))
    return workers


def test_each_worker_gets_the_data_once_and_is_replaced_after_its_runs(started):
    runner = IsolatedRunner(DATA, deterministic=True, runs_per_worker=2)
    for seed in range(3):
        assert runner({"dropout": 0.0}, seed=seed, **OPTIONS).status == Status.COMPLETE
    runner.close()
    assert len(started) == 2 and [w.stopped for w in started] == ["exit", "exit"]
    assert started[0].sent[0] == (DATA, True)
    trained = [m[2]["seed"] for m in started[0].sent if isinstance(m, tuple) and m[0] == "train"]
    assert trained == [0, 1]


def test_the_epoch_hook_answers_each_epoch_as_pruning_needs(started):
    runner = IsolatedRunner(DATA, deterministic=False, runs_per_worker=5)
    seen = []
    stop_at_2 = lambda epoch, value: seen.append((epoch, value)) or epoch == 2  # noqa: E731
    runner({"dropout": 0.0}, seed=0, on_epoch=stop_at_2, **OPTIONS)
    assert seen == [(1, 0.5), (2, 0.6)]
    assert started[0].sent[-2:] == [False, True]  # keep going, then stop


def test_a_dead_worker_fails_its_run_only_and_the_next_run_gets_a_fresh_one(started):
    runner = IsolatedRunner(DATA, deterministic=True, runs_per_worker=5)
    died = runner({"die": True}, seed=0, **OPTIONS)
    assert died.status == "FAILED"
    assert died.failure == "worker died: SIGKILL, perhaps killed for memory"
    assert runner({"dropout": 0.0}, seed=1, **OPTIONS).status == Status.COMPLETE
    assert len(started) == 2


def test_an_error_in_the_parent_kills_the_worker_and_is_raised(started):
    runner = IsolatedRunner(DATA, deterministic=True, runs_per_worker=5)

    def interrupted(epoch, value):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner({"dropout": 0.0}, seed=0, on_epoch=interrupted, **OPTIONS)
    assert started[0].stopped == "killed"


def test_a_worker_refuses_another_dataset(started):
    runner = IsolatedRunner(DATA, deterministic=True, runs_per_worker=5)
    with pytest.raises(ValueError, match="dataset it was created with"):
        runner({}, seed=0, **(OPTIONS | {"data": object()}))


@pytest.mark.parametrize(
    "code, why",
    [
        (-signal.SIGKILL, "SIGKILL, perhaps killed for memory"),
        (-signal.SIGSEGV, "SIGSEGV"),
        (3, "exit status 3"),
    ],
)
def test_why_a_worker_died_names_its_signal_or_exit_status(code, why):
    worker = object.__new__(study.isolate._Worker)  # no process started: only its exit status
    worker.process = SimpleNamespace(wait=lambda timeout: code)
    assert worker._why() == why
