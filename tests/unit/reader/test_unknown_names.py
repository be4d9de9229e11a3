"""A mistyped feature, view or entity name: the error suggests the closest name and hides none
of the known ones behind an alphabetical cut (issue 25, item 6)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest

from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.readers.definitions import Catalog, Entity, Feature, FeatureView
from featurestore.readers.errors import FeatureNotFoundError, unknown_name_message
from featurestore.readers.plan import Planner


def _message(call: Callable[[], object]) -> str:
    with pytest.raises(FeatureNotFoundError) as raised:
        call()
    return str(raised.value)


@pytest.mark.parametrize("entity", ["user", None])  # given, and inferred from the names
def test_a_feature_typo_names_the_feature_meant(entity: str | None) -> None:
    text = _message(lambda: Planner(catalog).plan(["txn_count_7"], entity=entity))
    where = " of entity 'user'" if entity else ""
    assert text.startswith(f"unknown feature 'txn_count_7'{where}; did you mean 'txn_count_7d'? (known: ")
    known = re.search(r"\(known: (.*)\)$", text)
    assert known is not None
    owners = [entity] if entity else list(catalog.entities)
    expected = {f.name for name in owners for v in catalog.views_of(name) for f in v.features}
    assert set(known.group(1).split(", ")) == expected  # every one, the right one included


def test_view_entity_and_view_feature_typos_are_suggested_too() -> None:
    assert "no view 'user_transaction' in the catalogue; did you mean 'user_transactions'?" in _message(
        lambda: catalog.view("user_transaction")
    )
    assert "no entity 'usr' in the catalogue; did you mean 'user'?" in _message(lambda: catalog.entity("usr"))
    view = catalog.view("user_transactions")
    assert "view 'user_transactions' has no feature 'amount_sum_7'; did you mean 'amount_sum_7d'?" in _message(
        lambda: view.feature("amount_sum_7")
    )


def test_nothing_close_gets_no_suggestion() -> None:
    text = _message(lambda: Planner(catalog).plan(["zzz"], entity="merchant"))
    assert "did you mean" not in text
    assert text.startswith("unknown feature 'zzz' of entity 'merchant' (known: merchant_amount_mean_30d, ")


def test_a_long_list_says_how_many_names_it_leaves_out() -> None:
    entity = Entity("user", join_key="user_id", id_dtype="int64")
    features = tuple(Feature(f"f{i:02d}", "int64", default=0) for i in range(45))
    wide = Catalog(
        views=(FeatureView(name="wide", entity=entity, source="s", ttl=timedelta(days=1), features=features),)
    )
    text = _message(lambda: Planner(wide).plan(["f44x"], entity="user"))
    assert "did you mean 'f44'? (known: f00, f01," in text  # the suggestion, whatever the cut
    assert text.endswith(", and 15 more)")
    assert unknown_name_message("no x 'a'", "a", []) == "no x 'a' (known: none)"


def test_a_training_set_typo_names_the_feature_meant() -> None:
    from featurestore.jobs.training.point_in_time import resolve_features

    text = _message(lambda: resolve_features(catalog, ["user_transactions", "txn_count_7"]))
    assert text.startswith("unknown feature or view 'txn_count_7'; did you mean 'txn_count_7d'? (known: ")
    listed = text.split("(known: ", 1)[1].removesuffix(")").split(", ")
    more = int(listed.pop().split()[1]) if listed[-1].startswith("and ") else 0
    names = {v.name for v in catalog.views} | {f.name for v in catalog.views for f in v.features}
    assert set(listed) <= names and len(listed) + more == len(names)  # the names left out are counted
