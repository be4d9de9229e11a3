"""The ``spark-submit`` entry file of the online/offline audit (the nightly DAG's ``<view>.audit`` task).

    spark-submit ... jobs/featurestore/jobs/audit_job.py --view orders_7d --ds 2024-05-31 --recompute

Same arguments as ``featurestore audit`` (:mod:`featurestore.jobs.training.audit`);
``--redis-url`` defaults to ``$FEATURESTORE_REDIS_URL``.  Exit 0: Redis serves what the
feature log says; 1: a feature's mismatch rate is above ``--max-mismatch-rate``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run one audit, return its exit code."""
    from featurestore.jobs.cli import add_repo_option, audit, settings_from_args
    from featurestore.jobs.core import console
    from featurestore.jobs.spark import run_entry

    parser = argparse.ArgumentParser(
        prog="audit_job.py", description="audit one batch view's load against the feature log",
        epilog=console.EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    audit.add_arguments(parser)
    add_repo_option(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    console.configure_logging(verbose=1)
    return run_entry(
        "audit_job", f"featurestore-audit-{args.view}",
        lambda spark, settings: audit.run(args, settings, spark),
        lambda: settings_from_args(args),
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
