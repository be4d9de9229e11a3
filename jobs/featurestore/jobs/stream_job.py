"""The ``spark-submit`` entry file of the streaming job (Kafka -> real-time features -> Redis).

    spark-submit --master spark://HOST:7077 \\
        --packages org.apache.spark:spark-sql-kafka-0-10_2.13:4.1.1,io.delta:delta-spark_4.1_2.13:4.3.1 \\
        --py-files redis_feature_store-0.1.0-py3-none-any.whl \\
        jobs/featurestore/jobs/stream_job.py --bootstrap-servers kafka:9092 --topic transactions \\
        --checkpoint s3a://bucket/checkpoints/my_stream_view

Same arguments as ``featurestore stream`` (docs/streaming.md); ``--redis-url`` defaults to
``$FEATURESTORE_REDIS_URL``.  Exit codes: ``featurestore.jobs.core.console.ExitCode``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the streaming job until stopped, return its exit code."""
    from featurestore.jobs.cli.stream import entry_main as stream_main

    return stream_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
