"""Batch transforms: one pure DataFrame -> DataFrame function per batch view.

A view names its transform in its definition (``FeatureView(transform=...)``, built with
:func:`featurestore.readers.definitions.batch_transform`); :func:`transform_for` finds it.
A transform gets its input tables (already read at a pinned Delta version) and the
*as-of* instant, and returns one row per entity: the entity's join key plus one column
per feature of the view.  It does no I/O, so it is tested against hand-computed frames.

Point-in-time rule: the run for ``ds`` computes features **as of the end of that day**,
``as_of = ds + 1 day, 00:00 UTC`` (exclusive).  A transform filters its inputs on their
own event times against ``as_of`` itself, so nothing that happened, or became known, at or
after ``as_of`` leaks in — even if a caller hands it more data than the job's partition
pruning would.  :func:`in_window` and :func:`timestamp` help with that.

"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from featurestore.readers.definitions import BatchTransform, FeatureView
from featurestore.readers.errors import FeatureNotFoundError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

TransformFn = Callable[[Mapping[str, "DataFrame"], datetime], "DataFrame"]

# A view's transform is a BatchTransform (featurestore.readers.definitions): the name stays for the
# job's signatures.
Transform = BatchTransform


def transform_for(view: FeatureView | str) -> BatchTransform:
    """How the batch job computes ``view``: its ``transform=``, else an error saying where to add one.

    A view name alone (no definition at hand) has no transform.
    """
    name = view if isinstance(view, str) else view.name
    if not isinstance(view, str) and view.transform is not None:
        return view.transform
    raise FeatureNotFoundError(f"view {name!r} has no transform: add transform=... to it in definitions.py")


def as_of_for(ds: date) -> datetime:
    """The as-of instant of the run for ``ds``: the end of that UTC day (exclusive)."""
    return datetime.combine(ds + timedelta(days=1), time(0), tzinfo=UTC)


def timestamp(moment: datetime) -> Column:
    """``moment`` as a Spark timestamp literal (a naive datetime is taken as UTC)."""
    from pyspark.sql import functions as F

    # An aware datetime is one instant whatever the session or Python time zone is.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return F.lit(moment).cast("timestamp")


def in_window(column: str, as_of: datetime, days: int) -> Column:
    """``column`` in ``[as_of - days, as_of)``: the ``days``-day window that ends at the run's as-of."""
    from pyspark.sql import functions as F

    return (F.col(column) >= timestamp(as_of - timedelta(days=days))) & (F.col(column) < timestamp(as_of))
