"""`featurestore inspect`'s decoding, without a server: the reader's plans on a stored hash
(against a real Redis: tests/integration/ops/test_inspect.py)."""

from __future__ import annotations

import pytest

from featurestore.jobs.ops.inspect import EntityReport, decode_hash, entity_id_of, format_report, parse_key
from featurestore.readers import codec
from featurestore.readers.errors import ConfigurationError, FeatureNotFoundError
from tests.helpers.reader import compact, dense, scores, test_catalog, user

NOW = 1_700_000_000_000


def test_every_layout_is_decoded_with_statuses_ages_and_field_ttls() -> None:
    stored = {
        # text: scores, written 10 s ago
        b"n_orders": b"7", b"segment": b"gold", b"_ts:scores": b"%d" % (NOW - 10_000),
        # packed float32 (c1 null), written 2 h ago: older than max_age (1 h) -> stale
        b"_f32:compact": codec.encode_packed(compact, {"c2": 2.5}) or b"", b"c_count": b"4",
        b"_ts:compact": b"%d" % (NOW - 7_200_000),
        # compact record
        **dict(zip(codec.record_fields(dense), codec.split_record(
            codec.encode_record(dense, {"d_count": -3, "d_tag": "é", "d_emb": [1.0, 2.0]}), 2))),
        b"_ts:dense": b"%d" % (NOW - 60_000),
        b"stray": b"\x00\x01",
    }  # fmt: skip
    lines, unknown = decode_hash(test_catalog, user, stored, {b"_c:dense": 3000, b"segment": -1}, NOW)
    by_name = {line.feature: line for line in lines}
    assert (by_name["n_orders"].value, by_name["n_orders"].status, by_name["n_orders"].age_seconds) == (
        7,
        "present",
        10,
    )
    assert by_name["spend"].status == "missing" and by_name["spend"].value == 0.0  # the default
    assert by_name["segment"].field_ttl_seconds is None  # -1: no TTL of its own
    assert (by_name["c2"].value, by_name["c2"].status, by_name["c2"].field) == (2.5, "stale", "_f32:compact")
    assert by_name["c1"].status == "missing" and by_name["c1"].value == -1.0
    assert by_name["c_count"].value == 4 and by_name["c_count"].status == "stale"  # the stored value, shown
    d = {name: by_name[name] for name in dense.feature_names}
    assert [x.value for x in d.values()] == [-3, None, 0.5, "é", False, (1.0, 2.0)]
    assert [x.status for x in d.values()] == ["present", "missing", "missing", "present", "missing", "present"]
    assert {x.field for x in d.values()} == {"_c:dense"} and d["d_tag"].field_ttl_seconds == 3000
    assert d["d_tag"].age_seconds == 60 and d["d_tag"].layout == "compact"
    assert by_name["clicks_1m"].age_seconds is None  # the streaming view has no `_ts` here
    assert unknown == {"stray": "b'\\x00\\x01'"}
    text = format_report(EntityReport("fs:user:{1}", "user", True, 600, "listpack", 180, lines, unknown))
    assert "fs:user:{1}  key TTL 10m  encoding listpack  memory 180 bytes" in text
    assert any(row.split()[:4] == ["dense", "d_tag", '"é"', "present"] for row in text.splitlines())
    assert "unknown field 'stray'" in text


def test_keys_and_ids_are_checked_with_clear_errors() -> None:
    assert parse_key(test_catalog, "fs:user:{42}") == (user, 42)
    assert parse_key(test_catalog, b"fs:account:{a b}")[1] == "a b"
    with pytest.raises(ConfigurationError, match="is not a feature-store key"):
        parse_key(test_catalog, "user:42")
    with pytest.raises(ConfigurationError, match="entity 'user' has int64 ids; 'x' in"):
        parse_key(test_catalog, "fs:user:{x}")
    with pytest.raises(FeatureNotFoundError, match="no entity 'shop'"):
        parse_key(test_catalog, "fs:shop:{1}")
    assert entity_id_of(user, "-5") == -5
    with pytest.raises(ConfigurationError, match="int64 ids; '4.5' is not one"):
        entity_id_of(user, "4.5")
    assert scores.entity is user
