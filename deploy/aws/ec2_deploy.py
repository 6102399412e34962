"""Deploy a model to EC2: instances in the default VPC serving the Flask app under gunicorn.

What `Ec2Stack` creates, in order (``plan()`` lists it first; ``--dry-run`` stops there):

1. an S3 bucket (private) with the app bundle and the model; instances fetch both at boot
   through presigned URLs, so they need no IAM role at all;
2. a security group in the default VPC whose only inbound rule is TCP on the app's port from
   the given CIDR (0.0.0.0/0 only when explicitly allowed);
3. the instances (Amazon Linux 2023, the latest AMI from AWS's public SSM parameter, IMDSv2
   required), whose user data (`deploy.aws.ec2_package.render_user_data`) installs the app and
   starts it under gunicorn as a systemd service.

`launch()` records the time just before RunInstances, and `wait_healthy()` polls each
instance's ``/health`` until it answers 200: the difference is the instance's **boot time as a
user sees it** (API, pending -> running, OS boot, the set-up script, the model load), which is
what the aws-ec2 calibration target records as a cold start. gunicorn gets one worker per vCPU.

`url_for(instance)` gives an instance's base URL (default ``http://<public IP>:<port>``); it is
a parameter so that tests against moto, whose instances run nothing, can point it at a local
server.
"""
from __future__ import annotations

import ipaddress
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from deploy.aws.resources import Planned, bucket_name, create_bucket, presign, upload
from deploy.aws.session import AwsContext, aws_errors, resource_name, tags_list
from sim.errors import ServesimError

CHECKIP_URL = "https://checkip.amazonaws.com"  # AWS's own what-is-my-address service
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
PRESIGN_S = 6 * 3600  # instances launched later in a campaign fetch the same objects
DEFAULT_PORT = 8080
HEALTH_TIMEOUT_S = 900.0


def caller_cidr(timeout_s: float = 5.0) -> str:
    """This machine's public address as a one-address network (x.x.x.x/32), from CHECKIP_URL:
    the default of --allow-cidr, so that only the caller can reach the instances."""
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=timeout_s) as r:
            address = ipaddress.ip_address(r.read(64).decode("ascii", "replace").strip())
    except (OSError, ValueError) as exc:
        raise ServesimError(f"--allow-cidr was not given and this machine's public address could not be read from "
                            f"{CHECKIP_URL} ({exc}): pass --allow-cidr with your address, e.g. 203.0.113.7/32") from None
    return f"{address}/{address.max_prefixlen}"


@dataclass(frozen=True)
class Ec2Spec:
    """What to deploy. `allow_cidr`: who may reach the app (an address /32 or a network);
    `allow_anywhere` must be set to accept 0.0.0.0/0 or ::/0. `workers`: gunicorn workers (None:
    one per vCPU)."""

    model: str
    instance_type: str
    count: int = 1
    allow_cidr: str = ""
    allow_anywhere: bool = False
    workers: int | None = None
    threads: int = 1
    port: int = DEFAULT_PORT
    health_timeout_s: float = HEALTH_TIMEOUT_S

    def __post_init__(self):
        if not 1 <= int(self.count) <= 100:
            raise ServesimError(f"--count must be 1-100, got {self.count}")
        if not self.allow_cidr:
            raise ServesimError("--allow-cidr is required: the address allowed to reach the instances, e.g. "
                                "203.0.113.7/32 (your public address: curl https://checkip.amazonaws.com)")
        try:
            net = ipaddress.ip_network(self.allow_cidr, strict=False)
        except ValueError:
            raise ServesimError(f"--allow-cidr {self.allow_cidr!r} is not an address or network like "
                                "203.0.113.7/32") from None
        if net.prefixlen == 0 and not self.allow_anywhere:
            raise ServesimError(f"--allow-cidr {self.allow_cidr} opens the instances to the whole internet; "
                                "pass --allow-anywhere as well if that is really meant")
        object.__setattr__(self, "allow_cidr", str(net))
        if self.workers is not None and int(self.workers) < 1:
            raise ServesimError(f"--workers must be >= 1, got {self.workers}")
        if not 1 <= int(self.port) <= 65535:
            raise ServesimError(f"--port must be 1-65535, got {self.port}")


@dataclass
class Ec2Instance:
    instance_id: str
    url: str = ""
    public_ip: str | None = None
    launch_s: float = 0.0  # time.time() just before RunInstances
    healthy_s: float | None = None

    @property
    def boot_s(self) -> float | None:
        return None if self.healthy_s is None else self.healthy_s - self.launch_s


