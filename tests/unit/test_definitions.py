"""Definitions are validated when built, with errors that name the culprit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from featurestore.readers import Catalog, DefinitionError, DType, Entity, Feature, FeatureView, load_catalog
from featurestore.readers.errors import CatalogError, FeatureNotFoundError

user = Entity("user", join_key="user_id")


def view(name: str = "v", *features: Feature, **options: object) -> FeatureView:
    options.setdefault("ttl", 3600)
    return FeatureView(name, user, features or (Feature("f", "int64"),), **options)  # type: ignore[arg-type]


def test_feature_dtype_is_normalised_and_unknown_dtype_is_named() -> None:
    assert Feature("x", "float32").dtype is DType.FLOAT32
    with pytest.raises(DefinitionError, match=r"feature 'x': unknown dtype 'float16'"):
        Feature("x", "float16")


@pytest.mark.parametrize("name", ["", "has space", "a:b", "a{b}", "_ts", "1abc", "é"])
def test_names_that_would_break_the_key_format_are_refused(name: str) -> None:
    with pytest.raises(DefinitionError, match="feature name"):
        Feature(name, "int64")


@pytest.mark.parametrize("name", ["User", "a-b", "a:b", "x{1}"])
def test_entity_and_view_names_are_checked(name: str) -> None:
    with pytest.raises(DefinitionError, match="entity name"):
        Entity(name, join_key="id")
    with pytest.raises(DefinitionError, match="view name"):
        FeatureView(name, user, (Feature("f", "int64"),), ttl=60)


def test_vector_needs_a_dim_and_scalars_refuse_one() -> None:
    assert Feature("emb", "vector", dim=4).dim == 4
    with pytest.raises(DefinitionError, match="vector needs dim"):
        Feature("emb", "vector")
    with pytest.raises(DefinitionError, match="dim is only for vectors"):
        Feature("x", "int64", dim=3)


@pytest.mark.parametrize(
    ("dtype", "default"),
    [("int64", 1.5), ("int64", True), ("bool", 1), ("string", 3), ("float32", "x"), ("float64", float("nan"))],
)
def test_default_must_fit_the_dtype(dtype: str, default: object) -> None:
    with pytest.raises(DefinitionError, match=r"default .* does not fit dtype"):
        Feature("x", dtype, default=default)


def test_vector_default_is_frozen_to_a_tuple_of_the_right_length() -> None:
    assert Feature("emb", "vector", dim=2, default=[0, 1]).default == (0.0, 1.0)
    with pytest.raises(DefinitionError):
        Feature("emb", "vector", dim=3, default=[0, 1])


def test_batch_view_needs_a_ttl_and_refuses_per_feature_ttl() -> None:
    with pytest.raises(DefinitionError, match="batch view 'v': ttl is required"):
        FeatureView("v", user, (Feature("f", "int64"),))
    with pytest.raises(DefinitionError, match="per-feature ttl is only for streaming"):
        view("v", Feature("f", "int64", ttl=10))


def test_streaming_view_needs_a_ttl_for_every_feature() -> None:
    with pytest.raises(DefinitionError, match=r"features \['f'\] have no ttl"):
        FeatureView("s", user, (Feature("f", "int64"),), kind="streaming")
    s = FeatureView("s", user, (Feature("f", "int64", ttl=5), Feature("g", "int64")), kind="streaming", ttl=60)
    assert [s.feature_ttl(f) for f in s.features] == [5, 60]
    assert s.max_age_seconds == 60


def test_ttls_accept_timedelta_and_must_be_whole_seconds() -> None:
    assert view("v", ttl=timedelta(days=2)).ttl_seconds == 172800
    with pytest.raises(DefinitionError, match="whole number of seconds"):
        view("v", ttl=0.5)


def test_max_age_defaults_to_the_ttl() -> None:
    assert view("v", ttl=100).max_age_seconds == 100
    assert view("v", ttl=100, max_age=30).max_age_seconds == 30


def test_packed_is_for_batch_views_with_float32_features() -> None:
    v = view("v", Feature("a", "float32"), Feature("b", "int64"), Feature("c", "float32"), packed=True)
    assert [f.name for f in v.packed_features] == ["a", "c"]
    with pytest.raises(DefinitionError, match="needs at least one float32"):
        view("v", Feature("b", "int64"), packed=True)


def test_feature_names_are_unique_per_entity_across_views() -> None:
    a = view("a", Feature("x", "int64"))
    b = view("b", Feature("x", "int64"))
    with pytest.raises(CatalogError, match="feature 'x' of entity 'user' is defined in views 'a' and 'b'"):
        Catalog(views=(a, b))
    other = FeatureView("c", Entity("merchant", "merchant_id", "string"), (Feature("x", "int64"),), ttl=60)
    assert len(Catalog(views=(a, other)).views) == 2  # same name, other entity: fine


def test_one_entity_name_one_definition() -> None:
    other_user = Entity("user", join_key="uid")
    with pytest.raises(CatalogError, match="entity 'user' is defined twice"):
        Catalog(views=(view("a"), FeatureView("b", other_user, (Feature("g", "int64"),), ttl=60)))


def test_key_ttl_is_the_longest_batch_ttl_of_the_entity() -> None:
    catalog = load_catalog()
    assert catalog.key_ttl("user") == 7 * 86400  # user_profile outlives user_transactions
    assert catalog.key_ttl("merchant") == 2 * 86400


def test_catalog_lookup_errors_name_what_exists() -> None:
    catalog = load_catalog()
    with pytest.raises(FeatureNotFoundError, match="no view 'nope' in the catalogue"):
        catalog.view("nope")


def test_load_catalog_from_a_module_and_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_catalog("featurestore.jobs.examples.fraud.definitions").view("user_profile").entity.name == "user"
    with pytest.raises(CatalogError, match="cannot import catalogue module 'no.such.module'"):
        load_catalog("no.such.module")
    with pytest.raises(CatalogError, match="must define `catalog"):
        load_catalog("featurestore.readers.codec")
    monkeypatch.setenv("FEATURESTORE_CATALOG", "no.such.env.module")
    with pytest.raises(CatalogError, match="no.such.env.module"):
        load_catalog()


def test_layout_is_checked_per_view_with_a_clear_reason() -> None:
    from featurestore.readers import Entity, Feature, FeatureView, Layout
    from featurestore.readers.errors import DefinitionError

    who = Entity("user", join_key="user_id")
    feats = (Feature("a", "float64"), Feature("b", "string"))
    assert FeatureView("v", who, feats, ttl=60).layout is Layout.TEXT  # the readable layout stays the default
    assert FeatureView("v", who, feats, ttl=60, layout="compact").is_compact
    with pytest.raises(DefinitionError, match=r"view 'v': layout must be one of 'text', 'compact', got 'zip'"):
        FeatureView("v", who, feats, ttl=60, layout="zip")
    with pytest.raises(DefinitionError, match=r"streaming view 'v': layout='compact' is only for batch views"):
        FeatureView("v", who, feats, kind="streaming", ttl=60, layout="compact")
    with pytest.raises(DefinitionError, match="packed=True and layout='compact' exclude each other"):
        FeatureView("v", who, (Feature("c", "float32"),), ttl=60, layout="compact", packed=True)


def test_the_registry_check_refuses_a_compact_view_decoded_differently() -> None:
    from featurestore.readers import Entity, Feature, FeatureView, RegistryMismatchError, codec
    from featurestore.readers.registry import check_registry

    who = Entity("user", join_key="user_id")
    feats = (Feature("a", "float64"), Feature("b", "int64"))
    written = FeatureView("v", who, feats, ttl=60, layout="compact")
    entries = {b"v": codec.registry_entry(written, 1)}

    def check(view: FeatureView) -> dict[str, str]:
        return check_registry(Catalog(views=(view,)), entries)

    assert check(written) == {"v": "ok"}
    grown = FeatureView("v", who, (*feats, Feature("c", "string")), ttl=60, layout="compact")
    assert check(grown) == {"v": "ok"}  # appended: reads as missing until the next run
    with pytest.raises(RegistryMismatchError, match="layout is 'text' here but 'compact' in Redis"):
        check(FeatureView("v", who, feats, ttl=60))
    with pytest.raises(RegistryMismatchError, match="split in 2 fields here but 1 in Redis"):
        check(FeatureView("v", who, feats, ttl=60, layout="compact", record_parts=2))
    with pytest.raises(RegistryMismatchError, match="features may only be appended"):
        check(FeatureView("v", who, (feats[1], feats[0]), ttl=60, layout="compact"))
    with pytest.raises(RegistryMismatchError, match="features may only be appended"):
        check(FeatureView("v", who, feats[:1], ttl=60, layout="compact"))  # the record holds more
