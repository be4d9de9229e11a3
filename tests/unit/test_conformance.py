"""The contract other languages implement: the registry entry, ``catalog export`` and the
conformance vectors in docs/conformance-vectors.json (regenerated here from the reader)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from featurestore.jobs import cli
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.readers import codec, conformance

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "conformance-vectors.json"


def test_the_committed_vectors_are_what_the_reader_returns_today() -> None:
    # if the reader's rules change, this fails: regenerate with
    # `featurestore catalog conformance --out docs/conformance-vectors.json`, and bump FORMAT_VERSION
    assert VECTORS.read_text() == conformance.dumps(conformance.generate())
    assert conformance.verify(json.loads(VECTORS.read_text())) == []


def test_the_vectors_cover_every_status_dtype_and_layout() -> None:
    document = json.loads(VECTORS.read_text())
    statuses = {s for case in document["cases"] for s in case["expected"]["statuses"].values()}
    assert statuses == {"present", "missing", "stale"}
    views = document["catalog"]["views"]
    assert {f["dtype"] for v in views.values() for f in v["features"]} == {
        "int64", "float64", "float32", "bool", "string", "vector"
    }  # fmt: skip
    assert any(v["packed"] for v in views.values()) and any(v["kind"] == "streaming" for v in views.values())
    assert any(case["serve_stale"] for case in document["cases"])
    assert any(isinstance(case["entity_id"], str) for case in document["cases"])


def test_verify_reports_a_reader_that_differs() -> None:
    document = json.loads(VECTORS.read_text())
    wrong = copy.deepcopy(document)
    stale_case = next(c for c in wrong["cases"] if "serve_stale" in c["name"])
    stale_case["expected"]["values"]["balance"] = 11.0
    stale_case["expected"]["statuses"]["age_days"] = "present"
    problems = conformance.verify(wrong)
    assert len(problems) == 2
    assert "values of 'balance': expected 11.0, got 10.0" in problems[0] + problems[1]
    # -0.0 is not 0.0, and 1 is not 1.0: a port must keep the types and the sign
    edge = copy.deepcopy(document)
    case = next(c for c in edge["cases"] if c["name"].startswith("edge values"))
    case["expected"]["values"]["balance"] = 0.0
    case["expected"]["values"]["age_days"] = float(case["expected"]["values"]["age_days"])
    assert len(conformance.verify(edge)) == 2


def test_the_registry_entry_carries_every_read_rule() -> None:
    for view in catalog.views:
        entry = codec.parse_registry_entry(codec.registry_entry(view, 1, "r"))
        assert entry["fingerprint"] == codec.fingerprint(view)  # unchanged: it covers decoding only
        assert entry["max_age"] == view.max_age_seconds and entry["ttl"] == view.ttl_seconds
        assert entry["key"] == f"fs:{view.entity.name}:{{<id>}}" and entry["ts_field"] == f"_ts:{view.name}"
        for described, feature in zip(entry["features"], view.features, strict=True):
            assert described["name"] == feature.name
            assert described["default"] == codec.json_value(feature.default)
            assert described["ttl"] == view.feature_ttl(feature)
    realtime = codec.parse_registry_entry(codec.registry_entry(catalog.view("user_realtime"), 1))
    # txn_count_5m: window 5 min + lateness 1 min (600 s before issue 20)
    assert {f["name"]: f["ttl"] for f in realtime["features"]}["txn_count_5m"] == 360


def test_catalog_export_prints_the_contract_and_conformance_checks_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["catalog", "export", "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported == json.loads(json.dumps(conformance.catalog_contract(catalog)))
    assert set(exported["views"]) == {v.name for v in catalog.views}

    out = tmp_path / "vectors.json"
    assert cli.main(["catalog", "conformance", "--out", str(out)]) == 0
    assert out.read_text() == VECTORS.read_text()
    assert cli.main(["catalog", "conformance", "--check", str(out)]) == 0
    document = json.loads(out.read_text())
    document["cases"][0]["expected"]["values"]["age_days"] = 1
    out.write_text(json.dumps(document))
    capsys.readouterr()
    assert cli.main(["catalog", "conformance", "--check", str(out)]) == 1
    assert "1 differences" in capsys.readouterr().out
