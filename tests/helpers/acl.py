"""The three ACL role users on a test server, and URLs that log in as them (tests of ACL and doctor)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from featurestore.jobs.ops.acl import ROLES, apply
from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import redis_client


def user_url(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` in place of its own credentials."""
    return f"redis://{user}:{password}@{url.split('//', 1)[1]}"


@contextmanager
def role_users(redis_url: str, password: str) -> Iterator[Any]:
    """The server's default user (no password) as an admin client, with the three role users created
    by ``apply`` (each ``role.default_user``, ``password``); they are deleted on exit."""
    client = redis_client(ConnectionSettings.from_url(redis_url))
    for role in ROLES.values():
        apply(client, role, role.default_user, password, cluster=False)
    try:
        yield client
    finally:
        for role in ROLES.values():
            client.execute_command("ACL", "DELUSER", role.default_user)
        client.close()
