"""The writer over TLS (rediss://) as a least-privilege ACL user, on Debian's redis-server
7.0 (the Redis 8 and Valkey wheels are built without TLS): redis-py does the TLS and AUTH
handshake, the writer then uses the TLS socket directly."""

from __future__ import annotations

import pytest

from featurestore.jobs.write.partition_writer import write_view
from featurestore.readers import codec
from featurestore.readers.errors import PermissionDeniedError
from tests.helpers.writer import SHOP_ROWS, frame, shop_stats, writer_catalog

# docs/writer.md; plus +hexpire on Redis >= 7.4 (7.0 does not know it, and shop_stats needs no HEXPIRE)
WRITER_ACL = ["~fs:*", "+hset", "+hdel", "+expire", "+ping"]


def test_rediss_with_a_least_privilege_acl_user(spark, tls_server) -> None:  # type: ignore[no-untyped-def]
    server, tls_port, ca = tls_server
    admin = server.client()
    admin.flushall()
    admin.execute_command("ACL", "SETUSER", "loader", "reset", "on", ">tls-l0ader", *WRITER_ACL)
    url = f"rediss://loader:tls-l0ader@localhost:{tls_port}/0?ssl_ca_certs={ca}"
    stats = write_view(frame(spark, shop_stats, SHOP_ROWS), writer_catalog, shop_stats, url, computed_at_ms=5)
    assert (stats.written, stats.failed) == (len(SHOP_ROWS), 0)
    key = codec.entity_key(shop_stats.entity, "m-1")
    assert admin.hgetall(key) == {b"visits": b"10", b"share": b"0.25", b"tag": b"grocery", b"_ts:shop_stats": b"5"}
    assert 3500 < admin.ttl(key) <= 3600

    admin.execute_command("ACL", "SETUSER", "reader", "reset", "on", ">r3ader", "~fs:*", "+ping", "+hmget")
    refused = url.replace("loader:tls-l0ader", "reader:r3ader")
    with pytest.raises(PermissionDeniedError) as failed:  # its own class: user and command named
        write_view(frame(spark, shop_stats, SHOP_ROWS), writer_catalog, shop_stats, refused, computed_at_ms=6)
    assert "r3ader" not in str(failed.value) and "shop_stats" in str(failed.value)
