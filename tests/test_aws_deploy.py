"""The AWS deployers and teardown against moto's server mode (a real AWS-API endpoint on 127.0.0.1).

What moto cannot show (verified only here, not on AWS): that AWS accepts these exact requests in
every region, that the instances really boot and serve (moto's run nothing: `url_for` points
the health checks at a real local gunicorn), that IAM really enforces the policy.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from awshelp import FAKE_KEY_ID, FAKE_SECRET, aws, fake_credentials, moto_server  # noqa: F401 - fixtures
from modelhelp import write_tiny_model

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

TAG = "servesim:run-id"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="module")
def lambda_package(tiny, tmp_path_factory):
    """The real zip for python3.12 x86_64 (wheels for the Lambda platform), built once."""
    from deploy.aws.lambda_package import build_lambda_zip

    return build_lambda_zip(tiny, architecture="x86_64", python_version="3.12",
                            out_dir=tmp_path_factory.mktemp("pkg"), echo=lambda s: None)


@pytest.fixture(scope="module")
def local_app(tiny):
    """A real gunicorn serving the tiny model: what moto's instances stand for."""
    from deploy.local_server import LocalServer

    with LocalServer(str(tiny), workers=1) as server:
        yield server.url


def _tags(pairs) -> dict:
    return {t["Key"]: t["Value"] for t in pairs}


def _lambda_stack(aws, tiny, pkg, tmp_path, **spec):
    from deploy.aws.lambda_deploy import LambdaSpec, LambdaStack
    from deploy.aws.session import new_run_id

    spec = LambdaSpec(str(tiny), **{"memory_mb": (1024, 2048), **spec})
    return LambdaStack(aws, spec, new_run_id(), tmp_path, echo=lambda s: None, package=pkg)


