"""redis-feature-store: an online feature store on Redis.

``featurestore.readers`` (folder ``readers/``) is the reader library and the shared
contract; ``featurestore.jobs`` (folder ``jobs/``) holds the Spark jobs, the streaming
hook and the CLI.  See README.md.
"""

__version__ = "0.1.0"
