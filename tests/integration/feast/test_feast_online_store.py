"""The real Feast 0.67 (side venv) on our online store: Feast's CLI and SDK, our Redis 8 and Cluster.

A Feast repository whose ``feature_store.yaml`` names ``featurestore.feast.FeatureStoreOnlineStore``
(tests/helpers/feast.py) goes through ``feast apply``, ``materialize``, ``push`` and
``get_online_features`` (sync and async, ``full_feature_names`` both ways); what it wrote is our
storage format, served by our ``FeatureReader`` with the same values (and what our
``StreamingWriter`` wrote is served by Feast); our statuses reach Feast value by value (present,
missing, null, stale, an expired pushed field); ``feast serve`` answers one request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from featurestore.feast.mapping import FeastField, FeastViewSpec, catalog_for, feast_status, view_for
from featurestore.jobs.streaming import StreamingWriter
from featurestore.readers import FeatureReader, FeatureStatus, codec
from tests.helpers import feast as fh

pytestmark = pytest.mark.slow

LIVE_TTL = 6


def _repo(feast_python: Path, folder: Path, url: str) -> Path:
    repo = fh.write_repo(folder, url, fh.stats_rows(), live_ttl_seconds=LIVE_TTL)
    made = fh.run(feast_python, ["-c", fh.PARQUET, str(repo)], repo)
    assert made.returncode == 0, made.stderr
    applied = fh.feast_cli(feast_python, repo, "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return repo


def _our_catalog(live_ttl: int = LIVE_TTL, layout: str = "text") -> Any:
    """Our definitions of the two Feast views, from the same mapping the plug-in uses."""
    key = (FeastField("driver_id", "INT64"),)
    stats = FeastViewSpec(
        "driver_stats",
        ("driver",),
        key,
        (
            FeastField("conv_rate", "FLOAT"),
            FeastField("acc_rate", "DOUBLE"),
            FeastField("trips", "INT64"),
            FeastField("city", "STRING"),
            FeastField("active", "BOOL"),
            FeastField("embedding", "FLOAT_LIST", 3),
        ),
        86400,
    )
    live = FeastViewSpec(
        "driver_live", ("driver",), key, (FeastField("speed", "DOUBLE"), FeastField("zone", "STRING")), live_ttl, True
    )
    return catalog_for([view_for(stats, layout=layout), view_for(live, layout=layout)])


def test_feast_writes_and_reads_our_format_with_our_statuses(
    feast_python: Path, redis_url: str, tmp_path: Path
) -> None:
    repo = _repo(feast_python, tmp_path / "repo", redis_url)
    client = redis.Redis.from_url(redis_url)
    assert set(client.hkeys(codec.REGISTRY_KEY)) == {b"driver_stats", b"driver_live"}  # published at apply

    everything = [f"driver_stats:{f}" for f in fh.STATS] + [f"driver_live:{f}" for f in fh.LIVE]
    stats_only = [f"driver_stats:{f}" for f in fh.STATS]
    ids = [1, 2, 3, 9]
    steps = [
        fh.materialize_step(),
        {
            "op": "push",
            "source": "driver_push",
            "rows": {"driver_id": [1], "speed": [42.5], "zone": ["A"], "event_timestamp": ["now"]},
        },
        {
            "op": "push_async",
            "source": "driver_push",
            "rows": {"driver_id": [2], "speed": [None], "zone": ["B"], "event_timestamp": ["now"]},
        },
        # out of order: older than what is stored, the guard skips it
        {
            "op": "push",
            "source": "driver_push",
            "rows": {"driver_id": [1], "speed": [1.0], "zone": ["Z"], "event_timestamp": ["now-30"]},
        },
        fh.online_step(everything, full=False, is_async=False, ids=ids),
        fh.online_step(everything, full=True, is_async=True, ids=ids),
        fh.online_step(stats_only, full=True, is_async=False, ids=ids),
        fh.online_step(stats_only, full=False, is_async=True, ids=ids),
        {"op": "sleep", "seconds": LIVE_TTL + 1},
        fh.online_step(everything, full=False, is_async=False, ids=[1]),
    ]
    answers = fh.drive(feast_python, repo, steps)
    sync_all, async_all, sync_full_stats, async_stats, _, expired = answers[4:]

    # full_feature_names both ways: view__feature or the bare name
    assert set(sync_all["names"]) == {"driver_id", *fh.STATS, *fh.LIVE}
    assert set(async_all["names"]) == {"driver_id"} | {f"driver_stats__{f}" for f in fh.STATS} | {
        f"driver_live__{f}" for f in fh.LIVE
    }
    assert set(sync_full_stats["names"]) == {"driver_id"} | {f"driver_stats__{f}" for f in fh.STATS}
    assert set(async_stats["names"]) == {"driver_id", *fh.STATS}

    for answer in (sync_all, async_all):
        values, statuses = fh.by_feature(answer, "driver_stats")
        values.update(fh.by_feature(answer, "driver_live")[0])
        statuses.update(fh.by_feature(answer, "driver_live")[1])
        # driver 1: present everywhere; the late push (speed 1.0) was skipped by the guard
        assert [values[f][0] for f in ("conv_rate", "acc_rate", "trips", "city", "active", "speed", "zone")] == [
            0.5,
            0.1,
            10,
            "Paris",
            True,
            42.5,
            "A",
        ]
        assert values["embedding"][0] == [1.0, 2.0, 3.0]
        assert all(statuses[f][0] == "PRESENT" for f in fh.STATS + fh.LIVE)
        # driver 2: conv_rate and speed were null (absent fields, the view's _ts present)
        assert (values["conv_rate"][1], statuses["conv_rate"][1]) == (None, "NULL_VALUE")
        assert (values["speed"][1], statuses["speed"][1]) == (None, "NULL_VALUE")
        assert (values["zone"][1], statuses["zone"][1]) == ("B", "PRESENT")
        assert values["embedding"][1] == [0.5, 0.25, -1.0] and values["trips"][1] == 20
        # driver 3: computed 2 days ago, the view's ttl is 1 day: stale, no value
        assert all(statuses[f][2] == "OUTSIDE_MAX_AGE" and values[f][2] is None for f in fh.STATS)
        assert all(statuses[f][2] == "NOT_FOUND" for f in fh.LIVE)  # never pushed
        # driver 9: never written
        assert all(statuses[f][3] == "NOT_FOUND" and values[f][3] is None for f in fh.STATS + fh.LIVE)
    for answer in (sync_full_stats, async_stats):  # the same answers, named either way
        assert fh.by_feature(answer, "driver_stats") == (
            {f: v for f, v in fh.by_feature(sync_all, "driver_stats")[0].items() if f in fh.STATS},
            {f: s for f, s in fh.by_feature(sync_all, "driver_stats")[1].items() if f in fh.STATS},
        )
    # the pushed fields expired with their per-field TTL; the batch view is still there
    values, statuses = fh.by_feature(expired, "driver_stats")
    assert (statuses["speed"], statuses["zone"], statuses["trips"]) == (["NOT_FOUND"], ["NOT_FOUND"], ["PRESENT"])

    # our storage format: one readable hash per entity, key TTL = the batch view's ttl
    stored = client.hgetall("fs:driver:{1}")
    assert {k: stored[k] for k in (b"conv_rate", b"acc_rate", b"trips", b"city", b"active")} == {
        b"conv_rate": b"0.5",
        b"acc_rate": b"0.1",
        b"trips": b"10",
        b"city": b"Paris",
        b"active": b"1",
    }
    assert b"_ts:driver_stats" in stored and b"speed" not in stored  # the pushed field expired
    assert 0 < client.ttl("fs:driver:{1}") <= 86400
    assert b"conv_rate" not in client.hgetall("fs:driver:{2}")  # null: absent

    # `feast serve`: Feast's HTTP feature server answers from our store, with our statuses
    with fh.serving(feast_python, repo) as base:
        served = fh.post_json(
            base + "/get-online-features",
            {"features": ["driver_stats:trips", "driver_stats:conv_rate"], "entities": {"driver_id": [1, 2, 3, 9]}},
        )
    names = served["metadata"]["feature_names"]
    by_name = {name: result for name, result in zip(names, served["results"], strict=True)}
    assert by_name["trips"]["values"] == [10, 20, None, None]
    assert by_name["trips"]["statuses"] == ["PRESENT", "PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"]
    assert by_name["conv_rate"]["statuses"] == ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND"]

    # same answers both ways: what Feast wrote, our reader serves with the same values and statuses
    reader = FeatureReader.connect(redis_url, catalog=_our_catalog())
    batch = reader.get_many(ids, fh.STATS, entity="driver")
    feast_values, feast_statuses = fh.by_feature(sync_all, "driver_stats")
    for row, vector in enumerate(batch):
        age = vector.age("driver_stats")
        for name in fh.STATS:
            assert feast_status(vector.status(name), age) == feast_statuses[name][row], (row, name)
            if feast_statuses[name][row] == "PRESENT":
                ours = vector[name]
                assert (list(ours) if isinstance(ours, tuple) else ours) == feast_values[name][row], (row, name)
    reader.close()


def test_what_the_store_cannot_represent_is_refused_at_apply(
    feast_python: Path, redis_url: str, tmp_path: Path
) -> None:
    repo = fh.write_repo(tmp_path / "repo", redis_url, fh.stats_rows())
    applied = fh.feast_cli(feast_python, repo, "apply", env={"FS_FEAST_UNSUPPORTED": "1"})
    output = applied.stdout + applied.stderr
    assert applied.returncode != 0, output
    assert "Feast feature view 'driver_blobs': feature 'photo' has Feast type BYTES" in output
    # two views of one entity with a feature of the same name: refused, saying what to do
    applied = fh.feast_cli(feast_python, repo, "apply", env={"FS_FEAST_FRESH": "1"})
    output = applied.stdout + applied.stderr
    assert applied.returncode != 0, output
    assert "trips" in output and "hash_per_view: true" in output


def test_the_password_comes_from_the_environment(feast_python: Path, secured_url: str, tmp_path: Path) -> None:
    """An ACL user's password as ``${VAR}`` in feature_store.yaml (Feast expands it): apply connects."""
    password = secured_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    url = secured_url.replace(f":{password}@", ":${FS_TEST_REDIS_PASSWORD}@")
    repo = fh.write_repo(tmp_path / "repo", url, fh.stats_rows())
    assert password not in (repo / "feature_store.yaml").read_text()
    applied = fh.feast_cli(feast_python, repo, "apply", env={"FS_TEST_REDIS_PASSWORD": password})
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert set(redis.Redis.from_url(secured_url).hkeys(codec.REGISTRY_KEY)) == {b"driver_stats", b"driver_live"}
    refused = fh.feast_cli(feast_python, repo, "apply", env={"FS_TEST_REDIS_PASSWORD": "wrong"})
    assert refused.returncode != 0 and password not in refused.stdout + refused.stderr


