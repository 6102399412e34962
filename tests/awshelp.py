"""moto's server mode for the AWS tests: a real HTTP endpoint speaking the AWS APIs on 127.0.0.1.

`moto_server` is one server per test module, reset before each test that uses `aws`. The
credentials are fake but distinctive, so tests can check that they never reach an output.
"""
from __future__ import annotations

import urllib.request

import pytest

FAKE_KEY_ID = "AKIASERVESIMTESTKEY7"
FAKE_SECRET = "servesim/test+secret/DoNotLeakThisValue42"


@pytest.fixture(scope="module")
def moto_server():
    pytest.importorskip("moto")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def fake_credentials(monkeypatch):
    """The fake credentials in the environment, and no profile or config file of this machine."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/servesim-test-aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/servesim-test-aws-credentials")


@pytest.fixture
def aws(moto_server, fake_credentials):
    """An AwsContext on a freshly reset moto server, with fake credentials in the environment."""
    from deploy.aws.session import AwsContext

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    return AwsContext(region="us-east-1", endpoint_url=moto_server)
