"""The test suite, tiered by cost: unit, integration, spark, e2e (see tests/conftest.py)."""
