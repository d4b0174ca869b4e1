"""The progress of `study run`: plain lines off a terminal, a tqdm bar on one; resumes count from
the runs already finished; a population shows its shared epoch."""

import io

from study.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_off_a_terminal_plain_lines_without_carriage_returns():
    stream = io.StringIO()
    with Progress(total=4, stream=stream, interval_s=0) as progress:
        for trial in (1, 2):
            progress.start_run(trial, 0, epochs=2)
            progress.epoch(1)
            progress.epoch(2)
            progress.finish_run(trial, 0)
            progress.best("val_accuracy", 0.5 * trial)
    assert "\r" not in stream.getvalue()
    assert lines(stream) == [
        "study: 0/4 runs, trial 1, seed 0, epoch 0/2",
        "study: 0/4 runs, trial 1, seed 0, epoch 1/2",
        "study: 0/4 runs, trial 1, seed 0, epoch 2/2",
        "study: 1/4 runs, best val_accuracy 0.5000",
        "study: 1/4 runs, trial 2, seed 0, epoch 0/2, best val_accuracy 0.5000",
        "study: 1/4 runs, trial 2, seed 0, epoch 1/2, best val_accuracy 0.5000",
        "study: 1/4 runs, trial 2, seed 0, epoch 2/2, best val_accuracy 0.5000",
        "study: 2/4 runs, best val_accuracy 1.0000",
    ]


def test_plain_lines_come_at_most_every_interval_and_the_last_one_always():
    stream = io.StringIO()
    with Progress(total=3, stream=stream, interval_s=3600) as progress:
        for trial in (1, 2, 3):
            progress.start_run(trial, 0, epochs=1)
            progress.epoch(1)
            progress.finish_run(trial, 0)
    assert lines(stream) == ["study: 0/3 runs, trial 1, seed 0, epoch 0/1", "study: 3/3 runs"]


def test_a_population_shows_its_runs_and_epoch_then_finishes_in_one_line():
    stream = io.StringIO()
    with Progress(total=27, stream=stream, interval_s=0) as progress:
        progress.start_run(1, 0, epochs=20, runs=27)
        progress.epoch(5)
        for trial in range(1, 28):
            progress.finish_run(trial, 0)
    assert lines(stream) == [
        "study: 0/27 runs, population 27 runs, epoch 0/20",
        "study: 0/27 runs, population 27 runs, epoch 5/20",
        "study: 27/27 runs",
    ]


def test_a_resume_starts_at_the_runs_already_finished_and_counts_each_run_once():
    stream = io.StringIO()
    with Progress(total=4, stream=stream, interval_s=0, finished=[(1, 0), (2, 0)]) as progress:
        progress.finish_run(1, 0)  # found finished in the store again: not counted twice
        progress.best("val_loss", 0.25)
        progress.start_run(3, 0, epochs=1)
        progress.finish_run(3, 0)
    assert lines(stream) == [
        "study: 2/4 runs, best val_loss 0.2500",
        "study: 2/4 runs, trial 3, seed 0, epoch 0/1, best val_loss 0.2500",
        "study: 3/4 runs, best val_loss 0.2500",
    ]


def test_skipped_runs_leave_the_total():
    stream = io.StringIO()
    with Progress(total=4, stream=stream, interval_s=0) as progress:
        progress.finish_run(1, 0)
        progress.skip(1)  # the other seed of a failed configuration
    assert lines(stream) == ["study: 1/3 runs"]


def test_on_a_terminal_a_tqdm_bar_that_starts_at_the_finished_runs():
    stream = Terminal()
    with Progress(total=4, stream=stream, finished=[(1, 0), (2, 0)]) as progress:
        assert progress._bar is not None and progress._bar.n == 2
        progress.start_run(3, 0, epochs=2, runs=2)
        progress.epoch(1)
        progress.finish_run(3, 0)
        progress.finish_run(3, 1)
        assert progress._bar.n == 4
    assert "\r" in stream.getvalue() and "4/4" in stream.getvalue()
    assert "population=2 runs, epoch=1/2" in stream.getvalue()


def test_notes_print_with_progress_on_or_off():
    stream = Terminal()
    with Progress(total=2, stream=stream) as progress:
        progress.note("population: a note")
    assert "population: a note\n" in stream.getvalue()
    stream = io.StringIO()
    with Progress(total=2, stream=stream, enabled=False) as progress:
        progress.note("population: a note")
    assert stream.getvalue() == "population: a note\n"


def test_disabled_prints_nothing():
    stream = Terminal()
    with Progress(total=1, stream=stream, enabled=False) as progress:
        progress.start_run(1, 0, epochs=1)
        progress.finish_run(1, 0)
    assert stream.getvalue() == ""
    stream = io.StringIO()
    with Progress(total=1, stream=stream, enabled=False) as progress:
        progress.finish_run(1, 0)
    assert stream.getvalue() == ""
