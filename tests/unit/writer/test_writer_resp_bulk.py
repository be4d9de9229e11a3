"""The vectorised RESP builder produces exactly the reference bytes (pure: no Spark, no Redis)."""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from redis.crc import key_slot

from featurestore.jobs.examples.fraud.definitions import catalog as example_catalog
from featurestore.jobs.write.bulk_encoder import ASKING, BatchEncoder, key_slots, payload_bytes, with_asking
from featurestore.jobs.write.commands import BatchWritePlan, resp
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, DType, Feature, FeatureView
from tests.helpers.writer import (
    CARD_ROWS,
    COMPUTED_AT,
    EDGE_ROWS,
    PACKED_ROWS,
    SHOP_ROWS,
    acct,
    card_compact,
    edge,
    packed_scores,
    shop_stats,
    writer_catalog,
)


def arrow_type(view: FeatureView, name: str) -> pa.DataType:
    if name == view.entity.join_key:
        return pa.int64() if view.entity.id_dtype == "int64" else pa.string()
    return {
        DType.INT64: pa.int64(),
        DType.FLOAT64: pa.float64(),
        DType.FLOAT32: pa.float32(),
        DType.STRING: pa.string(),
        DType.BOOL: pa.bool_(),
        DType.VECTOR: pa.list_(pa.float32()),
    }[DType(view.feature(name).dtype)]


