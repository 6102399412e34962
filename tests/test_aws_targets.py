"""The aws-lambda and aws-ec2 calibration targets, the cost guard and AWS error messages.

aws-lambda runs end to end against the local Lambda gateway through `endpoint_url`: boto3's
Invoke with LogType=Tail, UpdateFunctionConfiguration + the ``function_updated_v2`` waiter for
every cold start, exactly the calls it makes on AWS. aws-ec2 runs against moto's server (its
instances run nothing, so `url_for` points the health checks and requests at a real local
gunicorn). Neither shows what AWS itself would measure; the README says so.
"""
from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from awshelp import FAKE_KEY_ID, FAKE_SECRET, aws, fake_credentials, moto_server  # noqa: F401 - fixtures
from click.testing import CliRunner
from test_campaign import check_valid_table, host, rie, tiny_model  # noqa: F401 - fixtures

from calibrate.campaign import QUICK as QUICK_SETTINGS
from calibrate.campaign import run_campaign
from deploy.procs import live_processes
from sim.errors import ServesimError

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")
SIZES = dict(quick=True, progress=False, echo=lambda s: None)


@pytest.fixture(autouse=True)
def nothing_left_running():
    yield
    assert live_processes() == []


def _no_credentials_in(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert FAKE_SECRET.encode() not in data and FAKE_KEY_ID.encode() not in data, path


# ---- aws-lambda against the local gateway ---------------------------------------------------

@contextlib.contextmanager
def gateway(tiny_model, rie, memory_mb: int, concurrency_limit: int):
    """`servesim local-lambda` in a process of its own (as users run it): (url, function)."""
    from calibrate.targets import LocalLambdaTarget, TargetConfig

    target = LocalLambdaTarget(tiny_model, [memory_mb], rie=rie)
    config = TargetConfig("c", {"memory_mb": memory_mb})
    with target._gateway(config, keep_alive_s=600.0, concurrency_limit=concurrency_limit) as endpoint:
        yield endpoint.info["url"], endpoint.info["function"]


def _status(url: str) -> dict:
    with urllib.request.urlopen(url + "/servesim/status") as r:
        return json.loads(r.read())


def test_aws_lambda_target_end_to_end_against_local_lambda(tmp_path, tiny_model, rie, host, fake_credentials):
    from calibrate.aws_targets import COLD_VARIABLE, AwsLambdaTarget
    from deploy.aws.session import AwsContext

    with gateway(tiny_model, rie, 1024, 4) as (url, function):
        ctx = AwsContext(region="us-east-1", endpoint_url=url)
        lam = ctx.client("lambda")
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": {"USER_SETTING": "kept"}})
        target = AwsLambdaTarget(tiny_model, ctx=ctx, function=function, echo=lambda s: None)
        out = tmp_path / "aws-lambda.parquet"
        run_campaign(target, out, host=host, **SIZES)
        status = _status(url)
        variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    df = check_valid_table(out, target="aws-lambda", n_cold=3, n_warm=50)
    assert (df.memory_mb == 1024).all() and df.billed_ms.notna().all()
    cold = df[df.phase == "cold"]
    assert (cold.init_ms > 0).all() and (cold.billed_ms >= np.floor(cold.server_ms)).all()
    # Every cold start went through UpdateFunctionConfiguration, and was a new environment.
    assert status["counters"]["config_updates"] == 1 + 3 + 1  # the test's, three cold starts, the variables put back
    assert status["counters"]["cold_starts"] >= 3
    assert variables == {"USER_SETTING": "kept"} and COLD_VARIABLE not in variables
    _no_credentials_in(tmp_path)


def test_throttles_are_recorded_never_retried(tmp_path, tiny_model, rie, host, fake_credentials):
    from calibrate.aws_targets import AwsLambdaTarget
    from deploy.aws.session import AwsContext

    with gateway(tiny_model, rie, 512, 1) as (url, function):
        target = AwsLambdaTarget(tiny_model, ctx=AwsContext(region="us-east-1", endpoint_url=url), function=function,
                                 echo=lambda s: None)
        out = tmp_path / "t.parquet"
        run_campaign(target, out, host=host, n_cold=0, n_warm=5, load_levels=[4], level_s=1.5, **SIZES)
        counters = _status(url)["counters"]
    df = pd.read_parquet(out)
    load = df[df.phase == "load"]
    assert (load.status == "throttled").sum() > 0 and (load.status == "ok").sum() > 0
    assert load[load.status == "throttled"].error.str.contains("TooManyRequests").all()
    # Each row is one Invoke: the gateway saw exactly as many throttles as the table holds
    # (plus the unrecorded warm-up calls of the level, 2 per client).
    assert 0 <= counters["throttled"] - (load.status == "throttled").sum() <= 2 * 4


def test_cli_calibrate_aws_lambda_existing_function(tmp_path, tiny_model, rie, fake_credentials):
    import cli

    with gateway(tiny_model, rie, 256, 4) as (url, function):
        out = tmp_path / "cli.parquet"
        result = CliRunner().invoke(cli.main, [
            "calibrate", "aws-lambda", "--model", str(tiny_model), "--function", function, "--endpoint-url",
            url, "--region", "us-east-1", "--out", str(out), "--quick", "--no-progress", "--cold", "2",
            "--warm", "10", "--levels", "1", "--level-s", "0.5"])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(out)
    assert (df.target == "aws-lambda").all() and (df.status == "ok").all() and (df.memory_mb == 256).all()
    assert FAKE_SECRET not in result.output and FAKE_KEY_ID not in result.output
    _no_credentials_in(tmp_path)


# ---- aws-ec2 against moto + a local gunicorn ------------------------------------------------

@pytest.fixture
def local_app(tiny_model):
    from deploy.local_server import LocalServer

    with LocalServer(str(tiny_model), workers=1) as server:
        yield server.url


def test_aws_ec2_target_campaign_boots_measures_and_tears_down(aws, tiny_model, tmp_path, host, local_app):
    from calibrate.aws_targets import AwsEc2Target
    from deploy.aws.teardown import find

    target = AwsEc2Target(tiny_model, "c6i.large", ctx=aws, allow_cidr="203.0.113.7/32", work_dir=tmp_path / "w",
                          echo=lambda s: None, url_for=lambda inst: local_app)
    out = tmp_path / "ec2.parquet"
    t0 = time.time()
    run_campaign(target, out, host=host, n_cold=2, **SIZES)
    df = check_valid_table(out, target="aws-ec2", n_cold=2, n_warm=50)
    assert (df.instance_type == "c6i.large").all() and (df.workers == 2).all()
    cold = df[df.phase == "cold"]
    assert (cold.init_ms < (time.time() - t0) * 1000).all()  # RunInstances -> first healthy answer
    # Three instances were launched (two cold starts, one serving) and every one is gone.
    ec2 = aws.client("ec2")
    states = [i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(states) == 3 and set(states) <= {"terminated", "shutting-down"}
    assert find(aws) == []
    _no_credentials_in(tmp_path)


def test_a_failing_campaign_still_tears_down(aws, tiny_model, tmp_path, host):
    from calibrate.aws_targets import AwsEc2Target
    from deploy.aws.teardown import find

    target = AwsEc2Target(tiny_model, "c6i.large", ctx=aws, allow_cidr="203.0.113.7/32", health_timeout_s=1.0,
                          work_dir=tmp_path / "w", echo=lambda s: None, url_for=lambda inst: "http://127.0.0.1:9")
    with pytest.raises(ServesimError, match="did not answer /health"):
        run_campaign(target, tmp_path / "x.parquet", host=host, n_cold=1, **SIZES)
    assert find(aws) == []


# ---- the cost guard -------------------------------------------------------------------------

def test_lambda_cost_bound_by_hand():
    """quick sizes, 1024 MB x86, timeout 30 s: cold 3 x (10 + 30) = 120 GB-s; sequential
    (5 + 50) x 30 = 1650 GB-s; levels 1 and 2 for 2 s: (1 + 2) x (2 + 90) = 276 GB-s;
    requests 3 + 55 + 3 x (2 + 2000) = 6064."""
    from deploy.aws.costs import lambda_campaign_cost
    from sim.pricing import load_pricing

    est = lambda_campaign_cost(QUICK_SETTINGS, [1024], "x86_64", 30, load_pricing())
    assert [line.quantity for line in est.lines] == [120.0, 1650.0, 276.0, 6064.0]
    assert est.upper_usd == pytest.approx((120 + 1650 + 276) * 0.0000166667 + 6064 * 0.0000002, rel=1e-12)
    est2 = lambda_campaign_cost(QUICK_SETTINGS, [1024, 2048], "arm64", 30, load_pricing())
    assert est2.upper_usd == pytest.approx(3 * 2046 * 0.0000133334 + 2 * 6064 * 0.0000002, rel=1e-12)


def test_ec2_cost_bound_by_hand():
    """quick sizes on c6i.large ($0.085/h), health timeout 600 s, request timeout 60 s: 3 boots
    of 660 s; the serving instance 600 + (5 + 6 + 50) x 60 + 50 x 0.2 (the warm pauses, each at
    most the longest) + 2 x (2 + 180) = 4634 s."""
    from deploy.aws.costs import ec2_campaign_cost
    from sim.pricing import load_pricing

    est = ec2_campaign_cost(QUICK_SETTINGS, ["c6i.large"], load_pricing(), health_timeout_s=600, request_timeout_s=60,
                            extra_warmup=6)
    assert [line.quantity for line in est.lines] == [1980.0, 4634.0]
    assert est.upper_usd == pytest.approx((1980 + 4634) * 0.085 / 3600, rel=1e-12)


def test_cost_guard_refuses_an_over_budget_campaign(tmp_path, tiny_model, aws, monkeypatch):
    import cli
    from deploy.aws.teardown import find

    out = tmp_path / "never.parquet"
    args = ["calibrate", "aws-ec2", "--model", str(tiny_model), "--instance-type", "c6i.large", "--allow-cidr",
            "203.0.113.7/32", "--quick", "--endpoint-url", aws.endpoint_url, "--region", "us-east-1", "--out", str(out)]
    refused = CliRunner().invoke(cli.main, [*args, "--max-cost-usd", "0.01"])
    assert refused.exit_code == 2 and "over --max-cost-usd 0.01" in refused.output
    assert not out.exists() and find(aws) == []
    dry = CliRunner().invoke(cli.main, [*args, "--dry-run", "--max-cost-usd", "5"])
    assert dry.exit_code == 0, dry.output
    assert "would create" in dry.output and "upper bound" in dry.output and "within --max-cost-usd 5" in dry.output
    assert "not included:" in dry.output and not out.exists() and find(aws) == []
    dry_over = CliRunner().invoke(cli.main, [*args, "--dry-run", "--max-cost-usd", "0.01"])
    assert dry_over.exit_code == 2 and "over --max-cost-usd" in dry_over.output


# ---- AWS errors become messages -------------------------------------------------------------

@pytest.mark.parametrize("code,expect", [
    ("AccessDeniedException", "lack a permission"), ("UnauthorizedOperation", "lack a permission"),
    ("ThrottlingException", "throttled"), ("TooManyRequestsException", "throttled"),
    ("ServiceQuotaExceededException", "quota"), ("VcpuLimitExceeded", "quota"),
    ("ValidationException", "AWS error in GetFunction: ValidationException")])
def test_aws_errors_become_clear_messages(code, expect, fake_credentials):
    from botocore.stub import Stubber

    from deploy.aws.session import AwsContext, aws_errors

    lam = AwsContext(region="us-east-1").client("lambda")
    with Stubber(lam) as stub:
        stub.add_client_error("get_function", service_error_code=code, service_message="nope", http_status_code=400)
        with pytest.raises(ServesimError, match=expect) as info:
            with aws_errors("reading the function"):
                lam.get_function(FunctionName="f")
    assert str(info.value).startswith("reading the function: ")


def test_missing_credentials_say_what_to_do(monkeypatch, moto_server):
    import cli

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/c")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/s")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = CliRunner().invoke(cli.main, ["teardown", "--all-servesim", "--region", "us-east-1", "--endpoint-url",
                                           moto_server])
    assert result.exit_code == 2 and "no AWS credentials found" in result.output and "aws configure" in result.output
    no_region = CliRunner().invoke(cli.main, ["teardown", "--all-servesim"], env={"AWS_REGION": "",
                                                                                   "AWS_DEFAULT_REGION": ""})
    assert no_region.exit_code == 2 and "no AWS region" in no_region.output