@dataclass
class Ec2Deployment:
    run_id: str
    region: str
    instance_type: str
    bucket: str = ""
    security_group_id: str = ""
    image_id: str = ""
    instances: list[Ec2Instance] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "instances": [{**asdict(i), "boot_s": i.boot_s} for i in self.instances]}


class Ec2Stack:
    """Deploys `spec` as run `run_id`. `prepare()` (S3 objects, security group, AMI) once, then
    `launch(n)` and `wait_healthy()` as often as needed."""

    def __init__(self, ctx: AwsContext, spec: Ec2Spec, run_id: str, work_dir: Path,
                 echo: Callable[[str], None] = print, url_for: Callable[[dict], str] | None = None):
        from deploy.models import resolve_model

        self.ctx, self.spec, self.run_id, self.work_dir, self.echo = ctx, spec, run_id, Path(work_dir), echo
        self.model = resolve_model(spec.model)
        self.url_for = url_for or (lambda inst: f"http://{inst['PublicIpAddress']}:{spec.port}")
        self.deployment = Ec2Deployment(run_id, ctx.region_name, spec.instance_type)
        self._type_info: dict | None = None
        self._user_data: str | None = None

    @property
    def sg_name(self) -> str:
        return resource_name(self.run_id, "app")

    def type_info(self) -> dict:
        """vCPUs and architecture of the instance type (DescribeInstanceTypes)."""
        if self._type_info is None:
            with aws_errors(f"looking up the instance type {self.spec.instance_type}"):
                try:
                    found = self.ctx.client("ec2").describe_instance_types(
                        InstanceTypes=[self.spec.instance_type])["InstanceTypes"]
                except Exception as exc:
                    if "InvalidInstanceType" in str(exc):
                        raise ServesimError(f"--instance-type {self.spec.instance_type!r} is not an EC2 instance "
                                            f"type in {self.ctx.region_name}") from None
                    raise
            if not found:
                raise ServesimError(f"--instance-type {self.spec.instance_type!r} is not offered in {self.ctx.region_name}")
            archs = found[0]["ProcessorInfo"]["SupportedArchitectures"]
            arch = "arm64" if "arm64" in archs and "x86_64" not in archs else "x86_64"
            self._type_info = {"vcpus": int(found[0]["VCpuInfo"]["DefaultVCpus"]), "architecture": arch}
        return self._type_info

    @property
    def workers(self) -> int:
        return int(self.spec.workers or self.type_info()["vcpus"])

    def plan(self) -> list[Planned]:
        s = self.spec
        return [
            Planned("s3-bucket", bucket_name(self.run_id), "private; the app bundle and the model, fetched at boot "
                    "through presigned URLs"),
            Planned("security-group", self.sg_name, f"default VPC; inbound TCP {s.port} from {s.allow_cidr} only"),
            *[Planned("ec2-instance", resource_name(self.run_id, s.instance_type, i),
                      f"{s.instance_type}, Amazon Linux 2023, gunicorn on port {s.port}, IMDSv2")
              for i in range(s.count)],
        ]

    # -- prepare -----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Upload the bundle and the model, create the security group, find the AMI."""
        from deploy.aws.ec2_package import build_app_bundle, render_user_data
        from deploy.models.cache import sha256_file

        dep, s = self.deployment, self.spec
        ec2 = self.ctx.client("ec2")
        with aws_errors("finding the default VPC"):
            vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise ServesimError(f"no default VPC in {self.ctx.region_name}: create one with "
                                "`aws ec2 create-default-vpc` (servesim deploys into the default VPC)")
        arch = self.type_info()["architecture"]
        with aws_errors("finding the Amazon Linux 2023 AMI (SSM public parameter)"):
            dep.image_id = self.ctx.client("ssm").get_parameter(
                Name=AMI_PARAMETER.format(arch=arch))["Parameter"]["Value"]
        dep.bucket = create_bucket(self.ctx, self.run_id, self.echo)
        bundle = build_app_bundle(self.work_dir)
        upload(self.ctx, dep.bucket, f"app/{bundle.name}", bundle, self.echo)
        model_key = f"models/{self.model.sha256[:16]}/{Path(self.model.path).name}"
        upload(self.ctx, dep.bucket, model_key, Path(self.model.path), self.echo)
        with aws_errors(f"creating the security group {self.sg_name}"):
            dep.security_group_id = ec2.create_security_group(
                GroupName=self.sg_name, VpcId=vpcs[0]["VpcId"],
                Description=f"servesim run {self.run_id}: the app port from {s.allow_cidr} only",
                TagSpecifications=[{"ResourceType": "security-group", "Tags": tags_list(self.run_id)}])["GroupId"]
            ip_range = ({"Ipv6Ranges": [{"CidrIpv6": s.allow_cidr, "Description": "servesim client"}]}
                        if ":" in s.allow_cidr else
                        {"IpRanges": [{"CidrIp": s.allow_cidr, "Description": "servesim client"}]})
            ec2.authorize_security_group_ingress(GroupId=dep.security_group_id, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": s.port, "ToPort": s.port, **ip_range}])
        self.echo(f"created security group {self.sg_name} ({dep.security_group_id}): TCP {s.port} from {s.allow_cidr}")
        self._user_data = render_user_data(
            bundle_url=presign(self.ctx, dep.bucket, f"app/{bundle.name}", PRESIGN_S),
            bundle_sha256=sha256_file(bundle),
            model_url=presign(self.ctx, dep.bucket, model_key, PRESIGN_S), model_sha256=self.model.sha256,
            model_name=self.model.name, workers=self.workers, threads=s.threads, port=s.port)

    # -- launch ------------------------------------------------------------------------------
    def launch(self, count: int | None = None) -> list[Ec2Instance]:
        """RunInstances for `count` (default the spec's) instances; they are recorded at once."""
        if self._user_data is None:
            self.prepare()
        s, dep = self.spec, self.deployment
        n = int(count or s.count)
        ec2 = self.ctx.client("ec2")
        tags = tags_list(self.run_id)
        launch_s = time.time()
        with aws_errors(f"launching {n} {s.instance_type} instance(s)"):
            found = ec2.run_instances(
                ImageId=dep.image_id, InstanceType=s.instance_type, MinCount=n, MaxCount=n,
                UserData=self._user_data, SecurityGroupIds=[dep.security_group_id],
                MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
                InstanceInitiatedShutdownBehavior="terminate",
                TagSpecifications=[{"ResourceType": "instance",
                                    "Tags": tags + [{"Key": "Name", "Value": resource_name(self.run_id, s.instance_type)}]},
                                   {"ResourceType": "volume", "Tags": tags}])["Instances"]
        out = [Ec2Instance(i["InstanceId"], launch_s=launch_s) for i in found]
        dep.instances.extend(out)
        self.echo(f"launched {', '.join(i.instance_id for i in out)} ({s.instance_type})")
        return out

    def wait_healthy(self, instances: list[Ec2Instance]) -> list[Ec2Instance]:
        """Wait until each instance runs and its /health answers 200; records `healthy_s`."""
        ec2 = self.ctx.client("ec2")
        ids = [i.instance_id for i in instances]
        with aws_errors(f"waiting for {', '.join(ids)} to run"):
            ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 5, "MaxAttempts": 120})
            described = {d["InstanceId"]: d for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                         for d in r["Instances"]}
        for inst in instances:
            d = described[inst.instance_id]
            inst.public_ip = d.get("PublicIpAddress")
            try:
                inst.url = self.url_for(d)
            except KeyError:
                raise ServesimError(f"{inst.instance_id} has no public IP: the default VPC's subnets must assign "
                                    "public addresses") from None
        deadline = time.monotonic() + self.spec.health_timeout_s
        pending = list(instances)
        while pending:
            for inst in list(pending):
                if _healthy(inst.url + "/health"):
                    inst.healthy_s = time.time()
                    pending.remove(inst)
                    self.echo(f"{inst.instance_id} answers at {inst.url} after {inst.boot_s:.1f} s")
            if pending:
                if time.monotonic() > deadline:
                    raise ServesimError(f"{', '.join(i.instance_id for i in pending)} did not answer /health within "
                                        f"{self.spec.health_timeout_s:.0f} s; the set-up log is "
                                        "/var/log/servesim-setup.log on the instance (EC2 console: Get system log)")
                time.sleep(2.0)
        return instances

    def terminate(self, instances: list[Ec2Instance]) -> None:
        if instances:
            with aws_errors("terminating instances"):
                self.ctx.client("ec2").terminate_instances(InstanceIds=[i.instance_id for i in instances])

    def deploy(self) -> Ec2Deployment:
        self.prepare()
        self.wait_healthy(self.launch())
        return self.deployment


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3.0) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False
