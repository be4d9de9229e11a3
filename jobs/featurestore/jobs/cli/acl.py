"""``featurestore acl`` — print (or, with ``--apply``, create) the least-privilege ACL users.

Without ``--apply`` nothing connects: the ``ACL SETUSER`` line of each role (or of
``--role R``) is printed with a password placeholder, to paste into ``redis-cli``, an
ACL file or configuration management.  Each line is preceded by ``#`` comments saying
what the role is for and why it has each command.

With ``--apply --role R``, the user is created (or reset to the role) on the server of
``--redis-url`` / ``$FEATURESTORE_REDIS_URL`` — which must connect as a user allowed to
run ``ACL SETUSER`` — on every node of a cluster (ACL users are per node).  The new
user's password comes from ``$FEATURESTORE_ACL_PASSWORD`` (never from the command line,
where ``ps`` and shell history would see it) and is sent as its SHA-256.
"""

from __future__ import annotations

import argparse
import logging

from featurestore.jobs.core.console import echo, note
from featurestore.jobs.core.settings import ACL_PASSWORD_ENV_VAR, REDIS_URL_ENV_VAR, Settings
from featurestore.jobs.ops.acl import PASSWORD_PLACEHOLDER, ROLES, apply, describe, setuser_line
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import redis_client

log = logging.getLogger(__name__)
APPLY_TIMEOUT_SECONDS = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=list(ROLES), default=None, help="one role (default: all three)")
    parser.add_argument("--user", default=None, help="the ACL user name (default: fs_reader, fs_batch_writer ...)")
    parser.add_argument(
        "--apply", action="store_true",
        help=f"create the user on the server (needs --role, an admin --redis-url and ${ACL_PASSWORD_ENV_VAR})",
    )  # fmt: skip
    parser.add_argument(
        "--redis-url", default=None, help=f"with --apply: an admin connection (default: ${REDIS_URL_ENV_VAR})"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.user is not None and args.role is None:
        raise ConfigurationError("--user names the user of one role: add --role")
    chosen = [ROLES[args.role]] if args.role else list(ROLES.values())
    if not args.apply:
        echo(
            f"# replace {PASSWORD_PLACEHOLDER} with the user's password "
            f"(or >{PASSWORD_PLACEHOLDER} with #<the SHA-256 of the password, in hex>)"
        )
        echo("\n\n".join(describe(r, args.user) for r in chosen))
        return 0
    if args.role is None:
        raise ConfigurationError("--apply creates one user: choose it with --role")
    password = settings.acl_password
    if not password:
        raise ConfigurationError(f"--apply needs the new user's password in ${ACL_PASSWORD_ENV_VAR}")
    admin = ConnectionSettings.from_url(settings.require_redis_url(), timeout=APPLY_TIMEOUT_SECONDS)
    role_ = chosen[0]
    user = args.user or role_.default_user
    client = redis_client(admin)
    try:
        apply(client, role_, user, password, cluster=admin.cluster)
    finally:
        client.close()
    log.info("ACL user %s set to role %s on %s", user, role_.name, admin.redacted_url)
    note(f"user {user!r} now has role {role_.name!r} on {admin.redacted_url}")
    echo(setuser_line(role_, user))
    return 0
