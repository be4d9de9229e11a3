"""``featurestore ui``: a read-only web console of one store (docs/ui.md).

* :mod:`.pages` — pure page models: the store's data in, what a page shows out;
* :mod:`.store` — the reads (one lazily connected client; runs and audits a page at a time);
* :mod:`.log_history` — an entity's rows of the feature log, read from its Delta table with pyarrow (no Spark);
* :mod:`.access` — the console's read-only ACL role and the check refusing a user that can write;
* :mod:`.app` — the thin ASGI routes (Starlette, Jinja2 templates and a stylesheet shipped as
  package data).  Importing this package loads none of Starlette: ``app`` does.
"""
