"""``python -m featurestore.jobs.cli``: the same as the ``featurestore`` command."""

from featurestore.jobs.cli import main

raise SystemExit(main())
