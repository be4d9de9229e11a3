"""Shared bits of the benchmarks: the 20-feature benchmark view, percentiles, the machine's
load and the spread of repeated runs, and Feast in a side venv."""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from featurestore.readers import Catalog, Entity, Feature, FeatureView

user = Entity("user", join_key="user_id")


def bench_view(packed: bool = False) -> FeatureView:
    """20 features: 16 floats, 2 ints, 2 short strings (the issue's shape)."""
    floats = [Feature(f"amount_stat_{i:02d}", "float32") for i in range(16)]
    return FeatureView(
        "bench_view",
        user,
        (*floats, Feature("txn_count", "int64"), Feature("age_days", "int64"),
         Feature("country", "string"), Feature("device", "string")),
        ttl=timedelta(days=2),
        packed=packed,
    )  # fmt: skip


def bench_catalog(packed: bool = False) -> Catalog:
    return Catalog(views=(bench_view(packed),))


def bench_row(rng: random.Random) -> dict[str, object]:
    row: dict[str, object] = {f"amount_stat_{i:02d}": rng.lognormvariate(3, 1.2) for i in range(16)}
    row.update(
        txn_count=rng.randint(0, 500),
        age_days=rng.randint(0, 4000),
        country=rng.choice(["FR", "DE", "US", "GB", "BR", "IN"]),
        device=rng.choice(["ios", "android", "web"]),
    )
    return row


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0  # microseconds

    return {"p50": at(0.50), "p99": at(0.99), "p99.9": at(0.999), "n": len(ordered)}


# --- honest figures: the machine's load, and repeated measurements ----------------------


def machine_load() -> str:
    """The 1/5/15-minute load averages as ``/proc/loadavg`` shows them (printed before and
    after every benchmark: the cores are shared, a figure means little without it)."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:  # not Linux
        import os

        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements (never the best run alone)."""
    import statistics

    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def show_spread(values: list[float], fmt: str = "{:.2f}", unit: str = "") -> str:
    """``median [min-max] (n=K)``, e.g. ``1.36x [0.98-1.51] (n=3)``."""
    s = spread(values)
    med, low, high = (fmt.format(s[k]) for k in ("median", "min", "max"))
    return f"{med}{unit} [{low}-{high}{unit}] (n={len(values)})"


# --- Feast in a side venv (it pins its own redis/protobuf/pandas: never in our env) ---------

FEAST_VENV = Path(tempfile.gettempdir()) / "feast-venv"
FEAST_PINS = ("feast[redis]==0.67.*", "feast[redis]")


def feast_python(venv: Path = FEAST_VENV, install: bool = True) -> tuple[Path | None, str]:
    """The side venv's python with Feast importable, creating the venv and pip-installing
    Feast if asked; ``(None, why)`` when it cannot (the caller says so and skips Feast)."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import feast, redis; print(feast.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0:
            return python, found.stdout.strip()
    if not install:
        return None, f"no Feast in {venv} (and no install asked)"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if made.returncode != 0:
            return None, f"python -m venv {venv} failed: {made.stderr.strip()[-300:]}"
    errors = []
    for pin in FEAST_PINS:
        print(f"installing {pin} into {venv} ...", file=sys.stderr)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", pin], capture_output=True, text=True)
        if done.returncode == 0:
            found = subprocess.run(probe, capture_output=True, text=True)
            if found.returncode == 0:
                return python, found.stdout.strip()
        errors.append(f"{pin}: {done.stderr.strip()[-300:]}")
    return None, "pip could not install Feast: " + " | ".join(errors)
