"""The local broker's cluster id: ``kafka-storage format -t <id>`` reads an id that starts
with ``-`` as an option, so about one start in 64 failed before ids were drawn like Kafka's."""

from __future__ import annotations

import base64
import uuid

from featurestore.jobs.dev import local_kafka


def test_cluster_ids_never_start_with_a_dash(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dash_first = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))
    drawn = iter([dash_first, uuid.UUID(int=1)])
    monkeypatch.setattr(local_kafka.uuid, "uuid4", lambda: next(drawn))
    cluster_id = local_kafka._cluster_id()
    monkeypatch.undo()
    assert cluster_id == base64.urlsafe_b64encode(uuid.UUID(int=1).bytes).decode().rstrip("=")
    assert all(not local_kafka._cluster_id().startswith("-") for _ in range(2000))
