"""TLS (rediss://) with an ACL user, against Debian's redis-server (built with TLS).

The Redis 8 and Valkey wheels are built without TLS, so this test uses the system
server; the reader only needs HMGET/HGETALL, which 7.0 has.
"""

from __future__ import annotations

import pytest
import redis

from featurestore.readers import FeatureReader, FeatureStoreError
from tests.helpers.reader import scores, test_catalog, write_view


def test_rediss_with_acl_user(tls_server) -> None:  # type: ignore[no-untyped-def]
    server, tls_port, ca = tls_server
    admin = server.client()
    admin.flushall()
    admin.execute_command("ACL", "SETUSER", "svc", "on", ">tls-s3cret", "~fs:*", "+hmget", "+hgetall")
    write_view(admin, test_catalog, scores, {1: {"n_orders": 3, "segment": "tls"}})
    url = f"rediss://svc:tls-s3cret@localhost:{tls_port}?ssl_ca_certs={ca}"
    reader = FeatureReader.connect(url, catalog=test_catalog)
    assert reader.settings.tls
    assert reader.get(1, ["n_orders", "segment"]).to_list() == [3, "tls"]
    assert reader.get_many([1, 2], ["n_orders"]).to_list() == [[3], [0]]
    assert "tls-s3cret" not in repr(reader)
    # the server really refuses plain TCP on the TLS port, and a client that does not trust the CA
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="localhost", port=tls_port, socket_timeout=1).ping()
    with pytest.raises(FeatureStoreError) as failure:
        FeatureReader.connect(f"rediss://svc:tls-s3cret@localhost:{tls_port}", catalog=test_catalog)
    assert "tls-s3cret" not in str(failure.value)
