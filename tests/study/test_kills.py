"""Crash safety: `study run` killed with SIGKILL at random moments, 5 times, then run to the end,
records every configuration x seed COMPLETE exactly once, for both engines.

The kill loop and the audit are in kill_loop.py (benchmarks/kill_stress.py kills 20 times). Each
launch pays TensorFlow's start-up, so this is the slowest test of the suite; the two engines' kill
loops run side by side to halve its wall time. It is marked slow: `-m "not slow"` leaves it out.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from study import records
from tests.study.kill_loop import stress

ENGINES = ["optuna", "keras-tuner"]
KILLS = 5
SEEDS = 6  # 2 configurations x 6 seeds: enough runs that 5 kills do not finish the campaign


@pytest.mark.slow
def test_five_random_sigkills_per_engine_lose_and_duplicate_nothing(tmp_path):
    def kill(engine):
        folder = tmp_path / engine
        folder.mkdir()
        return stress(engine, folder, kills=KILLS, max_delay_s=1.5, seed=7, epochs=2, seeds=SEEDS)

    with ThreadPoolExecutor(len(ENGINES)) as pool:
        outcomes = dict(zip(ENGINES, pool.map(kill, ENGINES), strict=True))
    for engine, (done, audit, _) in outcomes.items():
        assert len(done.delays) == KILLS, f"{engine}: a launch finished before its kill"
        assert len(done.finished_at_kill[-1]) > 0, f"{engine}: no kill landed after a run finished"
        assert audit.integrity == "ok", engine
        assert (audit.complete, audit.lost, audit.duplicated, audit.running) == (
            2 * SEEDS,
            0,
            0,
            0,
        ), engine
        assert audit.retrained == 0, engine  # a finished run is never trained again
        assert audit.engine_duplicates == 0, engine
        trials = records.load(tmp_path / engine / "out").trials
        assert len(trials) == 2 * SEEDS and set(trials["status"]) == {"COMPLETE"}
        assert not trials.duplicated(["trial", "seed"]).any()
        assert trials["test_accuracy"].notna().sum() == SEEDS  # the chosen configuration's seeds
