"""``featurestore inspect``: decode one entity's hash (:mod:`featurestore.jobs.ops.inspect`)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from featurestore.jobs.core.console import echo
from featurestore.jobs.core.control_plane import connect
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR, Settings
from featurestore.jobs.ops.inspect import entity_id_of, format_report, inspect_key, parse_key
from featurestore.readers import codec
from featurestore.readers.errors import ConfigurationError, FeatureStoreError
from featurestore.readers.repository import load_catalog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("entity", nargs="?", help="the entity's name (e.g. user)")
    parser.add_argument("id", nargs="?", help="the entity id (e.g. 42)")
    parser.add_argument("--key", default=None, help="a Redis key fs:<entity>:{<id>} instead of ENTITY ID")
    parser.add_argument("--redis-url", default=None, help=f"the store (default: ${REDIS_URL_ENV_VAR})")
    parser.add_argument("--catalog", default=None, help="catalogue module (default: $FEATURESTORE_CATALOG)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")


def run(args: argparse.Namespace, settings: Settings, clock: Callable[[], float] = time.time) -> int:
    catalog = load_catalog(settings.catalog)
    if args.key is not None:
        if args.entity is not None:
            raise ConfigurationError("give either --key or ENTITY ID, not both")
        entity, entity_id = parse_key(catalog, args.key)
    else:
        if args.entity is None or args.id is None:
            raise ConfigurationError("inspect needs ENTITY ID (e.g. `featurestore inspect user 42`) or --key")
        entity = catalog.entity(args.entity)
        entity_id = entity_id_of(entity, args.id)
    key = codec.entity_key(entity, entity_id)
    client = connect(settings.require_redis_url())
    try:
        report = inspect_key(client, catalog, entity, key, int(clock() * 1000))
    except FeatureStoreError:
        raise
    finally:
        client.close()
    if args.json:
        echo(json.dumps(report.to_dict(), sort_keys=True, ensure_ascii=False))
    elif report.exists:
        echo(format_report(report))
    if not report.exists:
        echo(f"{report.key}: no such key (never written, or expired)", err=True)
        return 1
    return 0
