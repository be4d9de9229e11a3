"""The command line's own output: exit codes, logging set-up, progress, and each run's log file.

The one module under ``featurestore.jobs`` that writes to the terminal.  Library code logs
through :mod:`logging` (loggers named after their module, ``featurestore.<package>.<module>``;
the view, ``ds`` and run id as structured fields: ``log.info(..., extra={"view": ...})``) and
never prints; a command's ``run(args, settings)`` reports its result with :func:`echo` and its steps
with :class:`Steps`.

* **stdout** carries the results (a summary, a URL, a table): what a script may parse.
* **stderr** carries the progress bar (tqdm, on a terminal; elsewhere a heartbeat line at
  least every 25 s of a long step), log records (WARNING and up by default; ``-v`` INFO,
  ``-vv`` DEBUG, ``-q`` errors only) and error messages.
* Durations (ages, TTLs, max_age, elapsed time) print in one format: :func:`format_duration`.
* A command that starts Spark writes the JVM's output (Ivy, log4j, Python workers) and
  every ``featurestore`` log record to a log file under ``$FEATURESTORE_HOME/logs``; its
  path is shown first, and its last lines when the command fails.

Every text that leaves through here is redacted (:func:`~featurestore.readers.settings.redact_text`):
a password in a URL never reaches the terminal or the log file.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Any, TextIO

from featurestore.jobs.core import interrupts
from featurestore.jobs.core.settings import featurestore_home
from featurestore.readers.errors import (
    AuthenticationError,
    ClusterDownError,
    ConfigurationError,
    DefinitionError,
    FeatureNotFoundError,
    FeatureStoreConnectionError,
    GuardRefused,
    PermissionDeniedError,
    UnsupportedServerError,
    ValidationFailed,
)
from featurestore.readers.settings import redact_text

LOGGER_NAME = "featurestore"
FIELDS = ("view", "ds", "run_id")  # the structured fields of the project's log records
KEEP_LOG_FILES = 20
TAIL_LINES = 20


class ExitCode(IntEnum):
    """The exit status of every ``featurestore`` command (and ``materialize_job.py``): one per
    failure class, so a scheduler or a shell script can tell them apart without parsing text."""

    OK = 0
    FAILED = 1  # any other runtime failure (Spark, Delta, rows not written, a failed check)
    USAGE = 2  # argparse's own code for bad arguments; also bad settings
    VALIDATION = 3  # the data was refused before anything was written
    GUARD = 4  # only the guards refused it (input partitions, stale upstream, drift): nothing was written
    UNREACHABLE = 5  # Redis could not be reached (refused, timed out, unknown host)
    AUTHENTICATION = 6  # a wrong or missing password, an unknown user
    PERMISSION = 7  # the ACL user may not run a command the job needs
    SERVER_TOO_OLD = 8  # the server lacks a command the job needs (HSETEX/HEXPIRE)
    CLUSTER_DOWN = 9  # the Redis Cluster does not serve every slot
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    runtime failure: a Spark or Delta error, rows not written, a failed post-load check,
       a stale or failing view (status)
  2    usage error: bad arguments, a malformed Redis URL, an unknown view, a catalogue or
       setting that does not load
  3    validation refused the data (row checks, the Great Expectations suite, the collapse
       guard): nothing was written, the previous values keep serving
  4    only the guards refused it (a source partition below its baseline, a stale upstream,
       a drifted feature; --accept-input / --accept-drift): nothing was written
  5    Redis unreachable (connection refused, timed out, unknown host)
  6    authentication failed (wrong or missing password, unknown user)
  7    permission denied (the ACL user may not run a command; see featurestore acl)
  8    server too old (Redis >= 7.4 or Valkey >= 9 needed)
  9    Redis Cluster down (not every slot served)
  130  interrupted (Ctrl-C)"""

