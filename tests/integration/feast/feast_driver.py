"""Run INSIDE the Feast side venv (Feast 0.67): drives a small Feast repository through Feast's
own SDK, with ``featurestore.feast.FeatureStoreOnlineStore`` as its online store.

    <feast venv>/bin/python feast_driver.py REPO STEPS_JSON

STEPS_JSON is a list of steps, run in order in one process (Feast takes seconds to import);
it prints one JSON list, an answer per step:

* ``{"op": "materialize", "start": ISO, "end": ISO}`` — ``FeatureStore.materialize``;
* ``{"op": "materialize_incremental", "end": ISO}`` — ``FeatureStore.materialize_incremental``;
* ``{"op": "push", "source": NAME, "rows": {column: [values]}}`` — ``FeatureStore.push(..., to=ONLINE)``
  (``event_timestamp``: ``"now"`` or ``"now-S"``, S seconds before the push); ``"push_async"``:
  the same with ``FeatureStore.push_async``;
* ``{"op": "online", "rows": [...], "features": [...], "full": bool, "async": bool}`` —
  ``get_online_features`` (or ``_async``): the feature names, values and statuses;
* ``{"op": "sleep", "seconds": S}``.

Imports nothing of the tests (its folder is not a package here); the repository files are
written by the test (tests/integration/feast/test_feast_online_store.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Any


def _online(store: Any, request: dict[str, Any]) -> dict[str, Any]:
    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

    rows, features, full = request["rows"], request["features"], request["full"]
    if request["async"]:
        response = asyncio.run(
            store.get_online_features_async(features=features, entity_rows=rows, full_feature_names=full)
        )
    else:
        response = store.get_online_features(features=features, entity_rows=rows, full_feature_names=full)
    proto = response.proto
    names = list(proto.metadata.feature_names.val)
    values = response.to_dict()
    statuses = {
        name: [FieldStatus.Name(s) for s in vector.statuses] for name, vector in zip(names, proto.results, strict=True)
    }
    return {"names": names, "values": {n: values[n] for n in names}, "statuses": statuses}


def _step(store: Any, step: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    from feast.data_source import PushMode

    op = step["op"]
    if op == "materialize":
        store.materialize(
            start_date=datetime.fromisoformat(step["start"]), end_date=datetime.fromisoformat(step["end"])
        )
    elif op == "materialize_incremental":
        store.materialize_incremental(end_date=datetime.fromisoformat(step["end"]))
    elif op in ("push", "push_async"):
        frame = pd.DataFrame(step["rows"])
        # "now" / "now-10": relative to the push itself (a pushed view's ttl is a few seconds here)
        frame["event_timestamp"] = [
            pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=float(t[4:] or 0)) for t in frame["event_timestamp"]
        ]
        if op == "push":
            store.push(step["source"], frame, to=PushMode.ONLINE)
        else:
            asyncio.run(store.push_async(step["source"], frame, to=PushMode.ONLINE))
    elif op == "online":
        return _online(store, step)
    elif op == "sleep":
        time.sleep(step["seconds"])
    else:
        raise SystemExit(f"unknown step {op!r}")
    return {"ok": True}


def main(argv: list[str]) -> int:
    from feast import FeatureStore

    store = FeatureStore(repo_path=argv[0])
    print(json.dumps([_step(store, step) for step in json.loads(argv[1])], default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
