"""The dev commands are generic over a repository's ``sample_data.py`` hooks (docs/examples.md)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pytest

from featurestore.jobs import cli
from featurestore.jobs.dev.sample_data import hook_arguments, sample_module
from featurestore.jobs.examples.fraud import sample_data as fraud
from featurestore.jobs.examples.recommendations import sample_data as recs
from featurestore.readers.errors import ConfigurationError


def test_the_module_comes_from_the_example_else_the_repository_else_fraud(tmp_path: Path) -> None:
    assert sample_module("recommendations") is recs
    assert sample_module() is fraud
    assert sample_module(None, tmp_path) is fraud  # a repository without sample data
    (tmp_path / "sample_data.py").write_text(
        "USERS_PER_SCALE = 10\n"
        "def generate(spark, warehouse, *, end_date=None, days=3, scale=1.0, seed=7):\n    return 'generated'\n"
        "def events(n, now_ms, *, seed=7, late_share=0.0):\n    return [('orders', '1', {'n': n})]\n"
    )
    own = sample_module(None, tmp_path)
    assert own.generate(None, "wh") == "generated" and own.events(2, 0) == [("orders", "1", {"n": 2})]
    assert sample_module("fraud", tmp_path) is fraud  # --example wins
    with pytest.raises(ConfigurationError, match="--example pricing: no such example"):
        sample_module("pricing")
    (tmp_path / "sample_data.py").write_text("def generate(spark, warehouse): ...\n")
    with pytest.raises(ConfigurationError, match="sample_data.py: has no events\\(\\) hook"):
        sample_module(None, tmp_path)


def _generate_args(*argv: str) -> argparse.Namespace:
    return cli.build_parser(only="generate").parse_args(["generate", *argv])


def test_generate_maps_its_options_onto_the_hook() -> None:
    args = _generate_args("--example", "recommendations", "--days", "3", "--end-date", "2024-05-31", "--users", "50")
    assert hook_arguments(recs, args) == {"seed": 7, "days": 3, "end_date": date(2024, 5, 31), "scale": 0.1}
    assert hook_arguments(fraud, _generate_args("--users", "250")) == {"seed": 7, "scale": 0.25}
    assert hook_arguments(fraud, _generate_args("--scale", "2")) == {"seed": 7, "scale": 2.0}
    assert hook_arguments(fraud, _generate_args()) == {"seed": 7}  # the hook's own defaults
    with pytest.raises(ConfigurationError, match="--days must be >= 1"):
        hook_arguments(fraud, _generate_args("--days", "0"))
    with pytest.raises(SystemExit):  # --users and --scale are one choice
        _generate_args("--users", "5", "--scale", "1")


def test_kafka_produce_takes_an_example_and_keeps_its_old_name() -> None:
    parser = cli.build_parser(only="kafka")
    args = parser.parse_args(
        ["kafka", "produce", "--example", "recommendations", "--events", "10", "--late-share", "0"]
    )
    assert (args.action, args.example, args.events, args.late_share, args.topic) == (
        "produce",
        "recommendations",
        10,
        0.0,
        None,
    )
    assert parser.parse_args(["kafka", "produce-demo"]).action == "produce-demo"
