"""Integration tier: real Redis servers (standalone, cluster, Valkey, Redis 7.0, TLS), no Spark."""
