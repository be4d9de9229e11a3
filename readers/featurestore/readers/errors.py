"""The one error tree of redis-feature-store.

Every error the library raises derives from :class:`FeatureStoreError`, so a caller
can catch everything with one ``except``.  Messages name the view, entity, feature or
setting at fault and never contain a password (URLs are redacted before they are put
into a message).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable
from typing import Self


class FeatureStoreError(Exception):
    """Base class of every error raised by redis-feature-store."""

    def with_context(self, what: str) -> Self:
        """The same error (same class and attributes), its message prefixed with ``what``."""
        other = copy.copy(self)
        other.args = (f"{what}: {self}",)
        return other


# --- definitions -------------------------------------------------------------------


class DefinitionError(FeatureStoreError, ValueError):
    """An entity, feature or view definition is invalid (names the culprit)."""


class CatalogError(DefinitionError):
    """The catalogue cannot be loaded or its definitions conflict."""


# --- codec -------------------------------------------------------------------------


class EncodingError(FeatureStoreError, ValueError):
    """A value or entity id cannot be encoded in the storage format."""


class DecodingError(FeatureStoreError, ValueError):
    """A stored value cannot be decoded as the feature's dtype."""


# --- reader ------------------------------------------------------------------------


class FeatureNotFoundError(FeatureStoreError, KeyError):
    """A requested feature or view is not defined in the catalogue."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


_LISTED_NAMES = 30  # beyond this, a message lists the first names and says how many more


def unknown_name_message(problem: str, name: object, known: Iterable[str], *, known_as: str = "known") -> str:
    """``problem``, then the closest names to ``name`` as a suggestion, then the known names.

    E.g. ``unknown feature 'order_count_7' of entity 'customer'; did you mean 'order_count_7d'?
    (known: ...)``.  The suggestion comes first because an alphabetical list cut short can
    hide the name the caller meant; a long list says how many names it leaves out.
    """
    names = sorted(set(known))
    text = problem
    suggestions = closest_names(str(name), names)
    if suggestions:
        *others, last = [repr(s) for s in suggestions]
        text += f"; did you mean {', '.join(others) + ' or ' if others else ''}{last}?"
    listed = ", ".join(names[:_LISTED_NAMES])
    if len(names) > _LISTED_NAMES:
        listed += f", and {len(names) - _LISTED_NAMES} more"
    return f"{text} ({known_as}: {listed or 'none'})"


def closest_names(name: str, names: Iterable[str]) -> list[str]:
    """The names nearest to ``name`` (difflib similarity), best first: the best match and any
    about as close (a typo usually has one obvious fix; listing every weak match buries it)."""
    candidates = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    if not candidates:
        return []
    best = difflib.SequenceMatcher(None, name, candidates[0]).ratio()
    return [c for c in candidates if difflib.SequenceMatcher(None, name, c).ratio() >= best - 0.05]


class RegistryMismatchError(FeatureStoreError):
    """The stored data was materialized with a different definition than the reader's.

    Raised at start-up so a service never serves values decoded with the wrong type.
    """


class ConfigurationError(FeatureStoreError, ValueError):
    """A connection setting or option is invalid."""


class FeatureStoreConnectionError(FeatureStoreError, ConnectionError):
    """Redis could not be reached, or the connection broke during a call."""


class FeatureStoreTimeout(FeatureStoreConnectionError, TimeoutError):
    """A call did not complete within its timeout."""


class ServerUnreachableError(FeatureStoreConnectionError):
    """Nothing accepts connections at the URL's host and port (connection refused), or the
    host does not resolve: the server is down, or the URL points elsewhere."""


class ClusterDownError(FeatureStoreConnectionError):
    """The Redis Cluster kept answering ``CLUSTERDOWN`` (or served no slots) until the deadline."""


class AuthenticationError(FeatureStoreConnectionError):
    """Redis refused the URL's user and password (``WRONGPASS``): wrong password, or the
    user does not exist or is disabled.  Names the user, never the password."""

    def __init__(self, message: str, *, user: str | None = None) -> None:
        super().__init__(message)
        self.user = user


class PasswordRequiredError(AuthenticationError):
    """Redis requires a password and the URL gives none (``NOAUTH``)."""


class ServerError(FeatureStoreError):
    """Redis answered with an error the library cannot recover from."""


class PermissionDeniedError(ServerError):
    """The ACL user may not run a command, or touch a key (``NOPERM``).

    ``user`` is the ACL user, ``command`` the refused command (lower case, as Redis
    names it, e.g. ``xadd`` or ``function|load``) when Redis said which.
    """

    def __init__(self, message: str, *, user: str | None = None, command: str | None = None) -> None:
        super().__init__(message)
        self.user = user
        self.command = command


class UnsupportedServerError(ServerError):
    """The Redis server is too old for an operation (names the version needed)."""


# --- jobs --------------------------------------------------------------------------


class JobError(FeatureStoreError):
    """A materialization or streaming job failed."""


class ValidationFailed(JobError):
    """The data did not pass its expectation suite; nothing was written."""


class GuardRefused(ValidationFailed):
    """Only the guards refused the data: a source partition far below its baseline, a stale
    upstream, or a feature that drifted (``--accept-input`` / ``--accept-drift`` override them).
    Nothing was written."""


class WriteError(JobError):
    """Rows could not be written to Redis after retries."""
