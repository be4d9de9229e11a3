"""Spark types derived from the definitions, and the cast of a transform's output to them.

The writer receives exactly the view's schema: the entity's join key (``LongType`` for
int64 ids, ``StringType`` for string ids) then one column per feature, in definition
order, typed as below.  :func:`cast_to_view` only performs casts that cannot change a
value's meaning (widening integers, any number to a float); anything else — a string
where a number is expected, a double where an int64 is expected (which would truncate)
— is refused before Spark runs a single task, with an error naming the view, the
column, the type found and the type wanted.  Missing columns are refused the same way;
extra columns are dropped (and reported by :func:`extra_columns`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurestore.jobs.spark_types import id_type, spark_type
from featurestore.readers.definitions import DType, FeatureView
from featurestore.readers.errors import JobError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType


def _integral(t: DataType) -> bool:
    from pyspark.sql import types as T

    if isinstance(t, T.DecimalType):
        return t.scale == 0
    return isinstance(t, (T.ByteType, T.ShortType, T.IntegerType, T.LongType))


def _numeric(t: DataType) -> bool:
    from pyspark.sql import types as T

    return isinstance(t, T.NumericType)


def _castable(found: DataType, wanted: DataType) -> bool:
    """Whether ``found`` converts to ``wanted`` without changing what a value means."""
    from pyspark.sql import types as T

    if isinstance(wanted, T.LongType):
        return _integral(found)
    if isinstance(wanted, (T.DoubleType, T.FloatType)):
        return _numeric(found)
    if isinstance(wanted, T.StringType):
        return isinstance(found, (T.StringType, T.VarcharType, T.CharType))
    if isinstance(wanted, T.BooleanType):
        return isinstance(found, T.BooleanType)
    if isinstance(wanted, T.ArrayType):
        return isinstance(found, T.ArrayType) and _numeric(found.elementType)
    return False


def extra_columns(df: DataFrame, view: FeatureView) -> list[str]:
    """Columns of ``df`` that are neither the join key nor a feature (dropped by the cast)."""
    wanted = {view.entity.join_key, *view.feature_names}
    return [c for c in df.columns if c not in wanted]


def cast_to_view(df: DataFrame, view: FeatureView) -> DataFrame:
    """``df`` reduced and cast to :func:`view_schema`, or a :class:`JobError` naming every problem."""
    from pyspark.sql import functions as F

    found = {f.name: f.dataType for f in df.schema.fields}
    problems: list[str] = []
    columns = []
    targets = [(view.entity.join_key, id_type(view), f"join key of entity {view.entity.name!r}")]
    targets += [(f.name, spark_type(f), f"feature ({DType(f.dtype).value})") for f in view.features]
    for name, wanted, role in targets:
        if name not in found:
            problems.append(f"column {name!r} ({role}) is missing")
            continue
        have = found[name]
        if have == wanted:
            columns.append(F.col(name))
        elif _castable(have, wanted):
            columns.append(F.col(name).cast(wanted).alias(name))
        else:
            problems.append(
                f"column {name!r} ({role}) is {have.simpleString()}, which does not convert to "
                f"{wanted.simpleString()} without changing values; cast it in the transform"
            )
    if problems:
        raise JobError(
            f"view {view.name!r}: the transform's output does not match the view's schema: "
            + "; ".join(problems)
            + f" (columns found: {', '.join(df.columns) or 'none'})"
        )
    return df.select(*columns)
