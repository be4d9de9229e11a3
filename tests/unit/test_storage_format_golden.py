"""Golden tests: the exact bytes of the storage format (docs/storage-format.md).

If one of these fails, the format changed: data written by an older version would be
read differently.  Change the format only on purpose, with FORMAT_VERSION and the doc.
"""

from __future__ import annotations

import json
import math
import struct
from datetime import timedelta

import pytest

from featurestore.jobs.write.commands import BatchWritePlan, resp
from featurestore.readers import Entity, Feature, FeatureView, codec, load_catalog
from featurestore.readers.errors import DecodingError, EncodingError

user = Entity("user", join_key="user_id")
merchant = Entity("merchant", join_key="merchant_id", id_dtype="string")


def test_keys() -> None:
    assert codec.entity_key(user, 42) == b"fs:user:{42}"
    assert codec.entity_key(user, -7) == b"fs:user:{-7}"
    assert codec.entity_key(user, 2**63 - 1) == b"fs:user:{9223372036854775807}"
    assert codec.entity_key(merchant, "m0001") == b"fs:merchant:{m0001}"
    assert codec.entity_key(merchant, "café ☕") == "fs:merchant:{café ☕}".encode()
    assert codec.ts_field("user_profile") == b"_ts:user_profile"
    assert codec.REGISTRY_KEY == b"fs:registry"


@pytest.mark.parametrize(
    ("entity", "bad_id", "message"),
    [
        (user, "42", "int64 ids; '42' .* is not an integer"),
        (user, True, "is not an integer"),
        (user, 4.0, "is not an integer"),
        (user, 2**63, "outside the int64 range"),
        (merchant, 17, "string ids; 17 .* is not a str"),
        (merchant, "", "cannot be encoded"),
        (merchant, "a}b", "cannot be encoded"),
        (merchant, "a{b", "cannot be encoded"),
        (merchant, "a\nb", "cannot be encoded"),
        (merchant, "\ud800", "not valid Unicode"),
        (merchant, "x" * 513, "more than 512"),
    ],
)
def test_ids_that_cannot_be_encoded_are_refused_naming_the_entity(entity: Entity, bad_id: object, message: str) -> None:
    with pytest.raises(EncodingError, match=f"entity '{entity.name}'.*{message}"):
        codec.encode_id(entity, bad_id)


F64 = Feature("x", "float64")
F32 = Feature("x", "float32")


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (0.1, b"0.1"),
        (1.0, b"1"),  # integral floats carry no ".0" (listpack stores them as integers)
        (-0.0, b"-0"),
        (0.0, b"0"),
        (1e-5, b"0.00001"),
        (1e-7, b"1e-7"),
        (123456789.0, b"123456789"),
        (1.5e10, b"1.5e+10"),
        (1 / 3, b"0.3333333333333333"),
        (1.7976931348623157e308, b"1.7976931348623157e+308"),
        (5e-324, b"5e-324"),
        (math.inf, b"inf"),
        (-math.inf, b"-inf"),
        (math.nan, None),  # NaN is null: an absent field
        (None, None),
        (7, b"7"),
    ],
)
def test_float64_values(value: float | None, stored: bytes | None) -> None:
    assert codec.encode_value(F64, value) == stored
    if stored is not None:
        decoded = codec.decode_value(F64, stored)
        assert decoded == value and math.copysign(1, decoded) == math.copysign(1, value)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (0.1, b"0.1"),  # shortest text that round-trips the float32, not the float64's 17 digits
        (1 / 3, b"0.33333334"),
        (16777217.0, b"16777216"),  # rounds to the nearest float32
        (3.4e38, b"3.4e+38"),
        (3.4028234663852886e38, b"3.4028235e+38"),  # FLT_MAX: shorter texts round above it
        (1e39, b"inf"),  # overflows float32
        (-2.5, b"-2.5"),
    ],
)
def test_float32_values(value: float, stored: bytes) -> None:
    assert codec.encode_value(F32, value) == stored
    decoded = codec.decode_value(F32, stored)
    if stored != b"inf":
        assert struct.pack("<f", decoded) == struct.pack("<f", value)
    # read back as the float32 itself, as a float64 to the last bit: what the packed and compact
    # layouts, Spark's FloatType and the training set (float(np.float32(x))) give
    assert decoded == (math.inf if stored == b"inf" else struct.unpack("<f", struct.pack("<f", value))[0])


