"""What a failure means (readers/featurestore/readers/wire/failures.py), without a server:
every redis-py exception and error reply the store can meet maps to its own class, with
the user, the refused command and the fix in the message and never a password.  (Against
real servers: tests/integration/reader/test_failure_classes.py.)"""

from __future__ import annotations

import socket

import pytest
import redis
from redis import exceptions as rx

from featurestore.readers import (
    AuthenticationError,
    ClusterDownError,
    FeatureStoreConnectionError,
    FeatureStoreTimeout,
    PasswordRequiredError,
    PermissionDeniedError,
    ServerError,
    ServerUnreachableError,
)
from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import ReplyKind, classify, redis_client, refusal, translate_error

SETTINGS = ConnectionSettings.from_url("redis://svc_user:hunter2-secret@cache:6379")


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (rx.AuthenticationError("invalid username-password pair or user is disabled."), AuthenticationError),
        (rx.AuthenticationError("Authentication required."), PasswordRequiredError),
        (rx.NoPermissionError("User svc_user has no permissions to run the 'xadd' command"), PermissionDeniedError),
        (rx.ClusterDownError("The cluster is down"), ClusterDownError),
        ("CLUSTERDOWN Hash slot not served", ClusterDownError),
        ("no node serves the slots of 3 keys (the cluster is reconfiguring)", ClusterDownError),
        (rx.ConnectionError("Error 111 connecting to cache:6379. Connection refused."), ServerUnreachableError),
        (ConnectionRefusedError(111, "Connection refused"), ServerUnreachableError),
        (rx.ConnectionError("Error -2 connecting to cache:6379. Name or service not known."), ServerUnreachableError),
        (socket.gaierror(-2, "Name or service not known"), ServerUnreachableError),
        (rx.ConnectionError("Connection reset by peer"), FeatureStoreConnectionError),
        (rx.TimeoutError("Timeout reading from socket"), FeatureStoreTimeout),
        (rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), ServerError),
    ],
)
def test_each_failure_has_its_own_class(exc: BaseException | str, cls: type[Exception]) -> None:
    error = translate_error(exc, SETTINGS, "HSET fs:registry")
    assert type(error) is cls, repr(error)
    message = str(error)
    assert message.startswith("HSET fs:registry: ") and "hunter2-secret" not in message
    assert "redis://svc_user:***@cache:6379" in message


def test_authentication_errors_name_the_user_and_the_fix() -> None:
    wrong = translate_error(rx.AuthenticationError("invalid username-password pair"), SETTINGS, "PING")
    assert isinstance(wrong, AuthenticationError) and wrong.user == "svc_user"
    assert "ACL user 'svc_user'" in str(wrong) and "ACL GETUSER svc_user" in str(wrong)
    assert "cannot reach" not in str(wrong)  # not a network problem
    missing = translate_error(rx.AuthenticationError("Authentication required."), SETTINGS, "PING")
    assert isinstance(missing, AuthenticationError) and "redis://USER:PASSWORD@host:port" in str(missing)


def test_permission_errors_name_user_command_and_role() -> None:
    error = translate_error(
        rx.NoPermissionError("User svc_user has no permissions to run the 'xadd' command"), SETTINGS, "XADD fs:runs"
    )
    assert isinstance(error, PermissionDeniedError) and (error.user, error.command) == ("svc_user", "xadd")
    assert "refused the 'xadd' command to ACL user 'svc_user'" in str(error)
    assert "featurestore acl --role reader|batch-writer|streaming-writer --user svc_user" in str(error)

    key = refusal(SETTINGS, "NOPERM No permissions to access a key", command="HSET")
    assert isinstance(key, PermissionDeniedError) and "HSET on a key outside its key patterns" in str(key)
    in_function = refusal(
        SETTINGS,
        "ERR ACL failure in script: User svc_user has no permissions to run the 'hget' command script: f, on @user",
    )
    assert isinstance(in_function, PermissionDeniedError) and in_function.command == "hget"


def test_a_refusal_inside_a_function_stops_at_once_like_noperm() -> None:
    assert classify("ERR ACL failure in script: User u has no permissions to run the 'hget' command")[0] is (
        ReplyKind.FATAL
    )
    assert classify("ERR unknown command 'HSETEX'")[0] is ReplyKind.FAILED


def test_with_context_keeps_class_and_attributes() -> None:
    error = PermissionDeniedError("refused", user="u", command="hset")
    wrapped = error.with_context("view 'v'")
    assert type(wrapped) is PermissionDeniedError and str(wrapped) == "view 'v': refused"
    assert (wrapped.user, wrapped.command) == ("u", "hset") and str(error) == "refused"


def test_the_control_plane_client_raises_ours_and_never_shows_a_value() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = redis_client(ConnectionSettings.from_url(f"redis://svc_user:hunter2-secret@127.0.0.1:{port}"))
    with pytest.raises(ServerUnreachableError) as failure:
        client.hset("fs:registry", "view", "value-not-for-messages")
    message = str(failure.value)
    assert message.startswith("HSET fs:registry: cannot reach Redis") and "connection refused" in message
    assert "value-not-for-messages" not in message and "hunter2-secret" not in message
    assert not isinstance(failure.value, redis.RedisError)  # one error tree: ours
