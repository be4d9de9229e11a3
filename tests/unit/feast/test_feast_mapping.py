"""Feast's definitions and statuses -> ours (featurestore.feast.mapping): pure, no Feast needed."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

from featurestore.feast.mapping import (
    VALUE_TYPES,
    FeastField,
    FeastViewSpec,
    UnsupportedFeastDefinition,
    catalog_for,
    feast_status,
    key_ttl,
    view_for,
)
from featurestore.readers import codec
from featurestore.readers.definitions import DType, ViewKind
from featurestore.readers.results import FeatureStatus

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "jobs" / "featurestore" / "feast"


def spec(*features: FeastField, name: str = "driver_stats", ttl: int = 86400, pushed: bool = False) -> FeastViewSpec:
    return FeastViewSpec(
        name=name,
        entities=("driver",),
        join_keys=(FeastField("driver_id", "INT64"),),
        features=features or (FeastField("trips", "INT64"),),
        ttl_seconds=ttl,
        pushed=pushed,
    )


def test_a_batch_view_keeps_names_and_takes_feasts_ttl_as_ttl_and_max_age() -> None:
    view = view_for(
        spec(FeastField("conv_rate", "FLOAT"), FeastField("acc_rate", "DOUBLE"), FeastField("city", "STRING"))
    )
    assert view.name == "driver_stats" and view.kind is ViewKind.BATCH
    assert (view.entity.name, view.entity.join_key, view.entity.id_dtype) == ("driver", "driver_id", "int64")
    assert [(f.name, f.dtype) for f in view.features] == [
        ("conv_rate", DType.FLOAT32),
        ("acc_rate", DType.FLOAT64),
        ("city", DType.STRING),
    ]
    assert view.ttl_seconds == 86400 and view.max_age_seconds == 86400
    # the same key and fields as any view of ours: fs:driver:{42}, _ts:driver_stats
    assert codec.entity_key(view.entity, 42) == b"fs:driver:{42}"
    assert codec.ts_field(view) == b"_ts:driver_stats"


def test_a_pushed_view_is_a_streaming_view_whose_fields_live_for_the_ttl() -> None:
    view = view_for(spec(FeastField("speed", "DOUBLE"), name="driver_live", ttl=60, pushed=True))
    assert view.kind is ViewKind.STREAMING
    assert view.feature_ttl(view.features[0]) == 60 and view.max_age_seconds == 60


def test_the_compact_layout_is_for_batch_views_only() -> None:
    assert view_for(spec(), layout="compact").is_compact
    assert not view_for(spec(pushed=True), layout="compact").is_compact  # each pushed field has its own TTL
    assert not view_for(spec()).is_compact


@pytest.mark.parametrize(("value_type", "dtype"), sorted(VALUE_TYPES.items()))
def test_every_supported_value_type(value_type: str, dtype: DType) -> None:
    length = 4 if value_type == "FLOAT_LIST" else 0
    (feature,) = view_for(spec(FeastField("f", value_type, length))).features
    assert feature.dtype is dtype
    assert feature.dim == (4 if dtype is DType.VECTOR else None)


@pytest.mark.parametrize("value_type", ["BYTES", "UNIX_TIMESTAMP", "INT64_LIST", "STRING_LIST", "MAP", "JSON"])
def test_an_unsupported_value_type_is_refused_naming_view_feature_and_type(value_type: str) -> None:
    with pytest.raises(UnsupportedFeastDefinition) as refused:
        view_for(spec(FeastField("trips", "INT64"), FeastField("photo", value_type)))
    message = str(refused.value)
    assert "'driver_stats'" in message and "'photo'" in message and value_type in message


def test_a_float_list_needs_a_vector_length() -> None:
    with pytest.raises(UnsupportedFeastDefinition, match=r"'embedding'.*FLOAT_LIST.*vector_length"):
        view_for(spec(FeastField("embedding", "FLOAT_LIST")))


def test_several_join_keys_are_refused_naming_them() -> None:
    two = FeastViewSpec(
        "trips",
        ("driver", "rider"),
        (FeastField("driver_id", "INT64"), FeastField("rider_id", "STRING")),
        (FeastField("n", "INT64"),),
        3600,
    )
    with pytest.raises(UnsupportedFeastDefinition, match=r"'trips'.*exactly one join key.*driver_id, rider_id"):
        view_for(two)


@pytest.mark.parametrize(("key_type", "id_dtype"), [("INT32", "int64"), ("INT64", "int64"), ("STRING", "string")])
def test_join_key_types(key_type: str, id_dtype: str) -> None:
    keyed = FeastViewSpec("v", ("driver",), (FeastField("driver_id", key_type),), (FeastField("n", "INT64"),), 60)
    assert view_for(keyed).entity.id_dtype == id_dtype


def test_a_join_key_of_another_type_is_refused() -> None:
    keyed = FeastViewSpec("v", ("driver",), (FeastField("driver_id", "BYTES"),), (FeastField("n", "INT64"),), 60)
    with pytest.raises(UnsupportedFeastDefinition, match=r"'v'.*join key 'driver_id'.*BYTES"):
        view_for(keyed)


def test_a_view_without_ttl_takes_the_default_or_is_refused() -> None:
    with pytest.raises(UnsupportedFeastDefinition, match=r"'driver_stats'.*no ttl.*default_ttl_seconds"):
        view_for(spec(ttl=0))
    assert view_for(spec(ttl=0), default_ttl_seconds=7200).ttl_seconds == 7200


def test_names_our_store_cannot_key_are_refused_with_the_view() -> None:
    with pytest.raises(UnsupportedFeastDefinition, match=r"'driver_stats'.*feature name '2fast'"):
        view_for(spec(FeastField("2fast", "INT64")))


def test_a_feature_name_twice_on_one_entity_is_refused() -> None:
    a = view_for(spec(FeastField("trips", "INT64"), name="a"))
    b = view_for(spec(FeastField("trips", "INT64"), name="b"))
    with pytest.raises(UnsupportedFeastDefinition, match="trips.*hash_per_view: true"):
        catalog_for([a, b])


def test_a_hash_per_view_lets_two_views_of_an_entity_share_feature_names() -> None:
    batch = view_for(spec(FeastField("trips", "INT64"), name="driver_stats"), hash_per_view=True)
    fresh = view_for(spec(FeastField("trips", "INT64"), name="driver_stats_fresh", pushed=True), hash_per_view=True)
    catalog_for([batch, fresh])
    assert codec.entity_key(batch.entity, 7) == b"fs:driver_stats:{7}"
    assert codec.entity_key(fresh.entity, 7) == b"fs:driver_stats_fresh:{7}"
    assert batch.entity.join_key == "driver_id"


def test_the_key_ttl_is_the_longest_batch_ttl_of_the_entity() -> None:
    view = view_for(spec(ttl=3600))
    entries = [
        {"view": "long", "entity": "driver", "kind": "batch", "ttl": 86400},
        {"view": "live", "entity": "driver", "kind": "streaming", "ttl": 999999},
        {"view": "other", "entity": "rider", "kind": "batch", "ttl": 999999},
    ]
    assert key_ttl(view, entries) == 86400
    assert key_ttl(view, []) == 3600


@pytest.mark.parametrize(
    ("status", "age", "expected"),
    [
        (FeatureStatus.PRESENT, 1.0, "PRESENT"),
        (FeatureStatus.STALE, 90000.0, "OUTSIDE_MAX_AGE"),
        (FeatureStatus.MISSING, 1.0, "NULL_VALUE"),  # the view wrote the entity, this field is absent: a null
        (FeatureStatus.MISSING, None, "NOT_FOUND"),  # never written, or expired with its _ts
    ],
)
def test_statuses_map_to_feasts(status: FeatureStatus, age: float | None, expected: str) -> None:
    assert feast_status(status, age) == expected


def _third_party(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "featurestore"}


def test_the_plug_in_imports_only_feast_and_the_base_dependencies() -> None:
    """tests/unit/test_dependencies.py cannot map `feast` (not installed here): the same check by hand."""
    assert _third_party(PACKAGE / "mapping.py") == set()  # the unit tier imports it without Feast
    assert _third_party(PACKAGE / "__init__.py") == set()
    assert _third_party(PACKAGE / "store.py") == {"feast"}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"]["feast"] == ["feast[redis]>=0.67,<0.68"]


def test_importing_the_package_does_not_import_feast() -> None:
    import featurestore.feast  # noqa: F401

    assert "featurestore.feast.store" not in sys.modules and "feast" not in sys.modules


def test_every_supported_type_has_a_value_field_to_read_back_into() -> None:
    from featurestore.feast.mapping import ID_TYPES, PROTO_FIELDS

    assert set(PROTO_FIELDS) == set(VALUE_TYPES)
    assert set(ID_TYPES) <= set(VALUE_TYPES)


def test_what_the_store_imports_of_ours_loads_no_heavy_dependency() -> None:
    """``pip install redis-feature-store[feast]`` brings no [jobs] extra: the writers' modules the
    store reuses (featurestore.jobs.write.commands, featurestore.jobs.streaming.writer) must import
    without pyspark, pandas, pyarrow, Great Expectations or the Kafka client."""
    import subprocess

    ours = sorted(
        node.module
        for node in ast.walk(ast.parse((PACKAGE / "store.py").read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("featurestore.")
    )
    assert "featurestore.jobs.streaming.writer" in ours and "featurestore.jobs.write.commands" in ours
    heavy = ("pyspark", "pandas", "pyarrow", "great_expectations", "confluent_kafka", "numpy", "tqdm", "airflow")
    script = (
        "import importlib, sys\n"
        f"for name in {ours!r}: importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
