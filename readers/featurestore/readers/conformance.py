"""Conformance vectors: what a reader in any language must return for given stored bytes.

Each case is one entity's hash as ``HMGET`` would return it (the stored fields, ``_ts:<view>``
included; a field past its own TTL is simply absent, Redis removed it), the time of the read
and the features asked for; the expected answer is what this Python reader returns: each
feature's typed value and status (present / missing / stale) and each view's age.  The
vectors are generated from the reader's own decoding (:func:`generate`), written to
``docs/conformance-vectors.json`` by ``featurestore catalog conformance``, and checked by
:func:`verify`, which a port of the reader mirrors in its own tests.

The cases use their own small catalogue (:data:`CATALOG`) that covers every dtype, a packed
view, a streaming view with per-field TTLs and string ids; its contract (what
``featurestore catalog export`` prints) is part of the file, so the file is self-contained.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import codec
from .definitions import Catalog, Entity, Feature, FeatureView
from .plan import Planner
from .results import FeatureVector

NOW_MS = 1_700_000_000_000  # the read time of every case: a fixed clock, so the file never changes by itself
_HOUR_MS = 3_600_000

user = Entity("user", join_key="user_id", id_dtype="int64")
merchant = Entity("merchant", join_key="merchant_id", id_dtype="string")
account = FeatureView(
    name="account",
    entity=user,
    features=(
        Feature("age_days", "int64", default=0),
        Feature("balance", "float64"),
        Feature("risk", "float32", default=0.5),
        Feature("verified", "bool", default=False),
        Feature("country", "string", default="unknown"),
        Feature("embedding", "vector", dim=3),
    ),
    ttl=2 * 86_400,
    max_age=86_400,
)
scores = FeatureView(
    name="scores",
    entity=user,
    features=(
        Feature("score_a", "float32"),
        Feature("score_b", "float32", default=-1.0),
        Feature("score_n", "int64", default=0),
    ),
    ttl=86_400,
    packed=True,
)
recent = FeatureView(
    name="recent",
    entity=user,
    kind="streaming",
    features=(Feature("clicks_5m", "int64", default=0, ttl=300), Feature("last_item", "string", ttl=3_600)),
)
shop = FeatureView(
    name="shop",
    entity=merchant,
    features=(Feature("fraud_rate", "float32"), Feature("category", "string", default="other")),
    ttl=86_400,
)
# the compact layout: every dtype in one binary record `_c:wallet`
wallet = FeatureView(
    name="wallet",
    entity=user,
    features=(
        Feature("w_txns", "int64", default=0),
        Feature("w_total", "float64"),
        Feature("w_share", "float32", default=0.0),
        Feature("w_active", "bool", default=False),
        Feature("w_currency", "string", default="EUR"),
        Feature("w_emb", "vector", dim=2),
    ),
    ttl=86_400,
    layout="compact",
    record_parts=2,  # split across `_c:wallet` and `_c1:wallet`, as a view with a long record is
)


def _record(view: FeatureView, values: dict[str, Any]) -> dict[str, bytes]:
    """A compact view's stored record parts, by field name."""
    parts = codec.split_record(codec.encode_record(view, values), view.record_part_count)
    return {f.decode(): part for f, part in zip(codec.record_fields(view), parts, strict=True)}


CATALOG = Catalog(views=(account, scores, recent, shop, wallet))


@dataclass(frozen=True)
class Case:
    """One read: the stored fields of one entity, the features asked for, ``serve_stale``."""

    name: str
    entity_id: object
    features: tuple[str, ...]
    stored: Mapping[str, bytes] = field(default_factory=dict)
    serve_stale: bool = False


def _ts(age_ms: int) -> bytes:
    return codec.encode_ts(NOW_MS - age_ms)


def _text(feature: Feature, value: Any) -> bytes:
    encoded = codec.encode_value(feature, value)
    assert encoded is not None
    return encoded


