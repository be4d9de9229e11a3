"""Feast's online store on redis-feature-store's format (the ``[feast]`` extra; docs/feast.md).

In ``feature_store.yaml``::

    online_store:
      type: featurestore.feast.FeatureStoreOnlineStore
      connection_string: redis://localhost:6379

* :mod:`.mapping` — Feast's views, types and statuses to ours, on plain data (no Feast import);
* :mod:`.store` — :class:`FeatureStoreOnlineStore` and its config (imports Feast).

The two classes are resolved lazily, so ``featurestore.feast.mapping`` imports without Feast
(Feast looks them up with ``getattr`` on this module, which imports :mod:`.store`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FeatureStoreOnlineStore", "FeatureStoreOnlineStoreConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
