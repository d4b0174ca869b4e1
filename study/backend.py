"""Backend switches kept out of the trial loop: deterministic ops, and what TensorFlow keeps.

The trial loop and the builders are Keras 3 only; what needs the backend itself is here, guarded
by the backend in use, so JAX and PyTorch runs never import TensorFlow.
"""

from __future__ import annotations

import keras


def set_determinism(enabled: bool) -> None:
    """Make the backend's ops give identical results run after run on the same hardware (or
    stop asking it to). Called once per process before training, by whoever trains.

    TensorFlow: op determinism (deterministic kernels on CPU and GPU; an op without a
    deterministic implementation raises instead of silently varying). JAX on CPU is deterministic
    already; JAX and PyTorch on GPUs are not made deterministic here (see docs/reproducibility.md).
    """
    if keras.backend.backend() == "tensorflow":
        from tensorflow.python.framework import config  # the switch and its state

        if enabled:
            config.enable_op_determinism()
        elif config.is_op_determinism_enabled():
            config.disable_op_determinism()


def determinism_enabled() -> bool | None:
    """Whether the backend runs deterministic ops (None: this backend has no such switch)."""
    if keras.backend.backend() == "tensorflow":
        from tensorflow.python.framework import config

        return bool(config.is_op_determinism_enabled())
    return None


def forget_traced_gradients() -> int:
    """Drop the gradient functions TensorFlow registered for earlier runs' traced steps; returns
    how many. Call between runs, when no earlier model will be traced again.

    Keras's optimizer sums gradients through the distribution strategy's `all_reduce`, which in
    a traced step registers a `CustomGradient-<N>` function in TensorFlow's process-wide gradient
    registry. Nothing ever removes it, and its closure holds the whole traced step, so every
    `model.fit` leaks its graph (about 4-7 MB; docs/benchmarks.md). The registry is only read
    while a graph is differentiated, that is while a step is being traced, so the entries of
    finished runs are safe to drop.
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    try:
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry  # private: checked, skipped if it moves
    except (ImportError, AttributeError):
        return 0
    stale = [name for name in registry if str(name).startswith("CustomGradient-")]
    for name in stale:
        del registry[name]
    return len(stale)


def has_accelerator() -> bool:
    """Whether the backend computes on a GPU (or another accelerator) rather than the CPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def one_pass_eagerly() -> bool:
    """Whether a single pass over a split (a test evaluation) should run eagerly rather than
    traced: on TensorFlow it costs the same either way (0.3 s for 30 MLPs on digits) and keeps no
    trace; on JAX each eager op compiles on its first use (3.1 s against 0.47 s jitted, two MLPs
    on digits, a fresh process)."""
    return keras.backend.backend() != "jax"