def test_a_float32_reads_as_the_float32_not_the_nearest_double_to_its_text() -> None:
    """Issue 25 item 10: "0.33333334" is the float32 0.3333333432674408, not the double 0.33333334."""
    stored = codec.encode_value(F32, 1 / 3)
    assert stored == b"0.33333334"  # the stored text is unchanged
    assert codec.decode_value(F32, stored) == 0.3333333432674408 != 0.33333334
    assert codec.decode_value(F32, b"1e39") == math.inf  # beyond float32 (not written by us): inf, no error


def test_every_layout_and_the_training_set_return_the_same_float32() -> None:
    """The text, packed and compact layouts decode a float32 feature to the same Python float, and
    that float is numpy's float32 upcast (what the training set returns), for many values."""
    import random

    import numpy as np

    from featurestore.readers.definitions import Entity, FeatureView

    rng = random.Random(25)
    values = [rng.uniform(-1e3, 1e3) for _ in range(400)] + [
        rng.random() * 10 ** rng.randint(-30, 30) for _ in range(400)
    ]
    entity = Entity("thing", "thing_id", "string")
    compact = FeatureView(name="c", entity=entity, features=(F32,), layout="compact", ttl=timedelta(days=1))
    record_decode = codec.record_decoder(compact)
    differed_before = 0
    for value in values:
        expected = float(np.float32(value))
        text = codec.encode_value(F32, value)
        assert text is not None
        assert codec.decode_value(F32, text) == expected  # text layout
        assert struct.unpack("<f", struct.pack("<f", value))[0] == expected  # packed layout's field
        assert record_decode(codec.encode_record(compact, {"x": value}))[0] == expected  # compact layout
        differed_before += float(text) != expected
    assert differed_before > 0  # the old rule (the nearest double to the text) would have differed


@pytest.mark.parametrize(
    ("dtype", "value", "stored", "decoded"),
    [
        ("int64", 0, b"0", 0),
        ("int64", -(2**63), b"-9223372036854775808", -(2**63)),
        ("int64", 2**63 - 1, b"9223372036854775807", 2**63 - 1),
        ("int64", 3.0, b"3", 3),  # an integral float from a sloppy source is accepted
        ("bool", True, b"1", True),
        ("bool", False, b"0", False),
        ("string", "", b"", ""),  # an empty string is a value, not null
        ("string", "Zürich 北京 🙂", "Zürich 北京 🙂".encode(), "Zürich 北京 🙂"),
    ],
)
def test_scalar_values(dtype: str, value: object, stored: bytes, decoded: object) -> None:
    feature = Feature("x", dtype)
    assert codec.encode_value(feature, value) == stored
    assert codec.decode_value(feature, stored) == decoded


def test_vectors_are_packed_little_endian_float32() -> None:
    emb = Feature("emb", "vector", dim=3)
    stored = codec.encode_value(emb, [1.0, -2.5, 0.1])
    assert stored == b"\x00\x00\x80?\x00\x00 \xc0\xcd\xcc\xcc="
    assert codec.decode_value(emb, stored) == pytest.approx((1.0, -2.5, 0.1))
    with pytest.raises(EncodingError, match="vector has 2 values, the definition says dim=3"):
        codec.encode_value(emb, [1.0, 2.0])


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        ("int64", 2**63),
        ("int64", 1.5),
        ("int64", "3"),
        ("bool", 1),
        ("string", 5),
        ("float64", "1.0"),
        ("float32", True),
    ],
)
def test_values_that_do_not_fit_are_refused_naming_the_feature(dtype: str, value: object) -> None:
    with pytest.raises(EncodingError, match="feature 'x'"):
        codec.encode_value(Feature("x", dtype), value)


