"""Running a parsed command with the command line's conventions (logging, the run's log file,
exit codes): :func:`run_command`, for ``featurestore <command>``.

It lives with the CLI, above the jobs: it sends the JVM's output of a command that starts
Spark to the run's log file (:mod:`featurestore.jobs.spark`), and turns every failure into
one redacted line and its exit code (:mod:`featurestore.jobs.core.console`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from featurestore.jobs.core import interrupts
from featurestore.jobs.core.console import (
    ExitCode,
    configure_logging,
    echo,
    exit_code_for,
    new_log_file,
    note,
    prepare_log_file,
    tail,
)
from featurestore.jobs.spark import send_jvm_output_to
from featurestore.readers.errors import FeatureStoreError


def run_command(
    command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace, *, starts_spark: bool
) -> int:
    """Run a parsed command with the CLI's conventions and return its exit code.

    Logging per ``-v``/``-q``; for a command that starts Spark, a fresh log file receiving
    the JVM's output and every log record (its path shown first, its tail on a runtime
    failure); a :class:`FeatureStoreError` becomes one redacted line and its exit code
    (:func:`exit_code_for`); any other error one line too, its traceback in the log file
    (or on the terminal with ``-v`` when there is none).  The error line comes last, after
    the log file's tail: the user's last line says what happened.
    """
    verbose, quiet = getattr(args, "verbose", 0) or 0, getattr(args, "quiet", 0) or 0
    log_file = new_log_file(command) if starts_spark else None
    configure_logging(verbose, quiet, log_file)
    if log_file is not None:

        def announce(path: Path) -> None:
            prepare_log_file(path)
            note(f"featurestore {command}: Spark and JVM output go to {path}")

        send_jvm_output_to(log_file, announce)
    code: int
    error_line: str | None = None  # said last, after the log's tail: the user's last line is ours
    interrupts.reset()
    try:
        code = int(run(args))
    except KeyboardInterrupt:
        return _interrupted(command)
    except FeatureStoreError as exc:
        if interrupts.interrupted():  # an error after Ctrl-C is its consequence, not the news
            return _interrupted(command)
        # notes say what else failed after the first failure (e.g. a run record not stored)
        message = "; and ".join([str(exc), *getattr(exc, "__notes__", ())])
        error_line = f"featurestore {command}: error: {message}"
        code = exit_code_for(exc)
    except Exception as exc:  # Spark, Delta, redis-py ...: one line here, the traceback in the log
        if interrupts.interrupted():  # e.g. a Py4JError: the JVM's calls fail as Spark goes away
            return _interrupted(command)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        logging.getLogger(__name__).debug("featurestore %s failed", command, exc_info=True)
        error_line = f"featurestore {command}: error: {type(exc).__name__}: {first_line}"
        if log_file is None:
            if verbose:
                echo(error_line, err=True)
                raise
            error_line += "\n(run with -v for the traceback)"
        code = ExitCode.FAILED
    finally:
        if log_file is not None:
            send_jvm_output_to(None)
    if code == ExitCode.FAILED and log_file is not None:
        lines = tail(log_file)
        if lines:
            echo(f"last lines of {log_file}:", err=True)
            for line in lines:
                echo(f"  {line}", err=True)
    if error_line is not None:
        echo(error_line, err=True)
    return code


def _interrupted(command: str) -> int:
    """Ctrl-C: one line on stderr and exit 130 (what failed after the interrupt goes to the log only)."""
    logging.getLogger(__name__).debug("featurestore %s interrupted", command, exc_info=True)
    echo(f"featurestore {command}: interrupted", err=True)
    return ExitCode.INTERRUPTED
