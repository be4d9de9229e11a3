"""Where local servers were started, so that ``featurestore redis|kafka`` find them from anywhere.

A server runs from a work dir: the per-user default (``$FEATURESTORE_HOME/redis``,
``$FEATURESTORE_HOME/kafka``) or the one asked for (``--workdir``, the demo's
``<workdir>/redis``).  :func:`remember` notes each work dir a server was started in under
``$FEATURESTORE_HOME/started/<kind>/`` (one small file per work dir: concurrent starts do not
race on a shared file) and :func:`forget` drops it when the server stops, so ``featurestore
redis status`` and ``stop`` can name every server still running, wherever it was started,
with the exact command that reaches it (:func:`stop_command`).  A note whose server is gone
(a reboot, a ``kill``, a removed folder) is dropped when read.

Also the one wording of "nothing runs there" (:func:`nothing_running`), shared by the
``redis`` and ``kafka`` commands.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from featurestore.jobs.core.settings import featurestore_home

log = logging.getLogger(__name__)
KINDS = ("redis", "kafka")


T = TypeVar("T")


def default_workdir(kind: str) -> Path:
    """``$FEATURESTORE_HOME/<kind>``: the work dir of ``featurestore <kind> start`` without ``--workdir``."""
    return featurestore_home() / kind


def _notes(kind: str) -> Path:
    return featurestore_home() / "started" / kind


def _note_of(kind: str, workdir: str | os.PathLike[str]) -> Path:
    path = str(Path(workdir).absolute())
    return _notes(kind) / (hashlib.sha256(path.encode()).hexdigest()[:16] + ".txt")


def remember(kind: str, workdir: str | os.PathLike[str]) -> None:
    """Note that a ``kind`` server was started in ``workdir`` (best effort: a read-only home only loses the note)."""
    note = _note_of(kind, workdir)
    try:
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(str(Path(workdir).absolute()) + "\n")
    except OSError as exc:
        log.debug("could not note the %s work dir %s: %s", kind, workdir, exc)


def forget(kind: str, workdir: str | os.PathLike[str]) -> None:
    """Drop the note of ``workdir`` (its server stopped)."""
    try:
        _note_of(kind, workdir).unlink(missing_ok=True)
    except OSError as exc:
        log.debug("could not drop the note of the %s work dir %s: %s", kind, workdir, exc)


def remembered(kind: str) -> list[Path]:
    """The work dirs a ``kind`` server was started in and not stopped since (running or not), sorted."""
    folder = _notes(kind)
    if not folder.is_dir():
        return []
    found = set()
    for note in folder.glob("*.txt"):
        try:
            found.add(Path(note.read_text().strip()))
        except OSError:  # removed meanwhile by a stop in another process
            continue
    return sorted(found)


def running_elsewhere(kind: str, workdir: Path, running: Callable[[Path], T | None]) -> list[T]:
    """The ``kind`` servers started (by the CLI, the demo or a test) in another work dir than ``workdir``
    that still run, as ``running`` reports them; a note whose server is gone is dropped."""
    found = []
    for other in remembered(kind):
        if other == workdir:
            continue
        state = running(other)
        if state is None:
            forget(kind, other)  # gone (a reboot, a kill): the note is stale
        else:
            found.append(state)
    return found


def workdir_option(workdir: str | os.PathLike[str], kind: str) -> str:
    """`` --workdir DIR`` (shell-quoted) when ``workdir`` is not the default, else nothing."""
    path = Path(workdir).absolute()
    return "" if path == default_workdir(kind) else f" --workdir {shlex.quote(str(path))}"


def stop_command(kind: str, workdir: str | os.PathLike[str]) -> str:
    """The exact command that stops the ``kind`` server of ``workdir``, from any folder."""
    return f"featurestore {kind} stop{workdir_option(workdir, kind)}"


def nothing_running(workdir: str | os.PathLike[str]) -> str:
    """The one wording of "no server there", for ``redis``/``kafka`` ``stop``, ``status`` and ``url``."""
    return f"no server running from {Path(workdir).absolute()}"