def batch_of(view: FeatureView, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    columns = [view.entity.join_key, *view.feature_names]
    return pa.RecordBatch.from_pydict(
        {c: pa.array([r.get(c) for r in rows], arrow_type(view, c)) for c in columns},
    )


def reference_bytes(plan: BatchWritePlan, row: dict[str, Any]) -> bytes:
    commands = plan.commands(row[plan.view.entity.join_key], row, COMPUTED_AT)
    return b"".join(resp(c) for c in commands)


def assert_same_as_reference(view: FeatureView, rows: list[dict[str, Any]], catalog: Any = writer_catalog) -> None:
    plan = BatchWritePlan.build(catalog, view)
    batch = batch_of(view, rows)
    encoded = BatchEncoder(plan).encode(batch, COMPUTED_AT)
    assert encoded.failures == ()
    assert list(encoded.rows) == list(range(len(rows)))
    as_arrow = batch.to_pylist()  # float32 values as the float32 Spark hands over
    expected = [reference_bytes(plan, row) for row in as_arrow]
    assert encoded.payload.to_pylist() == expected
    assert bytes(payload_bytes(encoded.payload)) == b"".join(expected)
    counts = [len(plan.commands(r[view.entity.join_key], r, COMPUTED_AT)) for r in as_arrow]
    assert encoded.replies.tolist() == counts


@pytest.mark.parametrize(
    ("view", "rows"),
    [(edge, EDGE_ROWS), (packed_scores, PACKED_ROWS), (shop_stats, SHOP_ROWS), (card_compact, CARD_ROWS)],
    ids=str,
)
def test_edge_values_match_the_reference_bytes(view: FeatureView, rows: list[dict[str, Any]]) -> None:
    assert_same_as_reference(view, rows)


def test_edge_bytes_are_the_documented_ones() -> None:
    """A few literal values, so a change in both paths at once would not go unnoticed."""
    plan = BatchWritePlan.build(writer_catalog, edge)
    payload = BatchEncoder(plan).encode(batch_of(edge, EDGE_ROWS), COMPUTED_AT).payload.to_pylist()
    row3 = payload[2]  # n = int64 max, amount NaN -> HDEL, ratio NaN -> HDEL, unicode label
    assert b"$1\r\nn\r\n$19\r\n9223372036854775807\r\n" in row3
    assert b"$5\r\nlabel\r\n$9\r\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\r\n" in row3
    assert b"*4\r\n$4\r\nHDEL\r\n$11\r\nfs:acct:{3}\r\n$6\r\namount\r\n$5\r\nratio\r\n" in row3
    row5 = payload[4]  # -0.0 stays "-0", the empty-string label of row 1 is a present field
    assert b"$6\r\namount\r\n$2\r\n-0\r\n$5\r\nratio\r\n$2\r\n-0\r\n" in row5
    assert b"$5\r\nlabel\r\n$0\r\n\r\n" in payload[0]
    assert b"$3\r\nemb\r\n$12\r\n" + np.array([0.0, -0.0, 1.5], "<f4").tobytes() in payload[0]
    assert payload[1] == (  # everything null: only _ts is set; TTLs as the freshness rules say
        b"*4\r\n$4\r\nHSET\r\n$11\r\nfs:acct:{2}\r\n$8\r\n_ts:edge\r\n$13\r\n1760000000123\r\n"
        b"*8\r\n$4\r\nHDEL\r\n$11\r\nfs:acct:{2}\r\n$1\r\nn\r\n$6\r\namount\r\n$5\r\nratio\r\n"
        b"$5\r\nlabel\r\n$4\r\nflag\r\n$3\r\nemb\r\n"
        b"*3\r\n$6\r\nEXPIRE\r\n$11\r\nfs:acct:{2}\r\n$6\r\n604800\r\n"
        b"*6\r\n$7\r\nHEXPIRE\r\n$11\r\nfs:acct:{2}\r\n$5\r\n86400\r\n$6\r\nFIELDS\r\n$1\r\n1\r\n$8\r\n_ts:edge\r\n"
    )


@pytest.mark.parametrize("layout", ["text", "compact"])
@pytest.mark.parametrize("view_name", ["user_transactions", "user_profile", "merchant_risk"])
def test_random_rows_of_the_example_views_match_the_reference(view_name: str, layout: str) -> None:
    catalog = Catalog(views=tuple(dataclasses.replace(v, layout=layout) for v in example_catalog.batch_views))
    view = catalog.view(view_name)
    rng = random.Random(view_name)

    def value(dtype: DType) -> Any:
        if rng.random() < 0.15:
            return None
        if dtype is DType.INT64:
            return rng.choice([rng.randint(-(2**63), 2**63 - 1), rng.randint(-1000, 1000)])
        if dtype in (DType.FLOAT64, DType.FLOAT32):
            return rng.choice(
                [rng.uniform(-1e6, 1e6), rng.gauss(0, 1) * 10.0 ** rng.randint(-40, 40), math.nan, 0.0, -0.0]
            )
        if dtype is DType.STRING:
            return "".join(rng.choice("ab€😀 \r\n{}") for _ in range(rng.randint(0, 12)))
        return rng.random() < 0.5

    rows = []
    for i in range(1500):
        entity_id: Any = rng.randint(-(2**63), 2**63 - 1) if view.entity.id_dtype == "int64" else f"m-{i}-é"
        rows.append({view.entity.join_key: entity_id, **{f.name: value(DType(f.dtype)) for f in view.features}})
    assert_same_as_reference(view, rows, catalog)


def test_rows_that_cannot_be_encoded_are_reported_with_the_codec_message() -> None:
    plan = BatchWritePlan.build(writer_catalog, shop_stats)
    rows = [
        {"shop_id": "ok-1", "visits": 1},
        {"shop_id": None, "visits": 2},
        {"shop_id": "", "visits": 3},
        {"shop_id": "a{b}", "visits": 4},
        {"shop_id": "tab\there", "visits": 5},
        {"shop_id": "y" * 513, "visits": 6},
        {"shop_id": "ok-2", "visits": 7},
    ]
    encoded = BatchEncoder(plan).encode(batch_of(shop_stats, rows), COMPUTED_AT)
    assert encoded.rows.tolist() == [0, 6]
    assert encoded.payload.to_pylist() == [reference_bytes(plan, rows[0]), reference_bytes(plan, rows[6])]
    messages = dict(encoded.failures)
    assert sorted(messages) == [1, 2, 3, 4, 5]
    assert "null id in join key column 'shop_id'" in messages[1]
    for row in (2, 3, 4, 5):
        with pytest.raises(codec.EncodingError) as refused:
            codec.encode_id(shop_stats.entity, rows[row]["shop_id"])
        assert str(refused.value) in messages[row]
        assert "shop_stats" in messages[row]


def test_bad_vectors_are_failed_rows_and_the_rest_is_encoded() -> None:
    plan = BatchWritePlan.build(writer_catalog, edge)
    rows = [
        {"acct_id": 1, "n": 1, "emb": [1.0, 2.0]},  # wrong dimension
        {"acct_id": 2, "n": 2, "emb": [1.0, None, 3.0]},  # null element
        {"acct_id": 3, "n": 3, "emb": [1.0, 2.0, 3.0]},
        {"acct_id": 4, "n": 4, "emb": None},
        {"acct_id": 5, "n": 5, "emb": [1.0, 2.0, 3.0, 4.0]},
    ]
    encoded = BatchEncoder(plan).encode(batch_of(edge, rows), COMPUTED_AT)
    assert encoded.rows.tolist() == [2, 3]
    assert encoded.payload.to_pylist() == [reference_bytes(plan, rows[2]), reference_bytes(plan, rows[3])]
    messages = dict(encoded.failures)
    assert "vector has 2 values, the definition says dim=3" in messages[0]
    assert "cannot encode" in messages[1] and "id 2" in messages[1]
    assert "vector has 4 values" in messages[4]


def test_a_wide_compact_record_split_in_parts_matches_the_reference() -> None:
    floats = tuple(Feature(f"w{i:02d}", "float64") for i in range(16))
    wide = FeatureView(
        "wide", acct, (*floats, Feature("wn", "int64"), Feature("ws", "string"), Feature("wb", "bool")),
        ttl=60, layout="compact",
    )  # fmt: skip
    assert wide.record_part_count == 3
    rng = random.Random(5)
    rows = [
        {"acct_id": i, **{f.name: rng.choice([None, math.nan, rng.uniform(-1e9, 1e9)]) for f in floats},
         "wn": rng.choice([None, rng.randint(-(2**63), 2**63 - 1)]), "wb": rng.choice([None, True, False]),
         "ws": rng.choice([None, "", "x" * rng.randint(0, 300)])}
        for i in range(300)
    ]  # fmt: skip
    assert_same_as_reference(wide, rows, Catalog(views=(wide,)))


def test_bad_vectors_in_a_compact_record_are_failed_rows() -> None:
    plan = BatchWritePlan.build(writer_catalog, card_compact)
    rows = [
        {"card_id": 1, "c_n": 1, "c_emb": [1.0, 2.0]},  # wrong dimension
        {"card_id": 2, "c_n": 2, "c_emb": [1.0, 2.0, 3.0]},
        {"card_id": 3, "c_n": 3, "c_emb": [1.0, None, 3.0]},  # null element
    ]
    encoded = BatchEncoder(plan).encode(batch_of(card_compact, rows), COMPUTED_AT)
    assert encoded.rows.tolist() == [1]
    assert encoded.payload.to_pylist() == [reference_bytes(plan, rows[1])]
    messages = dict(encoded.failures)
    assert (
        "view 'card_compact', id 1" in messages[0] and "vector has 2 values, the definition says dim=3" in messages[0]
    )
    assert "'c_emb'" in messages[2]


def test_key_slots_equal_redis_py_for_int_and_unicode_ids() -> None:
    rng = random.Random(7)
    ints = [rng.randint(-(2**63), 2**63 - 1) for _ in range(3000)] + list(range(-5, 300))
    texts = ["".join(rng.choice("az09-_é€😀 ") for _ in range(rng.randint(1, 40))) for _ in range(3000)]
    for entity, ids in ((edge.entity, ints), (shop_stats.entity, texts)):
        encoded_ids = pa.array([codec.encode_id(entity, i) for i in ids], pa.binary())
        expected = [key_slot(codec.entity_key(entity, i)) for i in ids]
        assert key_slots(encoded_ids).tolist() == expected
    assert key_slots(pa.array([], pa.binary())).tolist() == []


def test_sliced_and_taken_payloads_join_exactly() -> None:
    plan = BatchWritePlan.build(writer_catalog, edge)
    encoded = BatchEncoder(plan).encode(batch_of(edge, EDGE_ROWS), COMPUTED_AT)
    every = encoded.payload.to_pylist()
    assert bytes(payload_bytes(encoded.payload.slice(2, 3))) == b"".join(every[2:5])
    assert bytes(payload_bytes(encoded.payload, np.array([6, 0, 3]))) == every[6] + every[0] + every[3]


def test_asking_prefixes_every_command() -> None:
    plan = BatchWritePlan.build(writer_catalog, edge)
    commands = plan.commands(1, EDGE_ROWS[0], COMPUTED_AT)
    assert with_asking(commands) == b"".join(ASKING + resp(c) for c in commands)
    assert with_asking(commands).count(ASKING) == len(commands) == 3  # HSET, EXPIRE, HEXPIRE


def test_very_long_and_growing_values_match_the_reference() -> None:
    """Lengths beyond the prefix table (64 KiB) and lengths that make the table grow."""
    rows = [
        {"shop_id": "long", "visits": 1, "share": 0.5, "tag": "z" * 70_000},
        {"shop_id": "mid", "visits": 2, "share": None, "tag": "é" * 3000},
        {"shop_id": "s", "visits": None, "share": 1.5, "tag": ""},
    ]
    assert_same_as_reference(shop_stats, rows)
    assert_same_as_reference(shop_stats, rows[1:])