# a command's own --help points at the one table (featurestore --help, docs/cli.md) instead of repeating it
EXIT_CODES_POINTER = "exit codes: see `featurestore --help` (or docs/cli.md)"


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code of a command that ended with ``error``."""
    if isinstance(error, GuardRefused):
        return ExitCode.GUARD
    if isinstance(error, ValidationFailed):
        return ExitCode.VALIDATION
    if isinstance(error, (ConfigurationError, DefinitionError, FeatureNotFoundError)):
        return ExitCode.USAGE
    # the most specific class first: they are all connection or server errors
    for kind, code in (
        (AuthenticationError, ExitCode.AUTHENTICATION),
        (PermissionDeniedError, ExitCode.PERMISSION),
        (UnsupportedServerError, ExitCode.SERVER_TOO_OLD),
        (ClusterDownError, ExitCode.CLUSTER_DOWN),
        (FeatureStoreConnectionError, ExitCode.UNREACHABLE),
    ):
        if isinstance(error, kind):
            return code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.FAILED


# --- durations -------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """A duration (an age, a TTL, a max_age, the time a step took) as people read it, in the
    one format of the command line: ``42s``, ``3m25s``, ``1h12m``, ``2d3h``; ``-`` when unknown.

    Two units at most, the smaller one omitted when zero (``5m``, ``1h``, ``1d``), rounded to
    the smaller unit; negative ages (a clock ahead of ours) keep their sign.
    """
    if seconds is None or seconds != seconds:  # None or NaN
        return "-"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    total = round(seconds)
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return _two_units(minutes, "m", secs, "s")
    total_minutes = round(seconds / 60)
    if total_minutes < 24 * 60:
        hours, minutes = divmod(total_minutes, 60)
        return _two_units(hours, "h", minutes, "m")
    days, hours = divmod(round(seconds / 3600), 24)
    return _two_units(days, "d", hours, "h")


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    if not big:
        return f"{small}{small_unit}"
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


# --- logging ---------------------------------------------------------------------------------


class RedactingFormatter(logging.Formatter):
    """A formatter that appends the structured fields (``[view=... ds=... run_id=...]``) and
    masks every password in the result (message, arguments, fields and traceback alike)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None))
        if fields:
            first, newline, rest = text.partition("\n")
            text = f"{first} [{fields}]{newline}{rest}"
        return redact_text(text)


