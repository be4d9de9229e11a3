"""`featurestore inspect` against a real Redis 8: the CLI end to end, every layout in one hash
(the decoding alone: tests/unit/ops/test_inspect.py)."""

from __future__ import annotations

import json

import pytest

import tests.helpers.reader as reader_helpers
from featurestore.jobs import cli
from featurestore.jobs.core.console import ExitCode
from tests.helpers.reader import client_for, compact, dense, now_ms, scores, test_catalog, write_view


@pytest.mark.parametrize("target", ["redis_url", pytest.param("cluster_url", marks=pytest.mark.cluster)])
def test_inspect_decodes_text_packed_and_compact_fields(
    target: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_url = request.getfixturevalue(target)
    monkeypatch.setattr(reader_helpers, "catalog", test_catalog, raising=False)  # a catalogue module for --catalog
    client = client_for(redis_url)
    write_view(client, test_catalog, scores, {42: {"n_orders": 7, "segment": "gold"}})
    write_view(client, test_catalog, compact, {42: {"c1": 1.5}})
    write_view(client, test_catalog, dense, {42: {"d_count": -3, "d_tag": "é"}}, computed_at_ms=now_ms() - 7_200_000)
    base = ["inspect", "--redis-url", redis_url, "--catalog", "tests.helpers.reader"]

    assert cli.main([*base, "user", "42"]) == ExitCode.OK
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("fs:user:{42}  key TTL 1h  encoding listpack  memory ")
    rows = {line.split()[1]: line.split() for line in table[2:]}
    assert rows["n_orders"][2:4] == ["7", "present"] and rows["c1"][2:4] == ["1.5", "present"]
    assert rows["d_tag"][2:4] == ['"é"', "stale"] and rows["d_tag"][4] == "2h"  # shown as stored, stale
    assert rows["d_count"][-1] == "_c:dense" and rows["d_count"][-2] == "-"  # no field TTL of its own

    assert cli.main([*base, "--key", "fs:user:{42}", "--json"]) == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["exists"] and report["encoding"] == "listpack" and 3500 < report["key_ttl_seconds"] <= 3600
    features = {f["feature"]: f for f in report["features"]}
    assert features["d_count"] == {**features["d_count"], "value": -3, "status": "stale", "layout": "compact"}
    assert features["spend"]["status"] == "missing"

    assert cli.main([*base, "user", "43"]) == 1  # no such key
    assert "no such key" in capsys.readouterr().err
    assert cli.main([*base, "user", "x"]) == ExitCode.USAGE