def test_undecodable_values_name_the_feature() -> None:
    with pytest.raises(DecodingError, match=r"feature 'x' \(int64\): stored value b'abc'"):
        codec.decode_value(Feature("x", "int64"), b"abc")
    with pytest.raises(DecodingError, match=r"feature 'x' \(bool\)"):
        codec.decode_value(Feature("x", "bool"), b"yes")


def test_packed_float32_field() -> None:
    view = FeatureView(
        "p", user, (Feature("a", "float32"), Feature("n", "int64"), Feature("b", "float32")), ttl=60, packed=True
    )
    assert codec.packed_field(view) == b"_f32:p"
    blob = codec.encode_packed(view, {"a": 1.5, "b": None})
    assert blob == struct.pack("<2f", 1.5, math.nan)
    assert codec.unpack_packed(view, blob) == (1.5, None)
    assert codec.encode_packed(view, {}) is None  # all null: the field is deleted


def test_batch_write_commands() -> None:
    catalog = load_catalog()
    plan = BatchWritePlan.build(catalog, catalog.view("user_profile"))
    commands = plan.commands(42, {"account_age_days": 12, "home_country": "FR", "kyc_verified": True}, 1700000000000)
    assert commands == [
        (b"HSET", b"fs:user:{42}", b"account_age_days", b"12", b"home_country", b"FR",
         b"kyc_verified", b"1", b"_ts:user_profile", b"1700000000000"),
        (b"HDEL", b"fs:user:{42}", b"account_type", b"credit_limit"),
        (b"EXPIRE", b"fs:user:{42}", b"604800"),
    ]  # fmt: skip
    # a view with a shorter TTL than the key also expires its own fields
    short = BatchWritePlan.build(catalog, catalog.view("user_transactions"))
    assert short.commands(1, {"txn_count_1d": 3}, 5)[-2:] == [
        (b"EXPIRE", b"fs:user:{1}", b"604800"),
        (b"HEXPIRE", b"fs:user:{1}", b"172800", b"FIELDS", b"2", b"txn_count_1d", b"_ts:user_transactions"),
    ]
    assert resp((b"EXPIRE", b"k", b"5")) == b"*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$1\r\n5\r\n"


def test_registry_entry() -> None:
    view = load_catalog().view("merchant_risk")
    entry = codec.registry_entry(view, published_at_ms=1700000000000, run_id="r1")
    assert entry == (
        b'{"entity":"merchant","features":['
        b'{"default":0,"dtype":"int64","name":"merchant_txn_count_30d","ttl":172800},'
        b'{"default":null,"dtype":"float32","name":"merchant_fraud_rate_30d","ttl":172800},'
        b'{"default":null,"dtype":"float32","name":"merchant_amount_mean_30d","ttl":172800},'
        b'{"default":0,"dtype":"int64","name":"merchant_distinct_users_30d","ttl":172800},'
        b'{"default":"unknown","dtype":"string","name":"merchant_category","ttl":172800}],'
        b'"fingerprint":"' + codec.fingerprint(view).encode() + b'","format_version":1,"id_dtype":"string",'
        b'"key":"fs:merchant:{<id>}","kind":"batch","layout":"text","max_age":172800,"packed":false,'
        b'"packed_features":[],"packed_field":null,"published_at_ms":1700000000000,"record_fields":[],'
        b'"run_id":"r1","ts_field":"_ts:merchant_risk",'
        b'"ttl":172800,"view":"merchant_risk"}'
    )
    assert json.loads(entry)["fingerprint"] == codec.fingerprint(view)
    assert codec.fingerprint(view) == "d01094917600206017e0c78627f5dbea562bfede1fe88d1404748f0424b7527c"


# --- the compact record (layout="compact") ---------------------------------------------

ALL_TYPES = FeatureView(
    "rec",
    user,
    (
        Feature("i", "int64"),
        Feature("f64", "float64"),
        Feature("f32", "float32"),
        Feature("s", "string"),
        Feature("b", "bool"),
        Feature("b2", "bool"),
        Feature("e", "vector", dim=2),
    ),
    ttl=60,
    layout="compact",
)


