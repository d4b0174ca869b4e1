"""Training in a worker subprocess, for a hard bound on the campaign process's memory.

TensorFlow keeps every traced training step alive for the life of the process (about 7 MB a
`model.fit`, see docs/benchmarks.md), so a long campaign in one process grows without bound.
`IsolatedRunner` is called exactly like `study.trial.train_run`, but the run happens in a worker
process (`python -m study.isolate`) that receives the dataset once, trains up to
`runs_per_worker` runs, and is then replaced by a fresh one: whatever a run leaks is returned to
the system when its worker exits.

Protocol (pickles over the worker's stdin and stdout): the parent sends `(dataset, deterministic)`
once, then `("train", values, options)` per run; the worker answers `("epoch", epoch, value)`
after each epoch (the parent replies True to stop the run, for pruning) and `("result",
RunResult)` at the end. A worker that dies (killed for memory, a crash) fails that run only; a
worker whose parent died exits at its next epoch, before saving any weights.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from study.data import Dataset
from study.results import RunResult, Status


class WorkerDied(RuntimeError):
    """The worker process exited while the parent waited for it."""


class IsolatedRunner:
    """`train_run` in worker subprocesses, each replaced after `runs_per_worker` runs."""

    def __init__(self, data: Dataset, deterministic: bool, runs_per_worker: int) -> None:
        self.data, self.deterministic = data, deterministic
        self.runs_per_worker = runs_per_worker
        self._worker: _Worker | None = None
        self._runs = 0  # runs trained by the current worker

    def __call__(
        self, values: Mapping[str, Any], *, data: Dataset, on_epoch=None, **options: Any
    ) -> RunResult:
        """`study.trial.train_run(values, data=data, on_epoch=on_epoch, **options)`, run in the
        worker (`data` must be the dataset the worker received)."""
        if data is not self.data:
            raise ValueError("an IsolatedRunner trains on the dataset it was created with")
        start = time.perf_counter()
        try:
            worker = self._worker or self._start()
            worker.send(("train", dict(values), options))
            while (message := worker.receive())[0] == "epoch":
                worker.send(bool(on_epoch(message[1], message[2])) if on_epoch else False)
            result = message[1]
        except WorkerDied as error:
            self.close()
            return RunResult(
                Status.FAILED,
                duration_s=time.perf_counter() - start,
                failure=f"worker died: {error}",
            )
        except BaseException:  # Ctrl-C or a parent-side error: the worker goes with it, now
            self.close(kill=True)
            raise
        self._runs += 1
        if self._runs >= self.runs_per_worker:
            self.close()
        return result

    def _start(self) -> _Worker:
        self._worker = _Worker()
        self._worker.send((self.data, self.deterministic))
        self._runs = 0
        return self._worker

    def close(self, *, kill: bool = False) -> None:
        """Stop the current worker (a new one starts at the next run); `kill`: mid-run too."""
        if self._worker is not None:
            self._worker.stop(kill=kill)
            self._worker = None


class _Worker:
    """One `python -m study.isolate` process and its two pipes."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[1])  # the worker imports this very `study`
        path = os.environ.get("PYTHONPATH")
        env = os.environ | {"PYTHONPATH": root + (os.pathsep + path if path else "")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "study.isolate"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def send(self, message: Any) -> None:
        try:
            _send(self.process.stdin, message)
        except (BrokenPipeError, OSError) as error:
            raise WorkerDied(self._why()) from error

    def receive(self) -> Any:
        try:
            return pickle.load(self.process.stdout)
        except (EOFError, pickle.UnpicklingError, OSError) as error:
            raise WorkerDied(self._why()) from error

    def _why(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "it stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            hint = ", perhaps killed for memory" if -code == signal.SIGKILL else ""
            return f"{name}{hint}"
        return f"exit status {code}"

    def stop(self, *, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        try:
            _send(self.process.stdin, ("exit",))
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def _send(stream: IO[bytes], message: Any) -> None:
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def _serve() -> int:
    """The worker: read the dataset, then train runs until told to exit or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the replies
    try:
        data, deterministic = pickle.load(requests)
    except EOFError:
        return 0
    from study.native_log import native_chatter_held

    with native_chatter_held():  # Keras loads its backend here
        from study.backend import set_determinism
        from study.trial import train_run

    set_determinism(deterministic)

    def on_epoch(epoch: int, value: float) -> bool:
        try:
            _send(replies, ("epoch", epoch, value))
            return pickle.load(requests)
        except (EOFError, OSError):
            raise SystemExit(0) from None  # the parent is gone: stop before saving weights

    while True:
        try:
            message = pickle.load(requests)
        except EOFError:
            return 0
        if message[0] == "exit":
            return 0
        _, values, options = message
        result = train_run(values, data=data, on_epoch=on_epoch, **options)
        try:
            _send(replies, ("result", result))
        except OSError:
            return 0


if __name__ == "__main__":
    sys.exit(_serve())
