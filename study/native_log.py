"""Keeping the native libraries' start-up chatter off stderr while Keras loads its backend.

TensorFlow's C++ code logs a few lines while it is imported (`Could not find cuda drivers ...` on a
machine without a GPU, and absl's notice that logging is not initialized yet) before it reads
`TF_CPP_MIN_LOG_LEVEL`, straight to file descriptor 2, where no Python setting reaches them.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# Native log lines at INFO or WARNING level (glog's `I0000 00:00:...` or TensorFlow's
# `2025-01-01 00:00:00.000: I ...`), and absl's notice before its logging is initialized.
_CHATTER = re.compile(
    r"([IW]\d{4} [\d:.]+ +\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$)"
)


@contextmanager
def native_chatter_held() -> Iterator[None]:
    """Hold what is written to file descriptor 2 in this block; then write back all of it but
    the native INFO and WARNING lines (all of it, if the block raises): errors stay visible."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if failed or not _CHATTER.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
