"""The example repositories are complete and load like a team's own (docs/examples.md).

Both catalogues load without pyspark (definitions stay pure data), every batch view has its
transform and a suite that parses, every streaming view declares its source, and the sample
data hooks make events that the stream parses (and malformed records that it refuses).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from featurestore.jobs.batch import validation
from featurestore.jobs.batch.transforms import transform_for
from featurestore.jobs.examples import EXAMPLES, example_module, example_path
from featurestore.jobs.streaming.events import EventSchema, Rejected, parse_event
from featurestore.readers import Catalog, load_catalog

# blocks the heavy dependencies: importing one of them fails the import of the definitions
BLOCK_HEAVY = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyspark", "great_expectations", "airflow", "pandas", "numpy", "pyarrow"):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
"""


def _catalog(name: str) -> Catalog:
    return load_catalog(example_module(name, "definitions"))


def test_the_examples_are_fraud_and_recommendations() -> None:
    assert EXAMPLES == ("fraud", "recommendations")
    with pytest.raises(ValueError, match="no example 'pricing': the examples are fraud, recommendations"):
        example_path("pricing")


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_catalogue_loads_without_pyspark(example: str) -> None:
    code = BLOCK_HEAVY + (
        "from featurestore.readers import load_catalog\n"
        f"catalog = load_catalog({example_module(example, 'definitions')!r})\n"
        "print(sorted(v.name for v in catalog.views))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().replace("'", '"')) == sorted(v.name for v in _catalog(example).views)


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_repository_has_every_file(example: str) -> None:
    folder = Path(str(example_path(example)))
    for name in ("featurestore.toml", "definitions.py", "transforms.py", "sample_data.py", "README.md"):
        assert (folder / name).is_file(), name
    assert (folder / "dags" / "featurestore_dag.py").is_file()
    settings = tomllib.loads((folder / "featurestore.toml").read_text())
    assert settings["name"] == example and settings["catalog"] == "definitions.py"
    assert settings["expectations_dir"] == "expectations"
    assert not any("password" in str(value) or "@" in str(value) for value in settings.values())  # no secrets


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_batch_view_has_its_transform_and_a_suite_that_parses(example: str) -> None:
    catalog = _catalog(example)
    assert catalog.batch_views
    suites = Path(str(example_path(example))) / "expectations"
    for view in catalog.batch_views:
        transform = transform_for(view)
        assert transform.sources[0] == view.source, view.name
        suite = validation.load_suite(validation.suite_path(view, suites), view)
        assert suite["name"] == view.expectation_suite and suite["expectations"], view.name
    assert sorted(p.stem for p in suites.glob("*.json")) == sorted(v.expectation_suite for v in catalog.batch_views)


def test_the_recommendations_streaming_views_are_declared() -> None:
    catalog = _catalog("recommendations")
    streaming = {v.name: v for v in catalog.streaming_views}
    assert set(streaming) == {"item_popularity", "user_recent"}
    assert {v.stream.topic for v in streaming.values() if v.stream} == {"interactions"}
    popularity = streaming["item_popularity"]
    # derived TTLs: window + allowed lateness (2 minutes)
    assert {f.name: f.ttl for f in popularity.features} == {
        "item_views_1h": 3720,
        "item_views_24h": 86_520,
        "item_buyers_24h": 86_520,
        "item_revenue_1h": 3720,
    }
    recent = streaming["user_recent"]
    assert recent.stream is not None and recent.stream.id_field == "user_id"
    assert recent.feature("last_category").ttl == 86_400 and recent.feature("user_events_10m").ttl == 720


def _event_ms(event: dict[str, object]) -> int:
    return int(datetime.fromisoformat(str(event["event_time"])).timestamp() * 1000)


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_sample_events_are_seeded_and_keyed_for_their_topic(example: str) -> None:
    sample = __import__(example_module(example, "sample_data"), fromlist=["events"])
    now_ms = int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp() * 1000)
    events = sample.events(400, now_ms, seed=3, late_share=0.2)
    assert events == sample.events(400, now_ms, seed=3, late_share=0.2) != sample.events(400, now_ms, seed=4)
    assert len(events) == 400 and {topic for topic, _, _ in events} == {sample.TOPIC}
    assert all(_event_ms(event) <= now_ms for _, _, event in events)


def test_the_recommendation_events_parse_some_are_late_and_the_bad_records_do_not() -> None:
    from featurestore.jobs.examples.recommendations import sample_data

    source = _catalog("recommendations").view("item_popularity").stream
    assert source is not None and source.topic == sample_data.TOPIC
    schema = EventSchema.of(source)
    now_ms = int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp() * 1000)
    events = sample_data.events(400, now_ms, seed=3, late_share=0.2)
    for _, key, event in events:
        parsed = parse_event(json.dumps(event), schema)
        assert not isinstance(parsed, Rejected), (event, parsed)
        assert key == event[source.id_field]
    lateness_ms = 120_000
    within = sum(1 for _, _, e in events if now_ms - 30_000 >= _event_ms(e) > now_ms - lateness_ms)
    beyond = sum(1 for _, _, e in events if _event_ms(e) < now_ms - lateness_ms)
    assert 10 < within < 80 and 10 < beyond < 80  # about 10% each
    reasons = [parse_event(record, schema) for record in sample_data.BAD_RECORDS]
    assert [r.reason for r in reasons if isinstance(r, Rejected)] == [
        "unparseable",
        "not_an_object",
        "missing_id",
        "wrong_type",
        "missing_event_time",
    ]


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_transforms_are_pure(example: str) -> None:
    """DataFrame -> DataFrame: no session created, nothing read or written, no files, no network."""
    source = (Path(str(example_path(example))) / "transforms.py").read_text()
    for needle in ("SparkSession", "getOrCreate", ".read.", ".write.", "open(", "requests", "socket", "redis"):
        assert needle not in source, needle