@pytest.mark.parametrize(
    ("values", "stored"),
    [
        # format 1, n=7, presence 0b1011111 (b2 null), bools: b=1 b2=0, then i=-1 -> zigzag 1,
        # 0.1 as float64 LE, 1.5 as float32 LE, "é" (2 bytes) length-prefixed, vector 2 x float32
        (
            {"i": -1, "f64": 0.1, "f32": 1.5, "s": "é", "b": True, "b2": None, "e": [1, 2]},
            "01 07 5f 01 01 9a9999999999b93f 0000c03f 02c3a9 0000803f 00000040",
        ),
        ({}, "01 07 00 00"),  # every feature null: only the header
        # int64 extremes: zigzag(-2^63) = 2^64-1 is 10 bytes, 2^63-1 as well
        ({"i": -(2**63)}, "01 07 01 00 ffffffffffffffffff01"),
        ({"i": 2**63 - 1}, "01 07 01 00 feffffffffffffffff01"),
        ({"i": 0}, "01 07 01 00 00"),
        ({"i": 63}, "01 07 01 00 7e"),
        ({"i": 64}, "01 07 01 00 8001"),  # zigzag 128: two bytes
        ({"i": -65}, "01 07 01 00 8101"),
        # NaN is null; inf is a value; a float64 beyond float32's range becomes inf; -0.0 keeps its sign
        ({"f64": math.nan, "f32": math.nan}, "01 07 00 00"),
        ({"f64": math.inf, "f32": -math.inf}, "01 07 06 00 000000000000f07f 000080ff"),
        ({"f64": -0.0, "f32": 1e39}, "01 07 06 00 0000000000000080 0000807f"),
        ({"s": ""}, "01 07 08 00 00"),  # the empty string is a value
        ({"s": "Zürich 北京 🙂"}, "01 07 08 00 13" + "Zürich 北京 🙂".encode().hex()),
        ({"b": False, "b2": True}, "01 07 30 02"),  # bools live in the bits: no value bytes
    ],
)
def test_compact_record_bytes(values: dict[str, object], stored: str) -> None:
    raw = codec.encode_record(ALL_TYPES, values)
    assert raw == bytes.fromhex(stored)
    decoded = codec.decode_record(ALL_TYPES, raw)
    for feature, got in zip(ALL_TYPES.features, decoded, strict=True):
        want = values.get(feature.name)
        if want is None or (isinstance(want, float) and math.isnan(want)):
            assert got is None, feature.name
        elif feature.name == "f32" and want == 1e39:
            assert got == math.inf
        elif feature.name == "e":
            assert got == tuple(float(x) for x in want)  # type: ignore[attr-defined]
        else:
            assert got == want and type(got) is type(want), feature.name
            if isinstance(want, float):
                assert math.copysign(1, got) == math.copysign(1, want)


def test_compact_record_field_and_big_strings() -> None:
    assert codec.record_field(ALL_TYPES) == b"_c:rec"
    long = "x" * 300  # length 300 = varint ac 02
    assert codec.encode_record(ALL_TYPES, {"s": long}) == bytes.fromhex("01 07 08 00 ac02") + long.encode()


def test_compact_record_reads_features_appended_later_as_missing() -> None:
    old = FeatureView("rec", user, (Feature("i", "int64"), Feature("b", "bool")), ttl=60, layout="compact")
    raw = codec.encode_record(old, {"i": 5, "b": True})
    assert raw == bytes.fromhex("01 02 03 01 0a")
    grown = FeatureView(
        "rec", user, (*old.features, Feature("x", "float64"), Feature("c", "bool")), ttl=60, layout="compact"
    )
    assert codec.decode_record(grown, raw) == [5, True, None, None]
    # the other way round a reader would misread: refused, naming the view
    with pytest.raises(DecodingError, match="view 'rec': the record holds 4 features, this definition has 2"):
        codec.decode_record(old, codec.encode_record(grown, {"i": 1}))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("02 07 00 00", "record format 2 is not known"),
        ("01 07 01 00 ff", "cannot be decoded"),  # varint cut short
        ("01 07 08 00 05 61", "cannot be decoded"),  # string runs past the end
        ("01 07 01 00 00 00", "1 bytes left over"),
        ("01 07 02 00 0000", "cannot be decoded"),  # float64 cut short
        ("01 07 08 00 01 ff", "cannot be decoded"),  # not UTF-8
    ],
)
def test_malformed_records_name_the_view(raw: str, message: str) -> None:
    with pytest.raises(DecodingError, match=f"view 'rec'.*{message}"):
        codec.decode_record(ALL_TYPES, bytes.fromhex(raw))


