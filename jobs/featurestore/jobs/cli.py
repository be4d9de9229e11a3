"""``featurestore`` — the command line.

Each sub-command lives in its own module with ``add_arguments(parser)`` and
``run(args) -> int``; this file only dispatches, and imports a module (and so Spark,
Great Expectations ...) only when its command runs.  The dependency goes one way: a
command module never imports this file (its own ``main(argv)`` parses and reports errors
itself), and the local-development commands (``redis``, ``demo``, ``generate``,
``stream``, in ``featurestore.jobs.dev``) are named here as strings, so nothing of the
production path imports dev code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from featurestore.readers.errors import FeatureStoreError
from featurestore.readers.settings import redact_text

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "redis": ("featurestore.jobs.dev.redis_command", "start or stop a local Redis 8 server or cluster"),
    "demo": ("featurestore.jobs.dev.demo", "generate sample data, materialize every view, read it back"),
    "generate": ("featurestore.jobs.dev.sample_data", "write the sample fraud warehouse as Delta tables"),
    "materialize": ("featurestore.jobs.batch.materialize", "compute, validate and write one batch view"),
    "runs": ("featurestore.jobs.batch.run_records", "list recent materialization runs"),
    "stream": ("featurestore.jobs.dev.streaming_demo", "run the streaming demo job"),
    "check": ("featurestore.jobs.ops.post_load_check", "check a view's freshness after a load"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="featurestore", description="redis-feature-store command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            importlib.import_module(module).add_arguments(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    # Only the chosen command's module is imported to build its arguments.
    parser = build_parser(only=chosen or "__none__")
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except FeatureStoreError as exc:
        print(f"featurestore {args.command}: error: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
