"""``featurestore doctor``'s pure parts: the lines, the exit code by the worst, each judgement, and a
no-op probe for every command of every ACL role."""

from __future__ import annotations

from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.ops import doctor
from featurestore.jobs.ops.acl import BATCH_WRITER, READER, ROLES, STREAMING_WRITER
from featurestore.jobs.ops.doctor import FAIL, OK, WARN, CheckResult, ServerFacts
from featurestore.readers.errors import AuthenticationError, ConfigurationError


def test_a_result_is_one_line_and_its_fix_on_the_next() -> None:
    assert doctor.format_result(doctor.ok("redis", "redis://h:1 reachable")) == [
        "ok    redis      redis://h:1 reachable"
    ]
    failed = doctor.fail("warehouse", "table 'tx' not found", "run featurestore generate", ExitCode.USAGE)
    assert doctor.format_result(failed) == [
        "FAIL  warehouse  table 'tx' not found",
        "                 fix: run featurestore generate",
    ]
    assert doctor.format_result(doctor.warn("jars", "not downloaded"))[0].startswith("warn  jars ")


def test_the_exit_code_is_the_worst_results() -> None:
    fine, warned = doctor.ok("java", "17"), doctor.warn("jars", "not yet", "run once")
    assert doctor.exit_code([fine, warned]) == ExitCode.OK  # a warning does not fail
    assert doctor.worst([fine, warned]) == WARN and doctor.worst([]) == OK
    permission = doctor.fail("acl", "may not run hset", "featurestore acl", ExitCode.PERMISSION)
    missing = doctor.fail("warehouse", "no table", "generate", ExitCode.USAGE)
    results = [fine, permission, warned, missing]
    assert doctor.worst(results) == FAIL
    assert doctor.exit_code(results) == ExitCode.PERMISSION  # the first failure, from the ground up
    assert doctor.summary(results) == "doctor: 1 ok, 1 warn, 2 FAIL"
    assert doctor.fail("x", "y", "z").code == ExitCode.FAILED


def test_an_error_becomes_its_exit_code_and_keeps_its_own_fix() -> None:
    refused = doctor.failure("redis", AuthenticationError("wrong password for 'u' at redis://u:***@h:1. Fix: check it"))
    assert (refused.level, refused.code, refused.fix) == (FAIL, ExitCode.AUTHENTICATION, "check it")
    assert refused.detail == "wrong password for 'u' at redis://u:***@h:1"
    typo = doctor.failure("warehouse", ConfigurationError("table 't' not found in /w; create it"), "fallback")
    assert (typo.code, typo.detail, typo.fix) == (ExitCode.USAGE, "table 't' not found in /w", "create it")
    assert doctor.failure("x", ConfigurationError("no hint here"), "fallback").fix == "fallback"


def test_every_command_of_every_role_has_a_probe_and_multi_goes_last() -> None:
    for role in ROLES.values():
        probes = doctor.role_probes(role)
        assert [p.command for p in probes if p.command != "multi"] == [
            c for c in sorted(role.command_names, key=lambda n: n == "multi") if c != "multi"
        ]
        assert all(doctor.PROBE_KEY in p.args or "{key}" not in " ".join(doctor.PROBES[p.command]) for p in probes)
    assert doctor.role_probes(STREAMING_WRITER)[-1].command == "multi"
    assert doctor.PROBE_KEY.startswith("fs:")  # inside every role's key pattern


def test_the_acl_judgement_names_the_role_and_the_command_that_fixes_it() -> None:
    refused = {"hset": "NOPERM User fs_reader has no permissions to run the 'hset' command"}
    result = doctor.acl_result(BATCH_WRITER, "fs_reader", refused)
    assert (result.level, result.code) == (FAIL, ExitCode.PERMISSION)
    assert "'fs_reader' may not run hset" in result.detail and "batch-writer role needs them" in result.detail
    assert "`featurestore acl --role batch-writer --user fs_reader`" in result.fix
    assert doctor.acl_result(READER, "fs_reader", {}).level == OK
    default_user = doctor.acl_result(READER, None, {})
    assert default_user.level == WARN and "featurestore acl --role reader" in default_user.fix


def test_server_judgement() -> None:
    redis8 = ServerFacts("Redis 8.2.3", ("vectorset 1",), hsetex=True, hexpire=True)
    assert doctor.server_result(redis8, STREAMING_WRITER).level == OK
    assert "HSETEX" in doctor.server_result(redis8, STREAMING_WRITER).detail
    redis74 = ServerFacts("Redis 7.4.1", (), hsetex=False, hexpire=True)
    assert doctor.server_result(redis74, STREAMING_WRITER).level == OK
    assert "MULTI HSET+HEXPIRE" in doctor.server_result(redis74, STREAMING_WRITER).detail
    redis7 = ServerFacts("Redis 7.0.15", (), hsetex=False, hexpire=False)
    too_old = doctor.server_result(redis7, BATCH_WRITER)
    assert (too_old.level, too_old.code) == (FAIL, ExitCode.SERVER_TOO_OLD) and "7.0.15" in too_old.detail
    assert doctor.server_result(ServerFacts(None, None, None, None), READER).level == WARN
    info = "# Server\r\nredis_version:8.2.3\r\n# Modules\r\nmodule:name=vectorset,ver=1,api=1,filters=0\r\n"
    assert doctor.parse_info(info) == ("Redis 8.2.3", ("vectorset 1",))
    assert doctor.parse_info("redis_version:7.2.4\nvalkey_version:9.1.2\n") == ("Valkey 9.1.2", ())


def test_machine_and_kafka_judgements() -> None:
    assert doctor.java_result(None, "/usr/bin/java").level == OK
    old_java = doctor.java_result("Java 11 found (/usr/bin/java), Spark needs Java 17 or newer: ...", "/usr/bin/java")
    assert (
        old_java.level == FAIL and old_java.detail == "Java 11 found (/usr/bin/java), Spark needs Java 17 or newer: ..."
    )
    assert doctor.spark_result(True, "4.1.1", "4.1").level == OK
    assert doctor.spark_result(False, None, "4.1").level == FAIL
    assert "built for Spark 4.1" in doctor.spark_result(True, "3.5.2", "4.1").detail
    assert doctor.jars_result(None, "/a.jar,/b.jar").level == OK
    assert doctor.jars_result(None, None).level == WARN
    assert doctor.jars_result("/gone.jar", None, ["/gone.jar"]).code == ExitCode.USAGE
    assert doctor.kafka_result(None, {}, 0).level == OK
    assert doctor.kafka_result(None, {}, 2, streaming_role=True).level == WARN
    assert doctor.kafka_result(None, {}, 2, streaming_role=False).level == OK
    assert doctor.kafka_result("a:9092,b:9092", {"a:9092": "refused", "b:9092": None}, 1).level == OK
    down = doctor.kafka_result("a:9092", {"a:9092": "Connection refused"}, 1)
    assert down.level == FAIL and "a:9092: Connection refused" in down.detail


def test_a_result_is_a_plain_value() -> None:
    assert CheckResult("x", OK, "y") == doctor.ok("x", "y")
