"""connect(): passwords and TLS on a private redis-server."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import IN_CI, _free_port

import queuesim
from queuesim import Queue

pytestmark = pytest.mark.real_redis


def _need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("CI=true needs redis-server on PATH for the password and TLS tests")
        pytest.skip("redis-server is not on PATH")


def _wait(client: redis.Redis) -> None:
    for _ in range(100):
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
        except redis.AuthenticationError:
            return


@pytest.fixture
def password_server() -> Iterator[int]:
    _need_redis_server()
    port = _free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--requirepass", "s3cret"], stdout=subprocess.DEVNULL)
    _wait(redis.Redis(port=port, password="s3cret"))
    yield port
    proc.terminate()
    proc.wait(5)


def test_redis_url_with_password(password_server: int) -> None:
    conn = queuesim.connect(f"redis://:s3cret@127.0.0.1:{password_server}/0")
    q = Queue("secured", conn)
    job = q.add("j", {"a": 1})
    assert q.get_job(job.id) is not None
    conn.close()


def test_wrong_password_is_reported_by_redis(password_server: int) -> None:
    conn = queuesim.connect(f"redis://:wrong@127.0.0.1:{password_server}/0")
    with pytest.raises(redis.AuthenticationError):
        Queue("secured", conn)


def test_rediss_url_with_password_over_tls(tmp_path: Path) -> None:
    _need_redis_server()
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                             "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file",
                             str(cert), "--tls-auth-clients", "no", "--save", "", "--requirepass", "s3cret"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        if proc.poll() is not None:
            pytest.skip(f"this redis-server has no TLS support: {proc.stderr.read().decode()[:200]}")  # type: ignore[union-attr]
        url = f"rediss://:s3cret@127.0.0.1:{port}/0?ssl_ca_certs={cert}&ssl_check_hostname=false"
        _wait(redis.Redis.from_url(url))
        conn = queuesim.connect(url)
        q = Queue("tls", conn)
        job = q.add("j", {"over": "tls"})
        fetched = queuesim.Worker(q).fetch()
        assert fetched is not None
        assert fetched.id == job.id
        assert fetched.data == {"over": "tls"}
        conn.close()
    finally:
        proc.terminate()
        proc.wait(5)
