"""The user's own functions, named by an import path ``package.module:function``: a model builder
(`model.builder`) or a data loader (`data.dataset = "py:..."`). Found in the campaign file's
folder, then on sys.path; what goes wrong is said on one line, with the user's frame.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Frames in these folders are library code, not the user's, in a traceback.
_LIBRARY_PATHS = tuple(
    {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
)
# Our own packages (installed beside this one), whose frames are never the user's.
_OUR_PATHS = tuple(
    f"{Path(__file__).parent.parent / package}/"
    for package in ("search_spaces", "study", "reports")
)


class UserCodeError(ValueError):
    """The function cannot be found or used; the message names what, not the campaign key."""


def is_import_path(text: str) -> bool:
    """Whether `text` is ``package.module:function`` (dotted names of identifiers)."""
    module, sep, function = text.rpartition(":")
    return bool(sep) and all(name.isidentifier() for name in [*module.split("."), function])


def find_function(path: str, folder: str | Path | None = None) -> Callable[..., Any]:
    """Import the function ``package.module:function`` names, without calling it."""
    module_name, _, function_name = path.rpartition(":")
    with importable_from(folder):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and (module_name + ".").startswith(e.name + "."):  # it, or its package
                where = f"in {folder} or on sys.path" if folder else "on sys.path"
                raise UserCodeError(f"module {e.name!r} not found ({where})") from e
            raise UserCodeError(raised(f"importing {module_name}", e)) from e
        except Exception as e:  # a SyntaxError, or whatever the module runs at import
            raise UserCodeError(raised(f"importing {module_name}", e)) from e
    function = getattr(module, function_name, None)
    if function is None:
        raise UserCodeError(
            f"module {module_name} ({getattr(module, '__file__', '?')}) "
            f"has no function {function_name!r}"
        )
    if not callable(function):
        raise UserCodeError(
            f"{module_name}.{function_name} is a {type(function).__name__}, not a function"
        )
    return function


def import_path_of(function: Callable[..., Any]) -> str:
    """``module:function`` for a module-level function (the inverse of `find_function`), so a
    campaign given as Python objects is frozen as text; UserCodeError for any other callable."""
    module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    path = f"{module}:{name}"
    found = sys.modules.get(module or "")
    if not is_import_path(path) or getattr(found, name, None) is not function:
        raise UserCodeError(
            f"{function!r} is not a module-level function (a lambda, a method or a nested "
            "function cannot be found again by its name); define it at the top of a module"
        )
    return path


def source_hash(function: Callable[..., Any]) -> str | None:
    """sha256 of the source of the module that defines `function` (of the function alone where
    the module has no file, as in a notebook); None when no source can be read."""
    module = sys.modules.get(function.__module__)
    try:
        file = getattr(module, "__file__", None)
        source = Path(file).read_bytes() if file else inspect.getsource(function).encode()
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source).hexdigest()


@contextlib.contextmanager
def importable_from(folder: str | Path | None) -> Iterator[None]:
    """`folder` first on sys.path for the duration (as a script's own folder is)."""
    if folder is None:
        yield
        return
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


def raised(what: str, error: BaseException) -> str:
    """One line: what raised which exception, and the last frame of the user's code."""
    message = one_line(error)
    text = f"{what} raised {type(error).__name__}"
    text += f": {message}" if message else ""
    where = user_frame(error)
    return f"{text} (at {where})" if where else text


def user_frame(error: BaseException) -> str:
    """``file:line`` of the innermost frame outside our packages, the standard library and the
    installed packages (else the innermost frame): where the user's code raised."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}:{error.lineno}"
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not f.filename.startswith((*_OUR_PATHS, "<"))
    ]
    own = [f for f in frames if not f.filename.startswith(_LIBRARY_PATHS)]
    frame = (own or frames or [None])[-1]
    return f"{frame.filename}:{frame.lineno}" if frame else ""


def one_line(error: BaseException) -> str:
    """An error message on one line (pandas ends some with a newline, others span several)."""
    return " ".join(str(error).split())
