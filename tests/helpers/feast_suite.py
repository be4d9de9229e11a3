"""Feast's own reusable online-store tests, run against our online store.

Feast ships its "universal" online-store tests in its source tree (``sdk/python/tests``, not in
the wheel or the sdist), and documents how a new online store runs them: a module named by
``$FULL_REPO_CONFIGS_MODULE`` replaces the stores the tests target.  Here that module puts our
``FeatureStoreOnlineStore`` (on a Redis URL we give) in the place of Feast's ``redis`` entry, so
the tests Feast runs on its Redis store run on ours, and, in a second session, in the place of
``sqlite`` (the only store Feast's per-type test targets); the offline store is Feast's file
store.  Docker-, cloud- and vector-search-only tests get no parameter and are skipped by Feast.

* :func:`suite_python` — a venv for the tests: Feast's test dependencies (pytest 7, testcontainers,
  minio, keycloak, grpcio, botocore, BigQuery: imported at module level by Feast's test helpers,
  not used by these tests) over the Feast side venv (a ``.pth`` file adds its site-packages, so
  Feast itself is not installed twice and the side venv is not touched);
* :func:`run_suites` — copies the tests out of a Feast checkout, runs :data:`SESSIONS`, and
  returns each test's outcome from pytest's JUnit XML.

The source comes from a checkout of https://github.com/feast-dev/feast named by
``$FEATURESTORE_FEAST_SOURCE`` (or ``--feast-source``).  As a script, against a Redis 8 it starts::

    python -m tests.helpers.feast_suite --feast-source ~/src/feast
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.feast import feast_env, feast_python, venv_path

SOURCE_ENV = "FEATURESTORE_FEAST_SOURCE"
# Feast's own CI pins for these (sdk/python/requirements/py3.11-ci-requirements.txt), and what its
# test helpers import at module level
SUITE_PINS = (
    "pytest==7.4.4",
    "pytest-asyncio==0.23.8",
    "pytest-env==1.1.3",
    "pytest-timeout==1.4.2",
    "pytest-xdist==3.8.0",
    "assertpy==1.1",
    "minio==7.2.11",
    "testcontainers==4.15.0",
    "python-keycloak==4.2.2",
    "cryptography==50.0.2",
    "grpcio==1.85.3",
    "grpcio-health-checking==1.85.1",
    "grpcio-reflection==1.85.1",
    "botocore==1.44.18",
    "google-cloud-bigquery==3.47.0",
)
STORE = "featurestore.feast.FeatureStoreOnlineStore"
ONLINE = "tests/integration/online_store"


@dataclass(frozen=True)
class Session:
    """One pytest session: our store in place of Feast's ``stand_in`` entry, over ``files``."""

    stand_in: str
    files: tuple[str, ...]
    # a pytest -k expression of the tests left out
    leave_out: str = "dynamo"


SESSIONS = (
    Session(
        "redis",
        (
            f"{ONLINE}/test_universal_online.py",
            f"{ONLINE}/test_push_features_to_online_store.py",
            f"{ONLINE}/test_universal_e2e.py",
        ),
        # DynamoDB's own tests (marked for every store, they need aiobotocore and DynamoDB); and
        # test_e2e_consistency sleeps 20 s a run: infer_features=True differs only in Feast's inference
        leave_out="dynamo or (e2e_consistency and True])",
    ),
    Session("sqlite", (f"{ONLINE}/test_universal_online_types.py",)),
)

# what passes on our store (docs/feast.md lists why each of the others does not)
EXPECTED_PASSED = frozenset(
    {
        "redis: test_entity_ttl_online_store",
        "redis: test_write_to_online_store_event_check",
        "redis: test_push_features_and_read",
        "redis: test_e2e_consistency[False]",
        "sqlite: test_feature_get_online_features_types_match[int32]",
        "sqlite: test_feature_get_online_features_types_match[int64]",
        "sqlite: test_feature_get_online_features_types_match[float]",
        "sqlite: test_feature_get_online_features_types_match[bool]",
    }
)