def _nothing_left(aws) -> None:
    """Nothing servesim made is left, by the raw APIs (not just by `find`)."""
    lam, iam, ec2, s3, logs = (aws.client(s) for s in ("lambda", "iam", "ec2", "s3", "logs"))
    assert lam.list_functions()["Functions"] == []
    assert iam.list_roles(PathPrefix="/servesim/")["Roles"] == []
    assert [b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"].startswith("servesim-")] == []
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/servesim-")["logGroups"] == []
    assert ec2.describe_security_groups(Filters=[{"Name": "tag-key", "Values": [TAG]}])["SecurityGroups"] == []
    live = ec2.describe_instances(Filters=[{"Name": "instance-state-name",
                                            "Values": ["pending", "running", "stopping", "stopped"]}])
    assert [i for r in live["Reservations"] for i in r["Instances"]] == []


# ---- Lambda ---------------------------------------------------------------------------------

def test_lambda_plan_lists_every_resource_and_creates_nothing(aws, tiny, lambda_package, tmp_path):
    stack = _lambda_stack(aws, tiny, lambda_package, tmp_path, function_url=True)
    kinds = [p.kind for p in stack.plan()]
    assert kinds == ["iam-role", "log-group", "lambda-function", "function-url", "log-group", "lambda-function",
                     "function-url"]
    from deploy.aws.teardown import find

    assert find(aws) == []


def test_lambda_deploy_creates_tagged_functions_with_a_logs_only_role(aws, tiny, lambda_package, tmp_path):
    from deploy.aws.teardown import find, teardown

    stack = _lambda_stack(aws, tiny, lambda_package, tmp_path, architecture="x86_64", function_url=True)
    dep = stack.deploy()
    lam, iam, logs = aws.client("lambda"), aws.client("iam"), aws.client("logs")
    assert [f.memory_mb for f in dep.functions] == [1024, 2048]
    for f in dep.functions:
        cfg = lam.get_function_configuration(FunctionName=f.name)
        assert cfg["MemorySize"] == f.memory_mb and cfg["Architectures"] == ["x86_64"]
        assert cfg["Runtime"] == "python3.12" and cfg["Handler"] == "deploy.handler.handler"
        assert cfg["Timeout"] == 30 and cfg["Role"] == dep.role_arn and cfg["State"] == "Active"
        assert cfg["Environment"]["Variables"]["SERVESIM_THREADS"] == ("1" if f.memory_mb < 3538 else "2")
        assert lam.list_tags(Resource=f.arn)["Tags"][TAG] == stack.run_id
        assert f.url and lam.get_function_url_config(FunctionName=f.name)["AuthType"] == "AWS_IAM"
        group = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{f.name}")["logGroups"][0]
        assert group["retentionInDays"] == 7
        assert logs.list_tags_log_group(logGroupName=group["logGroupName"])["tags"][TAG] == stack.run_id
    role_name = dep.role_arn.rsplit("/", 1)[1]
    role = iam.get_role(RoleName=role_name)["Role"]
    assert _tags(role["Tags"])[TAG] == stack.run_id and role["Path"] == "/servesim/"
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    # Logs only: one inline policy, logs actions on the run's own log groups, no managed policy.
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == ["servesim-logs-only"]
    doc = iam.get_role_policy(RoleName=role_name, PolicyName="servesim-logs-only")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    actions = {a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert [s["Resource"] for s in doc["Statement"]] == [
        f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/servesim-{stack.run_id}-*:*"]
    assert lambda_package.zipped_bytes < 50 * 2**20 and dep.bucket is None  # the tiny model's zip is uploaded directly
    # Teardown leaves nothing behind.
    found = teardown(aws, run_id=stack.run_id, echo=lambda s: None)
    assert {f.kind for f in found} == {"lambda-function", "log-group", "iam-role"}
    assert find(aws) == []
    _nothing_left(aws)


def test_large_zip_goes_through_s3_and_large_model_is_read_from_s3(aws, tiny, lambda_package, tmp_path,
                                                                     monkeypatch):
    """Over 50 MB zipped: the code goes to S3; over 250 MB unzipped: the model is fetched at init,
    and the role may read exactly that one object."""
    import dataclasses

    from deploy.aws.lambda_package import build_lambda_zip
    from deploy.aws.teardown import teardown

    big = dataclasses.replace(lambda_package, zipped_bytes=60 * 2**20)
    stack = _lambda_stack(aws, tiny, big, tmp_path, memory_mb=(1024,))
    assert [p.kind for p in stack.plan()][:2] == ["iam-role", "s3-bucket"]
    dep = stack.deploy()
    s3 = aws.client("s3")
    assert dep.bucket and _tags(s3.get_bucket_tagging(Bucket=dep.bucket)["TagSet"])[TAG] == stack.run_id
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=dep.bucket)["Contents"]]
    assert keys == [f"code/{Path(big.zip_path).name}"]
    block = s3.get_public_access_block(Bucket=dep.bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    teardown(aws, run_id=stack.run_id, echo=lambda s: None)
    _nothing_left(aws)

    monkeypatch.setattr("deploy.aws.lambda_package.LAMBDA_UNZIPPED_BYTES", lambda_package.unzipped_bytes - 1)
    no_model = build_lambda_zip(tiny, architecture="x86_64", python_version="3.12", out_dir=tmp_path / "nomodel",
                                echo=lambda s: None)
    assert not no_model.model_in_zip
    stack = _lambda_stack(aws, tiny, no_model, tmp_path, memory_mb=(1024,))
    dep = stack.deploy()
    key = f"models/{no_model.model_sha256[:16]}/{Path(no_model.model_path).name}"
    assert s3.get_object(Bucket=dep.bucket, Key=key)["Body"].read() == Path(tiny).read_bytes()
    env = aws.client("lambda").get_function_configuration(FunctionName=dep.functions[0].name)["Environment"]
    assert env["Variables"]["SERVESIM_MODEL"] == f"s3://{dep.bucket}/{key}"
    assert env["Variables"]["SERVESIM_MODEL_SHA256"] == no_model.model_sha256
    iam = aws.client("iam")
    role_name = dep.role_arn.rsplit("/", 1)[1]
    doc = iam.get_role_policy(RoleName=role_name, PolicyName="servesim-logs-only")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    assert doc["Statement"][1] == {"Sid": "ReadOwnModel", "Effect": "Allow", "Action": "s3:GetObject",
                                   "Resource": f"arn:aws:s3:::{dep.bucket}/{key}"}
    teardown(aws, run_id=stack.run_id, echo=lambda s: None)
    _nothing_left(aws)


def test_cli_deploy_lambda_dry_run_and_real_then_teardown(aws, tiny, lambda_package, monkeypatch):
    import cli

    monkeypatch.setattr("deploy.aws.lambda_package.build_lambda_zip", lambda *a, **k: lambda_package)
    runner = CliRunner()
    url = aws.endpoint_url
    dry = runner.invoke(cli.main, ["deploy", "lambda", "--model", str(tiny), "--memory-mb", "512,1024", "--dry-run",
                                   "--endpoint-url", url, "--region", "us-east-1"])
    assert dry.exit_code == 0, dry.output
    assert "would create" in dry.output and dry.output.count("lambda-function") == 2
    assert "nothing was created" in dry.output
    assert aws.client("lambda").list_functions()["Functions"] == []
    real = runner.invoke(cli.main, ["deploy", "lambda", "--model", str(tiny), "--memory-mb", "512",
                                    "--endpoint-url", url, "--region", "us-east-1"])
    assert real.exit_code == 0, real.output
    run_id = re.search(r"teardown --run-id (\S+)", real.output).group(1)
    assert len(aws.client("lambda").list_functions()["Functions"]) == 1
    down = runner.invoke(cli.main, ["teardown", "--run-id", run_id, "--endpoint-url", url, "--region", "us-east-1"])
    assert down.exit_code == 0, down.output
    assert "nothing tagged is left" in down.output
    _nothing_left(aws)
    for out in (dry.output, real.output, down.output):
        assert FAKE_SECRET not in out and FAKE_KEY_ID not in out


# ---- EC2 ------------------------------------------------------------------------------------

def _ec2_stack(aws, tiny, tmp_path, local_app=None, **spec):
    from deploy.aws.ec2_deploy import Ec2Spec, Ec2Stack
    from deploy.aws.session import new_run_id

    spec = Ec2Spec(str(tiny), **{"instance_type": "c6i.large", "allow_cidr": "203.0.113.7/32", **spec})
    return Ec2Stack(aws, spec, new_run_id(), tmp_path, echo=lambda s: None,
                    url_for=(lambda inst: local_app) if local_app else None)


def test_ec2_deploy_security_group_user_data_tags_and_teardown(aws, tiny, tmp_path, local_app):
    from deploy.aws.teardown import find, teardown

    stack = _ec2_stack(aws, tiny, tmp_path, local_app, count=2)
    assert [p.kind for p in stack.plan()] == ["s3-bucket", "security-group", "ec2-instance", "ec2-instance"]
    assert find(aws) == []
    dep = stack.deploy()
    ec2, s3 = aws.client("ec2"), aws.client("s3")
    assert len(dep.instances) == 2 and all(i.boot_s is not None and i.boot_s >= 0 for i in dep.instances)
    # The security group: in the default VPC, one inbound rule, the app port from the given CIDR only.
    sg = ec2.describe_security_groups(GroupIds=[dep.security_group_id])["SecurityGroups"][0]
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    assert sg["VpcId"] == default_vpc and _tags(sg["Tags"])[TAG] == stack.run_id
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]], p.get("Ipv6Ranges"))
            for p in sg["IpPermissions"]] == [("tcp", 8080, 8080, ["203.0.113.7/32"], [])]
    ssm = aws.client("ssm").get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")
    for inst in dep.instances:
        d = ec2.describe_instances(InstanceIds=[inst.instance_id])["Reservations"][0]["Instances"][0]
        assert d["InstanceType"] == "c6i.large" and d["ImageId"] == ssm["Parameter"]["Value"]
        assert _tags(d["Tags"])[TAG] == stack.run_id
        assert [g["GroupId"] for g in d["SecurityGroups"]] == [dep.security_group_id]
        assert d["MetadataOptions"]["HttpTokens"] == "required"
        user_data = base64.b64decode(ec2.describe_instance_attribute(
            InstanceId=inst.instance_id, Attribute="userData")["UserData"]["Value"]).decode()
        assert user_data.startswith("#!/bin/bash") and "gunicorn" in user_data and "systemctl" in user_data
        assert re.search(r"^WORKERS=2$", user_data, re.M)  # c6i.large: one worker per vCPU
        # The presigned URLs in the user data fetch exactly the model and the bundle.
        urls = re.findall(r"(http://127\.0\.0\.1:\d+/[^'\s\"]+)", user_data)
        bodies = [urllib.request.urlopen(u.replace("&amp;", "&")).read() for u in urls]
        assert Path(tiny).read_bytes() in bodies
        assert any(b[:2] == b"\x1f\x8b" for b in bodies)  # the app bundle (gzip)
        assert hashlib.sha256(Path(tiny).read_bytes()).hexdigest() in user_data
    assert _tags(s3.get_bucket_tagging(Bucket=dep.bucket)["TagSet"])[TAG] == stack.run_id
    found = teardown(aws, run_id=stack.run_id, echo=lambda s: None)
    assert sorted({f.kind for f in found}) == ["ec2-instance", "s3-bucket", "security-group"]
    assert find(aws) == []
    _nothing_left(aws)


