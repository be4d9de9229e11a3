"""The streaming writer's fast encoders give the codec's bytes, byte for byte: floats
(shortest round-trip text, -0.0, NaN as null, inf, float32 rounding and overflow, the
positional/scientific boundaries, random bit patterns), ints (big ones, bools refused),
bools, strings; and hiredis' packing gives the RESP the Python join gave."""

from __future__ import annotations

import math
import random
import struct
import sys
from typing import Any

import pytest

from featurestore.jobs.streaming.plan import float32_text, float64_text, resp, value_encoder
from featurestore.readers import codec
from featurestore.readers.definitions import Feature
from featurestore.readers.errors import EncodingError

EDGE_FLOATS = [
    0.0, -0.0, 1.0, -1.0, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 12.5, 3.5, 100.0, 1e-4, 9.999999e-5, 1e-5, 1e-6,
    1.5e-6, 9.99999e-7, 1e-7, 1e9, 999999999.0, 1e10, 9999999999.0, 1.5e10, 1e15, 1e16, 1e17, 123456789.125,
    2.0**24, 2.0**24 + 1, 2.0**53, 2.0**53 + 2, 0.30000000000000004, 5e-324, 2.2250738585072014e-308,
    sys.float_info.max, -sys.float_info.max, math.inf, -math.inf, math.nan, 3.4028234663852886e38,
    3.4028235677973366e38, 3.5e38, 1.401298464324817e-45, 1e-46, 1.17549435e-38, 16777217.0, 0.1 + 0.2,
    -123.456, 65504.0, 1234567.0, 12345678.0, 0.000123456789,
]  # fmt: skip


def old_resp(command: tuple[bytes, ...]) -> bytes:
    return b"*%d\r\n" % len(command) + b"".join([b"$%d\r\n%s\r\n" % (len(a), a) for a in command])


def random_floats(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    values = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.4:  # any bit pattern: every exponent
            values.append(struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0])
        elif kind < 0.7:  # float32 bit patterns
            values.append(struct.unpack("<f", rng.getrandbits(32).to_bytes(4, "little"))[0])
        else:  # everyday features: amounts, ratios
            values.append(round(rng.lognormvariate(3, 2), rng.randrange(0, 8)) * rng.choice([1, -1]))
    return values


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_float_text_equals_the_codec(dtype: str) -> None:
    feature = Feature("x", dtype)  # type: ignore[arg-type]
    encode = value_encoder(feature)
    fast = float32_text if dtype == "float32" else float64_text
    taken = 0
    for value in EDGE_FLOATS + random_floats(20_000, seed=1 if dtype == "float32" else 2):
        expected = codec.encode_value(feature, value)
        assert encode(value) == expected, value
        text = fast(value) if value == value else None
        if text is not None:
            taken += 1
            assert text == expected, value
    assert taken > 6_000  # the fast path is the common one, not a bystander


def test_edge_texts_are_the_documented_ones() -> None:
    f32, f64 = value_encoder(Feature("a", "float32")), value_encoder(Feature("b", "float64"))
    assert [f64(v) for v in (0.0, -0.0, 100.0, 0.1, 1e-5, 1e10, 1.5e16, math.inf)] == [
        b"0", b"-0", b"100", b"0.1", b"0.00001", b"1e+10", b"1.5e+16", b"inf",
    ]  # fmt: skip
    assert [f32(v) for v in (0.1, 12.5, 16777217.0, 3.5e38, -0.0, 1e-7)] == [
        b"0.1", b"12.5", b"16777216", b"inf", b"-0", b"1e-7",
    ]  # fmt: skip
    assert f32(math.nan) is None and f64(math.nan) is None  # NaN is null: an absent field


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        ("int64", [0, -1, 7, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**30, True, False, 3.0, 3.5, "3", None]),
        ("bool", [True, False, 1, 0, None, "true"]),
        ("string", ["", "FR", "é€😀", "\ud800", 5, None]),
        ("float64", [1, 2**70, True, "1.5", None]),
    ],
)
def test_other_encoders_equal_the_codec_errors_included(dtype: str, values: list[Any]) -> None:
    feature = Feature("x", dtype)  # type: ignore[arg-type]
    encode = value_encoder(feature)
    for value in values:
        try:
            expected: bytes | type[EncodingError] | None = codec.encode_value(feature, value)
        except EncodingError:
            expected = EncodingError
        if expected is EncodingError:
            with pytest.raises(EncodingError):
                encode(value)
        else:
            assert encode(value) == expected, value


def test_hiredis_packing_equals_the_python_join() -> None:
    rng = random.Random(3)
    for _ in range(2_000):
        command = tuple(rng.randbytes(rng.choice([0, 1, 5, 40, 300])) for _ in range(rng.randrange(1, 30)))
        assert resp(command) == old_resp(command)
    assert resp([b"HSETEX", b"k", b""]) == old_resp((b"HSETEX", b"k", b""))
