"""Unit tier: pure logic, no server, no Spark; `python -m pytest tests/unit` runs in seconds."""