CONFIG_MODULE = '''"""Our online store in place of Feast's {stand_in!r} entry (tests/helpers/feast_suite.py)."""
import os

from tests.universal.feature_repos.universal.data_sources.file import FileDataSourceCreator

STORE = {{"type": "{store}", "connection_string": os.environ["FS_SUITE_REDIS_URL"]}}
AVAILABLE_ONLINE_STORES = {{"{stand_in}": (STORE, None)}}
AVAILABLE_OFFLINE_STORES = [("local", FileDataSourceCreator)]
'''


@dataclass(frozen=True)
class Outcome:
    """One Feast test: ``passed``, ``failed``, ``error`` or ``skipped``, and the first line of why."""

    outcome: str
    message: str = ""


def suite_venv_path() -> Path:
    """The suite venv, beside the side venv, named by both venvs' pins."""
    key = hashlib.sha256(json.dumps([str(venv_path()), SUITE_PINS]).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"featurestore-feast-suite-venv-{key}"


def suite_python(side_python: Path | None = None) -> tuple[Path, float]:
    """The suite venv's python (built if needed) and the seconds building it took (0: reused)."""
    side_python = side_python or feast_python()[0]
    venv = suite_venv_path()
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import feast, pytest, testcontainers, minio, keycloak, grpc, botocore"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, 0.0
    started = time.monotonic()
    building = venv.with_name(venv.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    site = subprocess.run(
        [str(side_python), "-c", "import feast, pathlib; print(pathlib.Path(feast.__file__).parent.parent)"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    base = Path(os.path.realpath(side_python))  # the interpreter the side venv was made from
    done = subprocess.run([str(base), "-m", "venv", str(building)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"making the Feast suite venv failed: {done.stderr[-800:]}")
    (site_dir,) = (building / "lib").glob("python*/site-packages")
    # after the venv's own site-packages: the test dependencies win, Feast comes from the side venv
    (site_dir / "zz_feast_side_venv.pth").write_text(site + "\n")
    install = [str(building / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*install, *SUITE_PINS], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise RuntimeError(f"installing Feast's test dependencies failed: {done.stderr[-800:]}")
    shutil.rmtree(venv, ignore_errors=True)
    building.rename(venv)  # we run it as `python -m pytest`: no script shebang to fix
    return python, time.monotonic() - started


def copy_tests(source: Path, into: Path) -> Path:
    """Feast's ``sdk/python/tests`` and ``pytest.ini`` from a checkout, into ``into``; that folder."""
    sdk = source / "sdk" / "python"
    if not (sdk / "tests" / "universal" / "feature_repos" / "repo_configuration.py").exists():
        raise FileNotFoundError(f"{source} is not a checkout of github.com/feast-dev/feast (no sdk/python/tests)")
    shutil.copytree(sdk / "tests", into / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(sdk / "pytest.ini", into / "pytest.ini")
    return into


def _label(stand_in: str, name: str) -> str:
    """``test_x`` and its own parameter, without Feast's environment parameter."""
    function, _, parameters = name.partition("[")
    if not parameters:
        return f"{stand_in}: {function}"
    dtype = re.search(r"feature_dtype='(\w+)', feature_is_list=(\w+), has_empty_list=(\w+)", parameters)
    if dtype:
        kind, is_list, empty = dtype.groups()
        suffix = kind + ("_list" if is_list == "True" else "") + ("_with_empty" if empty == "True" else "")
        return f"{stand_in}: {function}[{suffix}]"
    own = parameters[:-1].rsplit(")-", 1)  # "ParameterSet(...)-False": the test's own parameter last
    return f"{stand_in}: {function}" + (f"[{own[1]}]" if len(own) == 2 and "ParameterSet" not in own[1] else "")


def _outcomes(stand_in: str, report: Path) -> dict[str, Outcome]:
    found: dict[str, Outcome] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        label = _label(stand_in, case.get("name", ""))
        outcome = Outcome("passed")
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                text = (element.get("message") or element.text or "").strip().splitlines()
                outcome = Outcome("failed" if kind == "failure" else kind, text[0] if text else "")
                break
        if label in found and found[label].outcome == "skipped":  # Feast's empty parameter sets repeat
            continue
        found[label] = outcome
    return found


def run_suites(python: Path, source: Path, redis_url: str, workdir: Path) -> tuple[dict[str, Outcome], float]:
    """Every test of :data:`SESSIONS` against our store on ``redis_url``; their outcomes, and the seconds taken."""
    tree = copy_tests(source, workdir / "feast-tests")
    results: dict[str, Outcome] = {}
    started = time.monotonic()
    for session in SESSIONS:
        module = f"featurestore_as_{session.stand_in}"
        (tree / f"{module}.py").write_text(CONFIG_MODULE.format(stand_in=session.stand_in, store=STORE))
        report = workdir / f"{module}.xml"
        env = {
            **feast_env(),
            "PYTHONPATH": os.pathsep.join([str(tree), feast_env()["PYTHONPATH"]]),
            "FEAST_IS_LOCAL_TEST": "True",  # no cloud data sources
            "FULL_REPO_CONFIGS_MODULE": module,
            "FS_SUITE_REDIS_URL": redis_url,
        }
        command = [str(python), "-m", "pytest", *session.files, "--integration", "-q", "-p", "no:cacheprovider",
                   "-k", f"not ({session.leave_out})", f"--junitxml={report}", "-o", "addopts="]  # fmt: skip
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=600)
        if not report.exists():
            raise RuntimeError(
                f"Feast's tests did not run ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        results.update(_outcomes(session.stand_in, report))
    return results, time.monotonic() - started


def unexpected(results: dict[str, Outcome]) -> list[str]:
    """What differs from :data:`EXPECTED_PASSED`: a test that passes but is not listed, a listed one
    that does not pass, and a failure that is not a refusal at ``feast apply`` (the only reason
    documented in docs/feast.md)."""
    problems = [
        f"{label}: expected to pass, {results[label].outcome}: {results[label].message}"
        for label in sorted(EXPECTED_PASSED & results.keys())
        if results[label].outcome != "passed"
    ]
    problems += [f"{label}: expected to pass, did not run" for label in sorted(EXPECTED_PASSED - results.keys())]
    for label, result in sorted(results.items()):
        if result.outcome == "passed" and label not in EXPECTED_PASSED:
            problems.append(f"{label}: passes now: add it to EXPECTED_PASSED and docs/feast.md")
        if result.outcome in ("failed", "error") and "UnsupportedFeastDefinition" not in result.message:
            problems.append(f"{label}: {result.outcome} for another reason than a refusal: {result.message}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feast-source", default=os.environ.get(SOURCE_ENV), help=f"a Feast checkout (${SOURCE_ENV})")
    parser.add_argument("--redis-url", help="a Redis 8 to use (it is flushed); default: start one")
    args = parser.parse_args(argv)
    if not args.feast_source:
        parser.error(f"name a checkout of github.com/feast-dev/feast: --feast-source or ${SOURCE_ENV}")
    from featurestore.jobs.dev import local_redis

    python, built = suite_python()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        server = None if args.redis_url else local_redis.start(workdir / "redis", engine="redis")
        try:
            url = args.redis_url or server.url  # type: ignore[union-attr]
            results, seconds = run_suites(python, Path(args.feast_source).expanduser(), url, workdir)
        finally:
            if server is not None:
                local_redis.stop(workdir / "redis")
    for label, result in sorted(results.items()):
        print(f"{result.outcome:8} {label}  {result.message[:160]}")
    counts = {
        kind: sum(r.outcome == kind for r in results.values()) for kind in ("passed", "failed", "error", "skipped")
    }
    venv = f"built in {built:.0f} s" if built else "reused"
    print(f"{counts} in {seconds:.0f} s (suite venv {venv})")
    problems = unexpected(results)
    print("\n".join(problems) if problems else f"as expected: {len(EXPECTED_PASSED)} pass")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
