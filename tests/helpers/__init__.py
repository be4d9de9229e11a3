"""Helper modules (catalogues, rows, writers of reference data) shared by the test tiers."""
