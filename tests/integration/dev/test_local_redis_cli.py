"""`featurestore redis start|url|stop`: the same code path as the fixtures."""

from __future__ import annotations

import redis

from featurestore.jobs.cli import main


def test_start_url_stop(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    workdir = str(tmp_path / "srv")
    assert main(["redis", "start", "--workdir", workdir]) == 0
    url = capsys.readouterr().out.strip()
    try:
        assert url.startswith("redis://127.0.0.1:")
        info = redis.Redis.from_url(url).info("server")
        assert int(info["redis_version"].split(".")[0]) >= 8  # HSETEX/HEXPIRE need 8 (7.4 for HEXPIRE)
        assert main(["redis", "url", "--workdir", workdir]) == 0
        assert capsys.readouterr().out.strip() == url
        assert main(["redis", "start", "--workdir", workdir]) == 1  # already running: a clear error
        assert "already has a running server" in capsys.readouterr().err
    finally:
        assert main(["redis", "stop", "--workdir", workdir]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["redis", "url", "--workdir", workdir]) == 1
