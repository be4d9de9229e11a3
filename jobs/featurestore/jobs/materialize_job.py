"""The ``spark-submit`` entry file of the batch materialization job.

    spark-submit --master spark://HOST:7077 \\
        --packages io.delta:delta-spark_4.1_2.13:4.3.1 \\
        --py-files redis_feature_store-0.1.0-py3-none-any.whl \\
        jobs/featurestore/jobs/materialize_job.py --view orders_7d --ds 2024-05-31 --warehouse /data/warehouse

Same arguments as ``featurestore materialize``; ``--redis-url`` defaults to
``$FEATURESTORE_REDIS_URL`` (pass it to the driver with ``--conf
spark.yarn.appMasterEnv.FEATURESTORE_REDIS_URL=...`` or the scheduler's secret store, not
on the command line).  The session comes from ``featurestore.jobs.spark.build_session``,
which leaves the master to ``spark-submit``.  See docs/batch.md for how the package
reaches the executors.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run one materialization, return its exit code: 0 succeeded,
    1 failed, 2 usage error, 3 failed validation, 4 refused by a guard, 130 interrupted
    (``featurestore.jobs.core.console.ExitCode``)."""
    from featurestore.jobs.batch.materialize import prepare
    from featurestore.jobs.cli import add_repo_option, materialize, settings_from_args
    from featurestore.jobs.core import console
    from featurestore.jobs.spark import run_entry

    parser = argparse.ArgumentParser(
        prog="materialize_job.py", description="materialize one batch view",
        epilog=console.EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    materialize.add_arguments(parser)
    add_repo_option(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    console.configure_logging(verbose=1)  # INFO: the stages of the run, with view, ds and run id
    return run_entry(
        "materialize_job", f"featurestore-materialize-{args.view}",
        lambda spark, settings: materialize.run(args, settings, spark),
        lambda: settings_from_args(args),
        # the view, its transform, its suite and the Redis URL are checked before Spark starts
        check=lambda settings: prepare(materialize.request_from_args(args, settings)),
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
