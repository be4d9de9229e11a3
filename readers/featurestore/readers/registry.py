"""The registry check: a reader refuses to decode what was materialized differently."""

from __future__ import annotations

from typing import Any

from . import codec
from .definitions import Catalog
from .errors import RegistryMismatchError


def check_registry(catalog: Catalog, entries: dict[bytes, bytes]) -> dict[str, str]:
    """Compare the catalogue with the published registry; raise on any decoding skew.

    Returns ``{view: "ok" | "not materialized"}``.  A view or feature that is defined but
    not yet materialized is fine (it reads as missing); a feature whose dtype, dimension
    or storage differs from what was materialized raises :class:`RegistryMismatchError`.
    """
    report: dict[str, str] = {}
    for view in catalog.views:
        raw = entries.get(view.name.encode())
        if raw is None:
            report[view.name] = "not materialized"
            continue
        stored = codec.parse_registry_entry(raw)
        ours = codec.view_spec(view)
        problems = []
        for setting in ("entity", "id_dtype", "packed"):
            if stored.get(setting) != ours[setting]:
                problems.append(f"{setting} is {ours[setting]!r} here but {stored.get(setting)!r} in Redis")
        # an entry without "layout" predates layouts: text
        stored_layout, our_layout = stored.get("layout", "text"), ours.get("layout", "text")
        if stored_layout != our_layout:
            problems.append(f"layout is {our_layout!r} here but {stored_layout!r} in Redis")
        elif our_layout == "compact" and stored.get("record_parts", 1) != ours["record_parts"]:
            theirs = stored.get("record_parts", 1)
            problems.append(f"the record is split in {ours['record_parts']} fields here but {theirs} in Redis")
        elif our_layout == "compact":
            # a record is positional: the materialized features must be a prefix of ours
            # (features appended since then read as missing until the next run)
            written = [(f.get("name"), f.get("dtype"), f.get("dim")) for f in stored["features"]]
            known = [(f["name"], f["dtype"], f.get("dim")) for f in ours["features"]]
            if written != known[: len(written)]:
                problems.append(
                    "the compact record was materialized with features "
                    f"{[w[0] for w in written]}, which are not the first features of this definition "
                    f"{[k[0] for k in known]} (in a record, features may only be appended)"
                )
        stored_features = {f["name"]: f for f in stored["features"]}
        for feature in ours["features"]:
            other = stored_features.get(feature["name"])
            if other is not None and (other.get("dtype"), other.get("dim")) != (feature["dtype"], feature.get("dim")):
                name, ours_, theirs = feature["name"], _describe(feature), _describe(other)
                problems.append(f"feature {name!r} is {ours_} here but was materialized as {theirs}")
        if problems:
            raise RegistryMismatchError(
                f"view {view.name!r} would be decoded differently from how it was materialized "
                f"(run {stored.get('run_id') or '?'}): "
                + "; ".join(problems)
                + ". Deploy the matching definitions, or re-materialize the view."
            )
        report[view.name] = "ok"
    return report


def _describe(feature: dict[str, Any]) -> str:
    return str(feature["dtype"]) + (f"[{feature['dim']}]" if feature.get("dim") else "")
