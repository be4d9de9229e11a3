"""The one Redis wire: every byte between the store and Redis goes through this package.

* :mod:`.connection` — the client factory (TLS, ACL users, timeouts) on redis-py's
  public ``connection_class=`` extension point;
* :mod:`.resp` — commands as RESP bytes, and what an error reply means;
* :mod:`.retry` — the one retry policy: keep trying until a deadline;
* :mod:`.topology` — the cluster's slot map and routing (pure data);
* :mod:`.engine` — the round-trip engine and its one loop: redirects, retries, refresh (no I/O);
* :mod:`.sync` / :mod:`.aio` — the drivers stepping through that loop, doing the socket I/O;
* :mod:`.failures` — what a failure means: one error class per cause, in one place;
* :mod:`.link` — a connection with several pipelines in flight (the batch writer's).
"""

from .connection import WireConnection, WireSSLConnection, connection_options, redis_client
from .engine import REFRESH, Batch, RefusedReply, Repair, RepairNodes, RoundTrip, Step
from .failures import acl_user, refusal, translate_error
from .link import Link
from .resp import ASKING, ReplyKind, classify, encode, error_message
from .retry import WRITER_RETRY_SECONDS, Deadline, RetryPolicy
from .sync import NETWORK_ERRORS, Wire, is_refused
from .topology import Router, SlotMap, key_slot

__all__ = [
    "ASKING",
    "NETWORK_ERRORS",
    "REFRESH",
    "WRITER_RETRY_SECONDS",
    "Batch",
    "Deadline",
    "Link",
    "RefusedReply",
    "Repair",
    "RepairNodes",
    "ReplyKind",
    "RetryPolicy",
    "RoundTrip",
    "Router",
    "SlotMap",
    "Step",
    "Wire",
    "WireConnection",
    "WireSSLConnection",
    "acl_user",
    "classify",
    "connection_options",
    "encode",
    "error_message",
    "is_refused",
    "key_slot",
    "redis_client",
    "refusal",
    "translate_error",
]