@pytest.mark.cluster
def test_feast_on_a_cluster_then_teardown(feast_python: Path, cluster_url: str, tmp_path: Path) -> None:
    """Feast writes and reads on the Cluster, batch views in the compact layout; it also serves what
    OUR streaming writer wrote."""
    assert cluster_url.endswith("?cluster=true")
    repo = fh.write_repo(tmp_path / "repo", cluster_url, fh.stats_rows(), live_ttl_seconds=600, layout="compact")
    made = fh.run(feast_python, ["-c", fh.PARQUET, str(repo)], repo)
    assert made.returncode == 0, made.stderr
    applied = fh.feast_cli(feast_python, repo, "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    catalog = _our_catalog(live_ttl=600, layout="compact")  # a text catalogue would fail the registry check
    with StreamingWriter.connect(cluster_url, catalog.view("driver_live"), catalog=catalog) as ours:
        ours.write(1, {"speed": 12.25, "zone": "N"})
        ours.write(2, {"speed": None, "zone": "S"})

    now = datetime.now(UTC).isoformat()
    steps = [
        {"op": "materialize_incremental", "end": now},
        fh.online_step([f"driver_stats:{f}" for f in fh.STATS], full=False, is_async=True, ids=[1, 2, 3]),
        fh.online_step([f"driver_live:{f}" for f in fh.LIVE], full=True, is_async=False, ids=[1, 2, 3]),
    ]
    answers = fh.drive(feast_python, repo, steps)
    values, statuses = fh.by_feature(answers[1], "driver_stats")
    assert values["trips"] == [10, 20, None] and values["city"] == ["Paris", "Lyon", None]
    # a first materialize-incremental starts one ttl back: driver 3's 2-day-old row is not loaded
    assert statuses["conv_rate"] == ["PRESENT", "NULL_VALUE", "NOT_FOUND"]
    values, statuses = fh.by_feature(answers[2], "driver_live")  # written by our StreamingWriter
    assert (values["speed"], values["zone"]) == ([12.25, None, None], ["N", "S", None])
    assert statuses["speed"] == ["PRESENT", "NULL_VALUE", "NOT_FOUND"]
    reader = FeatureReader.connect(cluster_url, catalog=catalog)
    assert reader.get(2, ["trips", "city"], entity="driver").to_list() == [20, "Lyon"]
    assert b"_c:driver_stats" in redis.RedisCluster.from_url(cluster_url).hgetall("fs:driver:{2}")  # the record

    # `feast teardown`: the views' fields leave every entity hash (on every shard) and the registry
    down = fh.feast_cli(feast_python, repo, "teardown")
    assert down.returncode == 0, down.stdout + down.stderr
    assert reader.get(2, ["trips", "city"], entity="driver", timeout=5).statuses == {
        "trips": FeatureStatus.MISSING,
        "city": FeatureStatus.MISSING,
    }
    reader.close()
