"""The one error tree of redis-feature-store.

Every error the library raises derives from :class:`FeatureStoreError`, so a caller
can catch everything with one ``except``.  Messages name the view, entity, feature or
setting at fault and never contain a password (URLs are redacted before they are put
into a message).
"""

from __future__ import annotations


class FeatureStoreError(Exception):
    """Base class of every error raised by redis-feature-store."""


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


class ServerError(FeatureStoreError):
    """Redis answered with an error the library cannot recover from."""


class UnsupportedServerError(ServerError):
    """The Redis server is too old for an operation (names the version needed)."""


# --- jobs --------------------------------------------------------------------------


class JobError(FeatureStoreError):
    """A materialization or streaming job failed."""


class ValidationFailed(JobError):
    """The data did not pass its expectation suite; nothing was written."""


class WriteError(JobError):
    """Rows could not be written to Redis after retries."""