def _account(**values: Any) -> dict[str, bytes]:
    return {name: _text(account.feature(name), value) for name, value in values.items()}


ACCOUNT = account.feature_names
CASES: tuple[Case, ...] = (
    Case(
        "every feature present and fresh",
        42,
        ACCOUNT,
        {
            **_account(age_days=365, balance=1234.5, risk=0.25, verified=True, country="SE"),
            **_account(embedding=(1.0, -0.5, 0.1)),
            "_ts:account": _ts(_HOUR_MS),
        },
    ),
    Case(
        "a null feature is an absent field: missing, its default (or null)",
        42,
        ACCOUNT,
        {**_account(age_days=7, verified=False, country=""), "_ts:account": _ts(_HOUR_MS)},
    ),
    Case(
        "older than max_age: stale, the default, not the old value",
        42,
        ACCOUNT,
        {**_account(age_days=365, balance=10.0, risk=0.75, country="SE"), "_ts:account": _ts(25 * _HOUR_MS)},
    ),
    Case(
        "older than max_age with serve_stale: the old value, still stale",
        42,
        ACCOUNT,
        {**_account(age_days=365, balance=10.0, risk=0.75, country="SE"), "_ts:account": _ts(25 * _HOUR_MS)},
        serve_stale=True,
    ),
    Case("never written: every feature missing, no age", 7, ACCOUNT),
    Case(
        "edge values: int64 bounds, -0, inf, tiny floats, float32 rounding, the empty string",
        -9_223_372_036_854_775_808,
        ("age_days", "balance", "risk", "country"),
        {
            **_account(age_days=-9_223_372_036_854_775_808, balance=-0.0, risk=1e-7, country=""),
            "_ts:account": _ts(0),
        },
    ),
    Case(
        "infinity",
        1,
        ("balance", "risk"),
        {**_account(balance=float("inf"), risk=float("-inf")), "_ts:account": _ts(1)},
    ),
    Case(
        "a packed view: its float32 features in one field, NaN for a null one",
        5,
        ("score_a", "score_b", "score_n"),
        {
            "_f32:scores": codec.encode_packed(scores, {"score_a": 0.125, "score_b": None}) or b"",
            "score_n": b"3",
            "_ts:scores": _ts(_HOUR_MS),
        },
    ),
    Case(
        "a compact view: one binary record cut in 2 fields, nulls marked in its presence bitmap",
        5,
        ("w_txns", "w_total", "w_share", "w_active", "w_currency", "w_emb"),
        {
            **_record(
                wallet, {"w_txns": -42, "w_total": 1e300, "w_active": True, "w_currency": "€", "w_emb": [0.5, -1.0]}
            ),
            "_ts:wallet": _ts(_HOUR_MS),
        },
    ),
    Case(
        "a compact view older than its max_age: every feature stale, defaults served",
        6,
        ("w_txns", "w_currency"),
        {
            **_record(wallet, {"w_txns": 7, "w_currency": "USD"}),
            "_ts:wallet": _ts(2 * 86_400_000),
        },
    ),
    Case(
        "a streaming view: a field past its own TTL is gone (Redis removed it), the other one serves",
        5,
        ("clicks_5m", "last_item"),
        {"last_item": b"sku-17", "_ts:recent": _ts(10 * 60_000)},
    ),
    Case(
        "two views in one request, one fresh and one stale",
        5,
        ("age_days", "score_n", "clicks_5m"),
        {
            **_account(age_days=30),
            "_ts:account": _ts(_HOUR_MS),
            "score_n": b"9",
            "_ts:scores": _ts(2 * 86_400_000),
            "clicks_5m": b"4",
            "_ts:recent": _ts(30_000),
        },
    ),
    Case(
        "a string id",
        "m-0001",
        ("fraud_rate", "category"),
        {"fraud_rate": b"0.0125", "category": b"crypto", "_ts:shop": _ts(_HOUR_MS)},
    ),
)