@pytest.mark.parametrize("cidr,anywhere,ok", [("203.0.113.7/32", False, True), ("0.0.0.0/0", False, False),
                                              ("0.0.0.0/0", True, True), ("::/0", False, False),
                                              ("not-an-address", False, False), ("", False, False)])
def test_allow_cidr_never_opens_to_everyone_unless_asked(cidr, anywhere, ok):
    from deploy.aws.ec2_deploy import Ec2Spec
    from sim.errors import ServesimError

    if ok:
        assert Ec2Spec("m", "c6i.large", allow_cidr=cidr, allow_anywhere=anywhere).allow_cidr == cidr
    else:
        with pytest.raises(ServesimError, match="allow"):
            Ec2Spec("m", "c6i.large", allow_cidr=cidr, allow_anywhere=anywhere)


def test_cli_deploy_ec2_dry_run_prints_resources_and_cost(aws, tiny):
    import cli

    result = CliRunner().invoke(cli.main, ["deploy", "ec2", "--model", str(tiny), "--instance-type", "c6i.large",
                                           "--count", "2", "--allow-cidr", "198.51.100.4/32", "--dry-run",
                                           "--endpoint-url", aws.endpoint_url, "--region", "us-east-1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("ec2-instance") == 2 and "inbound TCP 8080 from 198.51.100.4/32 only" in result.output
    assert "$0.1700/hour" in result.output  # 2 x c6i.large at $0.085/h
    from deploy.aws.teardown import find

    assert find(aws) == []
    refused = CliRunner().invoke(cli.main, ["deploy", "ec2", "--model", str(tiny), "--instance-type", "c6i.large",
                                            "--allow-cidr", "0.0.0.0/0", "--dry-run", "--endpoint-url",
                                            aws.endpoint_url])
    assert refused.exit_code == 2 and "--allow-anywhere" in refused.output


def test_teardown_all_servesim_spares_what_is_not_tagged(aws, tiny, tmp_path, local_app):
    import cli
    from deploy.aws.teardown import find

    s3, ec2 = aws.client("s3"), aws.client("ec2")
    s3.create_bucket(Bucket="servesim-not-ours")  # a servesim- name but no servesim tag
    mine = ec2.create_security_group(GroupName="users-own", Description="not servesim's")["GroupId"]
    stack = _ec2_stack(aws, tiny, tmp_path, local_app)
    stack.deploy()
    assert {f.run_id for f in find(aws)} == {stack.run_id}
    dry = CliRunner().invoke(cli.main, ["teardown", "--all-servesim", "--dry-run", "--endpoint-url", aws.endpoint_url,
                                        "--region", "us-east-1"])
    assert dry.exit_code == 0 and "would delete 3 resource(s)" in dry.output
    assert len(find(aws)) == 3
    result = CliRunner().invoke(cli.main, ["teardown", "--all-servesim", "--endpoint-url", aws.endpoint_url,
                                           "--region", "us-east-1"])
    assert result.exit_code == 0, result.output
    assert find(aws) == []
    assert "servesim-not-ours" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert ec2.describe_security_groups(GroupIds=[mine])["SecurityGroups"]
    again = CliRunner().invoke(cli.main, ["teardown", "--all-servesim", "--endpoint-url", aws.endpoint_url,
                                          "--region", "us-east-1"])
    assert again.exit_code == 0 and "nothing tagged" in again.output


def test_teardown_needs_one_scope(aws):
    import cli

    for args in ([], ["--run-id", "20261122184512-ab12cd", "--all-servesim"]):
        result = CliRunner().invoke(cli.main, ["teardown", *args, "--endpoint-url", aws.endpoint_url])
        assert result.exit_code == 2 and "exactly one of" in result.output
    bad = CliRunner().invoke(cli.main, ["teardown", "--run-id", "X; rm", "--endpoint-url", aws.endpoint_url])
    assert bad.exit_code == 2 and "run id" in bad.output


def test_allow_cidr_defaults_to_the_callers_address(monkeypatch):
    """Without --allow-cidr, only this machine's public address (from AWS's checkip service, here
    a local stand-in) may reach the instances; when it cannot be read, the message says what to pass."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from deploy.aws import ec2_deploy
    from deploy.procs import free_port
    from sim.errors import ServesimError

    class CheckIp(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"198.51.100.9\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), CheckIp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(ec2_deploy, "CHECKIP_URL", f"http://127.0.0.1:{server.server_address[1]}/")
        assert ec2_deploy.caller_cidr() == "198.51.100.9/32"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    monkeypatch.setattr(ec2_deploy, "CHECKIP_URL", f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(ServesimError, match="pass --allow-cidr"):
        ec2_deploy.caller_cidr(timeout_s=1.0)


def test_security_group_deletion_waits_out_dependency_violation(monkeypatch):
    """AWS refuses to delete a security group for a while after its instances terminate
    (DependencyViolation): teardown waits and retries that one error, and no other."""
    from botocore.exceptions import ClientError

    from deploy.aws import teardown as td

    monkeypatch.setattr("time.sleep", lambda s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ClientError({"Error": {"Code": "DependencyViolation", "Message": "in use"}}, "DeleteSecurityGroup")

    said = []
    td._when_detached(flaky, said.append)
    assert len(calls) == 3 and len(said) == 1

    def denied():
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DeleteSecurityGroup")

    with pytest.raises(ClientError):
        td._when_detached(denied, said.append)