def test_compact_record_refuses_values_that_do_not_fit_naming_the_feature() -> None:
    for name, value in (("i", 2**63), ("i", "3"), ("b", 1), ("s", 5), ("f64", "1"), ("e", [1.0])):
        with pytest.raises(EncodingError, match=f"feature '{name}'"):
            codec.encode_record(ALL_TYPES, {name: value})


def test_compact_layout_is_in_the_fingerprint_and_the_contract() -> None:
    text = FeatureView("rec", user, ALL_TYPES.features, ttl=60)
    assert codec.fingerprint(text) != codec.fingerprint(ALL_TYPES)
    assert "layout" not in codec.view_spec(text)  # text fingerprints are the ones published before layouts
    contract = codec.view_contract(ALL_TYPES)
    assert (contract["layout"], contract["record_fields"], contract["record_parts"]) == ("compact", ["_c:rec"], 1)
    assert codec.view_contract(text)["layout"] == "text" and codec.view_contract(text)["record_fields"] == []
    split = FeatureView("rec", user, ALL_TYPES.features, ttl=60, layout="compact", record_parts=2)
    assert codec.fingerprint(split) != codec.fingerprint(ALL_TYPES)  # the parts decide decoding too


def test_compact_batch_write_commands() -> None:
    from featurestore.readers import Catalog

    plan = BatchWritePlan.build(Catalog(views=(ALL_TYPES,)), ALL_TYPES)
    record = codec.encode_record(ALL_TYPES, {"i": 1})
    assert plan.commands(42, {"i": 1}, 1700000000000) == [
        (b"HSET", b"fs:user:{42}", b"_c:rec", record, b"_ts:rec", b"1700000000000"),
        (b"EXPIRE", b"fs:user:{42}", b"60"),
    ]


def test_a_long_record_is_split_evenly_across_fields_to_stay_in_a_listpack() -> None:
    from featurestore.readers import Catalog
    from featurestore.readers.definitions import typical_record_bytes

    floats = tuple(Feature(f"f{i:02d}", "float64") for i in range(16))
    view = FeatureView(
        "wide", user, (*floats, Feature("n", "int64"), Feature("m", "int64"), Feature("s", "string"),
                       Feature("t", "string")), ttl=60, layout="compact",
    )  # fmt: skip
    # 5 header bytes + 128 + 2 typical ints (2 each) + 2 typical strings (9 each): 3 parts of <= 60
    assert typical_record_bytes(view.features) == 5 + 128 + 4 + 18 and view.record_part_count == 3
    assert codec.record_fields(view) == (b"_c:wide", b"_c1:wide", b"_c2:wide")
    assert codec.split_record(b"abcdefg", 3) == [b"abc", b"def", b"g"]
    assert codec.split_record(b"abcd", 3) == [b"ab", b"cd", b""]  # an empty part is still written
    values = {f.name: 1.5 for f in floats} | {"n": 1, "s": "FR"}
    record = codec.encode_record(view, values)
    assert len(record) == 5 + 128 + 1 + 3 and record[:5] == bytes.fromhex("01 14 ffff 05")
    plan = BatchWritePlan.build(Catalog(views=(view,)), view)
    hset = plan.commands(7, values, 1700000000000)[0]
    assert hset[2::2] == (b"_c:wide", b"_c1:wide", b"_c2:wide", b"_ts:wide")
    assert [len(part) for part in hset[3:8:2]] == [46, 46, 45] and b"".join(hset[3:8:2]) == record
    with pytest.raises(Exception, match="record_parts must be a whole number from 1 to 16"):
        FeatureView("wide", user, floats, ttl=60, layout="compact", record_parts=0)
    with pytest.raises(Exception, match="record_parts is only for layout='compact'"):
        FeatureView("wide", user, floats, ttl=60, record_parts=2)
