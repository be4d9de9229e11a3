"""Ctrl-C (SIGINT) during a job: one flag for the process, so whatever fails *after* the interrupt
is known for what it is, a consequence of the interrupt, not a failure of the job.

A terminal's Ctrl-C reaches the whole foreground process group: the driver, and Spark's Python
workers (the JVM ignores it: PySpark launches it with SIGINT ignored).  PySpark's own SIGINT
handler calls ``cancelAllJobs()`` from inside the handler, on the very Py4J connection the main
thread is reading an answer from: the connection loses its place and the interrupted call fails
with a ``Py4JError`` (``... does not exist in the JVM``, ``An error occurred while calling ...``)
instead of a ``KeyboardInterrupt``.  :func:`take_over_sigint` replaces that handler with
:func:`on_sigint`, which only notes the interrupt and raises :class:`KeyboardInterrupt`; the
session's ``stop()`` (in the entry's ``finally``) then cancels the running jobs.

:func:`caused_by_interrupt` tells the run's bookkeeping (``fs:runs``: status ``interrupted``)
and the command line (exit 130, one line) that an error is the interrupt's doing.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import NoReturn


class _State:
    interrupted_at: float | None = None  # time.monotonic() of the first SIGINT, None if none came


def interrupted() -> bool:
    """Whether this process received SIGINT (or :func:`note_interrupt` was called) since :func:`reset`."""
    return _State.interrupted_at is not None


def note_interrupt() -> None:
    """Remember that the process was interrupted (the first time counts)."""
    if _State.interrupted_at is None:
        _State.interrupted_at = time.monotonic()


def reset() -> None:
    """Forget an earlier interrupt (a new command starts)."""
    _State.interrupted_at = None


def on_sigint(signum: int, frame: FrameType | None) -> NoReturn:
    """The SIGINT handler: note the interrupt, raise :class:`KeyboardInterrupt` (and nothing else:
    no Py4J call from inside a signal handler)."""
    note_interrupt()
    raise KeyboardInterrupt


def take_over_sigint() -> None:
    """Install :func:`on_sigint` for SIGINT (main thread only; elsewhere a no-op): call it after a
    SparkContext starts, since PySpark installs its own handler then."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)


def caused_by_interrupt(error: BaseException) -> bool:
    """Whether ``error`` is the interrupt or came after it (the JVM's calls failing as the job is
    torn down): a :class:`KeyboardInterrupt`, or any error once :func:`interrupted`."""
    return isinstance(error, KeyboardInterrupt) or interrupted()
