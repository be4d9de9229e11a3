"""redis-feature-store reader: definitions, storage format and the online reader.

Depends on redis (+hiredis) only; importing it loads no Spark, Great Expectations or
Airflow.  The public API is what ``__all__`` lists.
"""

from .aio import AsyncFeatureReader
from .definitions import (
    Aggregate,
    BatchTransform,
    Catalog,
    Computation,
    Drift,
    DType,
    Entity,
    Feature,
    FeatureView,
    Guards,
    LastValue,
    Layout,
    SecondsSincePrevious,
    StreamSource,
    ViewKind,
    batch_transform,
)
from .errors import (
    AuthenticationError,
    CatalogError,
    ClusterDownError,
    ConfigurationError,
    DecodingError,
    DefinitionError,
    EncodingError,
    FeatureNotFoundError,
    FeatureStoreConnectionError,
    FeatureStoreError,
    FeatureStoreTimeout,
    PasswordRequiredError,
    PermissionDeniedError,
    RegistryMismatchError,
    ServerError,
    ServerUnreachableError,
    UnsupportedServerError,
)
from .reader import FeatureReader
from .repository import find_repository, load_catalog
from .results import FeatureBatch, FeatureStatus, FeatureVector
from .settings import ConnectionSettings, redact_url

__all__ = [
    "Aggregate",
    "AsyncFeatureReader",
    "AuthenticationError",
    "BatchTransform",
    "Catalog",
    "CatalogError",
    "ClusterDownError",
    "Computation",
    "ConfigurationError",
    "ConnectionSettings",
    "DType",
    "DecodingError",
    "DefinitionError",
    "Drift",
    "EncodingError",
    "Entity",
    "Feature",
    "FeatureBatch",
    "FeatureNotFoundError",
    "FeatureReader",
    "FeatureStatus",
    "FeatureStoreConnectionError",
    "FeatureStoreError",
    "FeatureStoreTimeout",
    "FeatureVector",
    "FeatureView",
    "Guards",
    "LastValue",
    "Layout",
    "PasswordRequiredError",
    "PermissionDeniedError",
    "RegistryMismatchError",
    "SecondsSincePrevious",
    "ServerError",
    "ServerUnreachableError",
    "StreamSource",
    "UnsupportedServerError",
    "ViewKind",
    "batch_transform",
    "find_repository",
    "load_catalog",
    "redact_url",
]