# --- the file ---------------------------------------------------------------------------


def _stored_json(value: bytes) -> Any:
    """A stored field: text as a JSON string, other bytes (vectors, packed fields) as base64."""
    try:
        text = value.decode()
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable():
        return text
    return {"base64": base64.b64encode(value).decode()}


def _stored_bytes(value: Any) -> bytes:
    if isinstance(value, dict):
        return base64.b64decode(value["base64"])
    return str(value).encode()


def read(case_json: Mapping[str, Any], catalog: Catalog = CATALOG) -> FeatureVector:
    """What this reader returns for one case of the file: the HMGET the reader would send,
    answered from the case's stored fields, decoded by the reader's own plan at ``now_ms``."""
    stored = {name: _stored_bytes(value) for name, value in case_json["stored"].items()}
    plan = Planner(catalog).plan(list(case_json["features"]))
    row: list[Any] = [stored.get(f.decode()) for f in plan.fields]
    now_ms = int(case_json["now_ms"])
    stamps = [0] * len(plan.views)
    missing, stale = plan.decode_row(row, now_ms, bool(case_json["serve_stale"]), stamps)
    return FeatureVector(case_json["entity_id"], plan, row, missing, stale, stamps, now_ms)


def _expected(vector: FeatureVector) -> dict[str, Any]:
    return {
        "values": {name: codec.json_value(value) for name, value in vector.to_dict().items()},
        "statuses": {name: status.value for name, status in vector.statuses.items()},
        "ages_seconds": vector.ages,
    }


def generate(cases: Sequence[Case] = CASES, catalog: Catalog = CATALOG) -> dict[str, Any]:
    """The conformance file: the catalogue's contract and every case with its expected answer."""
    out: list[dict[str, Any]] = []
    for case in cases:
        entity = catalog.view(_view_of(catalog, case.features[0])).entity
        case_json: dict[str, Any] = {
            "name": case.name,
            "entity": entity.name,
            "entity_id": case.entity_id,
            "key": codec.entity_key(entity, case.entity_id).decode(),
            "features": list(case.features),
            "serve_stale": case.serve_stale,
            "now_ms": NOW_MS,
            "stored": {name: _stored_json(value) for name, value in sorted(case.stored.items())},
        }
        case_json["expected"] = _expected(read(case_json, catalog))
        out.append(case_json)
    return {
        "format_version": codec.FORMAT_VERSION,
        "about": "docs/storage-format.md#conformance-vectors",
        "catalog": catalog_contract(catalog),
        "cases": out,
    }


def _view_of(catalog: Catalog, feature: str) -> str:
    return next(v.name for v in catalog.views if feature in v.feature_names)


def catalog_contract(catalog: Catalog) -> dict[str, Any]:
    """Every view's contract (:func:`codec.view_contract`), by view name."""
    return {"format_version": codec.FORMAT_VERSION, "views": {v.name: codec.view_contract(v) for v in catalog.views}}


def dumps(document: Mapping[str, Any]) -> str:
    """The file's text: stable (sorted keys, 2-space indent, newline at the end)."""
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return expected == actual and math.copysign(1, expected) == math.copysign(1, actual)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(_same, expected, actual))
    return type(expected) is type(actual) and expected == actual


def verify(document: Mapping[str, Any], catalog: Catalog = CATALOG) -> list[str]:
    """Read every case of ``document`` with this reader; one line per difference (none: conforms)."""
    problems: list[str] = []
    for case_json in document["cases"]:
        answer = _expected(read(case_json, catalog))
        for part in ("values", "statuses", "ages_seconds"):
            want, got = case_json["expected"][part], answer[part]
            for name in sorted(set(want) | set(got)):
                expected, actual = want.get(name), got.get(name)
                if not _same(expected, actual):
                    problems.append(f"{case_json['name']}: {part} of {name!r}: expected {expected!r}, got {actual!r}")
    return problems
