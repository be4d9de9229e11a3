"""The Spark types of a view's columns, derived from the definitions (one mapping for the
batch job's cast and the writer's column check); pyspark is imported only when called."""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurestore.readers.definitions import DType, Feature, FeatureView

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType

__all__ = ["id_type", "spark_type", "view_schema"]


def spark_type(feature: Feature) -> DataType:
    """The Spark type of a feature's column (int64->Long, float32->Float, vector->array<float>...)."""
    from pyspark.sql import types as T

    dtype = DType(feature.dtype)
    if dtype is DType.INT64:
        return T.LongType()
    if dtype is DType.FLOAT64:
        return T.DoubleType()
    if dtype is DType.FLOAT32:
        return T.FloatType()
    if dtype is DType.STRING:
        return T.StringType()
    if dtype is DType.BOOL:
        return T.BooleanType()
    return T.ArrayType(T.FloatType())


def id_type(view: FeatureView) -> DataType:
    """The Spark type of the view's join-key column."""
    from pyspark.sql import types as T

    return T.LongType() if view.entity.id_dtype == "int64" else T.StringType()


def view_schema(view: FeatureView) -> StructType:
    """The schema the writer gets: join key first, then the features in definition order."""
    from pyspark.sql import types as T

    fields = [T.StructField(view.entity.join_key, id_type(view), True)]
    fields += [T.StructField(f.name, spark_type(f), True) for f in view.features]
    return T.StructType(fields)
