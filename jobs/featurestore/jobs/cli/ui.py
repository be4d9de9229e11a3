"""``featurestore ui``: serve the read-only web console of one store (:mod:`featurestore.jobs.ui`)."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE
from featurestore.jobs.core.console import note
from featurestore.jobs.core.control_plane import job_settings
from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR, Settings
from featurestore.readers.errors import FeatureStoreConnectionError
from featurestore.readers.repository import load_catalog

if TYPE_CHECKING:
    from featurestore.jobs.ui.store import ConsoleConfig

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help=f"the store, read-only user (default: ${REDIS_URL_ENV_VAR})")
    parser.add_argument("--catalog", default=None, help="catalogue module (default: $FEATURESTORE_CATALOG)")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--warehouse", default=None, help="the warehouse (default: $FEATURESTORE_WAREHOUSE)")
    parser.add_argument(
        "--feature-log", default=None,
        help="the feature log shown on the entity page: a folder, or off (default: <warehouse>/_feature_log)",
    )  # fmt: skip
    parser.add_argument("--sample", type=int, default=50, help="keys sampled per entity for freshness (default 50)")
    parser.add_argument(
        "--allow-write-user", action="store_true",
        help="serve even when the Redis user may write (default: refuse; use the console's read-only role)",
    )  # fmt: skip


def console_config(args: argparse.Namespace, settings: Settings) -> ConsoleConfig:
    """What the console serves: the store (``--redis-url``), its catalogue, the feature log (``--feature-log``,
    else the settings' ``feature_log``, else ``<warehouse>/_feature_log``; ``off``: none)."""
    from featurestore.jobs.ui.store import ConsoleConfig

    warehouse = args.warehouse or settings.warehouse or DEFAULT_WAREHOUSE
    return ConsoleConfig(
        connection=job_settings(settings.require_redis_url()),
        catalog=load_catalog(settings.catalog),
        allow_write_user=args.allow_write_user,
        sample=max(args.sample, 0),
        feature_log=LogSettings.from_settings(warehouse, settings, args.feature_log),
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # the [ui] extra: loaded only by this command

    from featurestore.jobs.ui.app import create_app
    from featurestore.jobs.ui.store import Store

    config = console_config(args, settings)
    try:  # refuse a user that can write before serving; a store that is down is the pages' to say
        Store(config).client()
    except FeatureStoreConnectionError as exc:
        log.warning("the store is not reachable yet (%s): the pages will say so until it is", exc)
    feature_log = config.feature_log.root if config.feature_log is not None and config.feature_log.enabled else "off"
    note(
        f"featurestore ui: http://{args.host}:{args.port}/ (store {config.connection.redacted_url}; "
        f"feature log {feature_log}; Ctrl-C stops)"
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    return 0
