"""Training data that equals serving data: the feature log, backfill, point-in-time sets, audit."""
