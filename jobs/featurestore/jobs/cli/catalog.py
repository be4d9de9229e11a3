"""``featurestore catalog`` — the catalogue as a contract other languages can implement.

* ``export``: every view's contract as JSON (what the registry in Redis also carries:
  entity, key and id encoding, features with dtype, dim, default and TTL, the view's TTL,
  ``max_age``, packed layout), for a Go, Java or Node reader to apply the read rules.
* ``conformance``: the conformance vectors (stored hash fields + ``_ts`` + the read time =>
  the typed values, statuses and ages this reader returns), generated from the Python
  reader; docs/storage-format.md describes them.  ``--check FILE`` verifies a file instead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from featurestore.jobs.core import console
from featurestore.jobs.core.settings import Settings
from featurestore.readers import conformance
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import load_catalog


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = sub.add_parser("export", help="print every view's contract as JSON")
    export.add_argument("--catalog", default=None, help="catalogue module (default: $FEATURESTORE_CATALOG)")
    export.add_argument("--json", action="store_true", help="JSON output (the only format; for scripts' clarity)")
    vectors = sub.add_parser("conformance", help="write (or --check) the conformance vectors")
    vectors.add_argument("--out", default="-", help="where to write them (default: stdout)")
    vectors.add_argument("--check", default=None, metavar="FILE", help="verify FILE against this reader instead")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "export":
        console.echo(conformance.dumps(conformance.catalog_contract(load_catalog(settings.catalog))).rstrip("\n"))
        return 0
    if args.check:
        try:
            document = json.loads(Path(args.check).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"--check {args.check}: cannot read the vectors: {exc}") from exc
        problems = conformance.verify(document)
        for problem in problems:
            console.echo(problem, err=True)
        console.echo(f"{len(document['cases'])} cases, {len(problems)} differences")
        return 1 if problems else 0
    text = conformance.dumps(conformance.generate())
    if args.out == "-":
        console.echo(text.rstrip("\n"))
    else:
        Path(args.out).write_text(text)
        console.note(f"wrote {len(conformance.CASES)} conformance cases to {args.out}")
    return 0