class _ConsoleHandler(logging.Handler):
    """Log records to stderr, written around the progress bar (never through it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write(self.format(record), sys.stderr)
        except Exception:
            self.handleError(record)


_OUR_HANDLER = "_featurestore_cli"


class _OutsideHandler(logging.Handler):
    """Records of other libraries (not ``featurestore.*``, which has its own handlers): to the run's
    log file if any, and to stderr as before, except after Ctrl-C, when the JVM's calls failing
    (py4j's tracebacks) are the interrupt's consequence, not news: the log file only."""

    def __init__(self, log_file: Path | None) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
        self.to_file: logging.Handler | None = None
        if log_file is not None:
            self.to_file = _LogFileHandler(log_file)
            self.to_file.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == LOGGER_NAME or record.name.startswith(LOGGER_NAME + "."):
            return
        if self.to_file is not None:
            self.to_file.emit(record)
        if not interrupts.interrupted():
            try:
                _write(self.format(record), sys.stderr)
            except Exception:
                self.handleError(record)

    def close(self) -> None:
        if self.to_file is not None:
            self.to_file.close()
        super().close()


class _State:
    """The process's output settings (one terminal per process)."""

    quiet: bool = False
    bar: Any = None  # the active tqdm bar, if any
    beating: Any = None  # the Steps writing heartbeat lines, if any (the outermost: one line per beat)
    lock = threading.RLock()


def verbosity_level(verbose: int, quiet: int) -> int:
    """The console's logging level: WARNING; ``-v`` INFO; ``-vv`` DEBUG; ``-q`` ERROR."""
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def configure_logging(verbose: int = 0, quiet: int = 0, log_file: Path | None = None) -> None:
    """Route the ``featurestore`` loggers: to stderr at the verbosity's level, and everything
    from DEBUG up to ``log_file`` (if any).  Calling it again replaces what it set before."""
    logger = logging.getLogger(LOGGER_NAME)
    root = logging.getLogger()
    for owner in (logger, root):
        for handler in [h for h in owner.handlers if getattr(h, _OUR_HANDLER, False)]:
            owner.removeHandler(handler)
            handler.close()
    _State.quiet = bool(quiet)
    console = _ConsoleHandler(verbosity_level(verbose, quiet))
    console.setFormatter(RedactingFormatter("featurestore: %(levelname)s: %(message)s"))
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        to_file = _LogFileHandler(log_file)
        to_file.setLevel(logging.DEBUG)
        to_file.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(to_file)
    for handler in handlers:
        setattr(handler, _OUR_HANDLER, True)
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    # Other libraries' records (root's level, WARNING and up): py4j logs through the root logger
    # itself (logging.exception), which would otherwise install basicConfig's stderr handler.
    outside = _OutsideHandler(log_file)
    setattr(outside, _OUR_HANDLER, True)
    root.addHandler(outside)
    # py4j logs every callback and its shutdown at INFO/DEBUG: only its problems are news
    logging.getLogger("py4j").setLevel(logging.WARNING)


# --- the run's log file ----------------------------------------------------------------------


def new_log_file(command: str, environ: dict[str, str] | None = None) -> Path:
    """The log file of one run of ``command``, ``$FEATURESTORE_HOME/logs/<command>-<time>-<pid>.log``.

    Nothing is created yet: the file appears with its first line (the JVM's launch or a log
    record), see :func:`prepare_log_file`.
    """
    folder = featurestore_home(environ) / "logs"
    return folder / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def prepare_log_file(path: Path) -> None:
    """Create the folder of ``path`` and keep only the newest :data:`KEEP_LOG_FILES` logs in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return
    old = sorted(path.parent.glob("*.log"), key=lambda p: p.stat().st_mtime)
    for stale in old[: max(0, len(old) - KEEP_LOG_FILES + 1)]:
        stale.unlink(missing_ok=True)
    path.touch()


class _LogFileHandler(logging.FileHandler):
    """A file handler that opens (and creates) its file with its first record only."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8", delay=True)
        self.path = path

    def _open(self) -> Any:
        prepare_log_file(self.path)
        return super()._open()


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` non-empty lines of a log file, redacted."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    kept = [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return [redact_text(line) for line in kept[-lines:]]


# --- output ----------------------------------------------------------------------------------


def _write(text: str, stream: TextIO) -> None:
    with _State.lock:
        bar = _State.bar
        if bar is not None:
            from tqdm import tqdm  # type: ignore[import-untyped]

            tqdm.write(text, file=stream)
        else:
            print(text, file=stream, flush=True)


def echo(text: str = "", *, err: bool = False) -> None:
    """A result line on stdout (``err=True``: stderr), redacted, around the progress bar."""
    _write(redact_text(text), sys.stderr if err else sys.stdout)


def note(text: str) -> None:
    """Information on stderr (where the log is, what was started), hidden by ``-q``."""
    if not _State.quiet:
        _write(redact_text(text), sys.stderr)


class _StepDetail(logging.Handler):
    """Shows the latest INFO record of the ``featurestore`` loggers as the bar's detail."""

    def __init__(self, steps: Steps) -> None:
        super().__init__(logging.INFO)
        self.steps = steps

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.steps.detail(record.getMessage())
        except Exception:
            self.handleError(record)


def _width(stream: TextIO) -> dict[str, Any]:
    """Follow the terminal's width, or a fixed one where the terminal reports none (0 columns:
    a pty without a size, e.g. under ``script``), which would otherwise hide the bar."""
    try:
        if os.get_terminal_size(stream.fileno()).columns > 0:
            return {"dynamic_ncols": True}
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass
    return {"ncols": shutil.get_terminal_size((100, 24)).columns}


HEARTBEAT_SECONDS = 25.0  # off a terminal: a progress line at least this often (under the 30 s CI logs expect)


class Steps:
    """Progress over a command's steps: a tqdm bar on a terminal, a heartbeat line elsewhere.

    ``with steps.step("materialize customer_profile"): ...`` names the running step; while it
    runs, the bar's clock keeps ticking and the latest INFO record of the project's loggers
    (e.g. ``validate: the GX suite``) shows as its detail.  Results go through :func:`echo`,
    which prints them above the bar.  Off the terminal (a pipe, CI, a log file) there is no
    bar: a long command instead writes one line to the stream whenever nothing was written for
    ``heartbeat_seconds`` (``featurestore demo: 1m15s in, step 3 of 7: materialize ...``),
    so a scheduler's log shows it is alive.  ``-q`` hides both.  ``clock`` (seconds,
    monotonic) is injectable so that a test can move time without sleeping.
    """

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: TextIO | None = None,
        refresh_seconds: float = 0.5,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.refresh_seconds = refresh_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.clock = clock
        self.bar: Any = None
        self.heartbeat = False  # off a terminal and not quiet: progress lines instead of the bar
        self.done = 0
        self._current = ""
        self._detail = ""
        self._started = 0.0
        self._last_line = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._detail_handler = _StepDetail(self)

    @property
    def shown(self) -> bool:
        return self.bar is not None

    def __enter__(self) -> Steps:
        self._started = self._last_line = self.clock()
        interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        if _State.quiet:
            return self
        if interactive:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total, desc=self.label, file=self.stream, leave=False, **_width(self.stream),
                bar_format="{l_bar}{bar:12}| {n_fmt}/{total_fmt} [{elapsed}]{postfix}",
            )  # fmt: skip
            with _State.lock:
                _State.bar = self.bar
            target = self._tick
        else:
            with _State.lock:  # nested Steps (materialize inside the demo): the outer one speaks
                if _State.beating is not None:
                    return self
                _State.beating = self
            self.heartbeat = True
            target = self._beat_when_due
        logging.getLogger(LOGGER_NAME).addHandler(self._detail_handler)
        self._ticker = threading.Thread(target=target, name="featurestore-progress", daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        logging.getLogger(LOGGER_NAME).removeHandler(self._detail_handler)
        with _State.lock:
            self.heartbeat = False
            if _State.beating is self:
                _State.beating = None
        if self.bar is not None:
            with _State.lock:
                self.bar.close()
                _State.bar = None
            self.bar = None

    def _tick(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            with _State.lock:
                if self.bar is not None:
                    self.bar.refresh()

    def _beat_when_due(self) -> None:
        # wakes at most a second late; beat() decides with self.clock whether a line is due
        while not self._stop.wait(min(1.0, self.heartbeat_seconds)):
            self.beat()

    def beat(self) -> bool:
        """Off a terminal: write a progress line if none was written for ``heartbeat_seconds``
        (by the clock given); True if it wrote one.  Called by the command's own timer thread."""
        with _State.lock:
            if not self.heartbeat:
                return False
            now = self.clock()
            if now - self._last_line < self.heartbeat_seconds:
                return False
            self._last_line = now
            where = f"step {min(self.done + 1, self.total)} of {self.total}"
            doing = f": {self._current}" if self._current else ""
            detail = f" ({self._detail})" if self._detail else ""
            line = f"featurestore {self.label}: {format_duration(now - self._started)} in, {where}{doing}{detail}"
            _write(redact_text(line), self.stream)
            return True

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """One step: named on the bar while it runs, counted when it ends (even by an error)."""
        self._current = name
        self._detail = ""
        self._show(name)
        try:
            yield
        finally:
            self._count()

    def skip(self) -> None:
        """Count a step that does not apply (the bar's total stays right)."""
        self._count()

    def _count(self) -> None:
        with _State.lock:
            self.done += 1
            if self.bar is not None:
                self.bar.update(1)

    def detail(self, text: str) -> None:
        """What the running step is doing now (shown after its name)."""
        first = redact_text(text).splitlines()[0] if text else ""
        self._detail = first[:80]
        self._show(f"{self._current}: {first[:80]}" if first else self._current)

    def _show(self, text: str) -> None:
        if self.bar is not None:
            with _State.lock:
                self.bar.set_postfix_str(text, refresh=True)


# --- the command line's options ------------------------------------------------------------


def add_verbosity_options(parser: argparse.ArgumentParser, default: object = 0) -> None:
    """``-v``/``-q`` (counted).  ``default=argparse.SUPPRESS`` on a sub-command's parser keeps
    the value given before the command when none is given after it."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=default,
        help="show the project's log records on stderr: -v INFO, -vv DEBUG (default: warnings and errors)",
    )  # fmt: skip
    parser.add_argument(
        "-q", "--quiet", action="count", default=default, help="no progress and no notes: results and errors only"
    )
