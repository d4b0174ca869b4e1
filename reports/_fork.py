"""Work done beside the report's main process: a forked child computes while the parent goes on.

The report spends most of its time in its own CPU work (drawing and encoding figures, fitting the
importance forest), and the machines it runs on have at least two cores. A forked child inherits
the parent's memory (imported modules, frames, figures), so nothing is pickled on the way in; only
the result comes back, through a pipe. Where fork is not available, or the child fails or has not
answered within `PATIENCE` seconds, the result is computed in the parent: the same result, only
later. A process that has loaded a Keras backend (`study run`, which writes the report after
training) does not fork at all: the backend's threads may hold locks a child would wait on
forever; `fork_ahead` forks such a process early, before the backend loads, so that it can
do that process's report work later.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import pickle
import sys
import threading
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
    if not _can_fork():
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


def fork_ahead(prepare: Callable[[], object]) -> Callable[..., Any]:
    """Fork now a child that runs `prepare()` (imports, say) and waits; return `call(function,
    *args, **kwargs)`, which has the child compute it (once: later calls compute here) and returns
    the result. Where fork is not available, or the child failed, `call` computes it here. The
    child ends with the parent: it waits on a pipe that the parent's exit closes. It forks only
    while this process runs one thread (nothing a child could wait on forever), and with
    `os.fork`: a child of `multiprocessing` could not fork children of its own, or would hold up
    the parent's exit."""
    if not _can_fork() or threading.active_count() > 1:
        return _here
    for stream in (sys.stdout, sys.stderr):  # or the child would write their buffers again
        stream.flush()
    parent_end, child_end = multiprocessing.Pipe()
    child = os.fork()
    if child == 0:
        try:
            parent_end.close()  # the parent's exit then ends the child's wait
            _serve(child_end, prepare)
        finally:
            os._exit(0)
    child_end.close()

    def call(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        if parent_end.closed:
            return function(*args, **kwargs)
        with parent_end:
            try:
                parent_end.send((function, args, kwargs))
                answered, value = True, parent_end.recv()
            except (EOFError, OSError, AttributeError, pickle.PicklingError):  # the child failed
                answered = False  # (or was stopped), or `function` cannot be sent: a local one
        with contextlib.suppress(ChildProcessError):  # reaped already (SIGCHLD ignored)
            os.waitpid(child, 0)
        return value if answered else function(*args, **kwargs)  # here, where an error shows

    return call


def _here(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def _can_fork() -> bool:
    threaded = any(name in sys.modules for name in _THREADED_BACKENDS)
    return not threaded and "fork" in multiprocessing.get_all_start_methods()


def _serve(connection: Connection, prepare: Callable[[], object]) -> None:
    try:
        prepare()
        function, args, kwargs = connection.recv()
        connection.send(function(*args, **kwargs))
    except BaseException:  # noqa: BLE001 - stopped, the parent gone, or failed: it computes it
        pass
    finally:
        connection.close()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()


def _send(sender: Connection, call: Callable[[], Any]) -> None:
    try:
        sender.send(call())
    except BaseException:  # noqa: BLE001 - the parent computes it again and reports the error
        pass
    finally:
        sender.close()
