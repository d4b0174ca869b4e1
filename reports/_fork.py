"""Work done beside the report's main process: a forked child computes while the parent goes on.

The report spends most of its time in its own CPU work (drawing and encoding figures, fitting the
importance forest), and the machines it runs on have at least two cores. A forked child inherits
the parent's memory (imported modules, frames, figures), so nothing is pickled on the way in; only
the result comes back, through a pipe. Where fork is not available, or the child fails or has not
answered within `PATIENCE` seconds, the result is computed in the parent: the same result, only
later. A process that has loaded a Keras backend (`study run`, which writes the report after
training) does not fork at all: the backend's threads may hold locks a child would wait on
forever.
"""

from __future__ import annotations

import functools
import multiprocessing
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

PATIENCE = 120.0
"""Seconds to wait for a child's result before computing it here instead."""
_THREADED_BACKENDS = ("tensorflow", "jax", "torch")


def in_fork(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """Start `function(*args, **kwargs)` in a forked process; return a function that waits for
    its result."""
    call = functools.partial(function, *args, **kwargs)
    threaded = any(name in sys.modules for name in _THREADED_BACKENDS)
    if threaded or "fork" not in multiprocessing.get_all_start_methods():
        return call
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_send, args=(sender, call), daemon=True)
    child.start()
    sender.close()

    def result() -> Any:
        with receiver:
            try:
                answered = receiver.poll(PATIENCE)
                value = receiver.recv() if answered else None
            except EOFError:  # the child failed
                answered = False
        if not answered:
            child.kill()
        child.join()
        return value if answered else call()  # here, where an error then shows

    return result


def _send(sender: Connection, call: Callable[[], Any]) -> None:
    try:
        sender.send(call())
    except BaseException:  # noqa: BLE001 - the parent computes it again and reports the error
        pass
    finally:
        sender.close()
