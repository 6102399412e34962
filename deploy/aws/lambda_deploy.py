"""Deploy a model to AWS Lambda: one function per memory size, a logs-only role, tagged with the run id.

What `LambdaStack` creates, in order (``plan()`` lists it first; ``--dry-run`` stops there):

1. an IAM role (path ``/servesim/``) that only Lambda may assume, with one inline policy:
   ``logs:CreateLogStream`` and ``logs:PutLogEvents`` on the run's own log groups. Nothing else,
   except, when the model is too large for the package (over 250 MB unzipped with the
   runtime), ``s3:GetObject`` on that one model object;
2. an S3 bucket, only when needed: the zip is over Lambda's 50 MB direct-upload limit (Lambda
   then reads the code from S3 itself) or the model is fetched at init;
3. for each memory size, a CloudWatch log group ``/aws/lambda/<function>`` created by us (so it
   is tagged and has a retention, and the role needs no ``logs:CreateLogGroup``), and the
   function (zip on a managed Python runtime, or a container image from ECR for users with
   Docker), then waits until it is Active; optionally a function URL with IAM auth.

The zip is `deploy.aws.lambda_package.build_lambda_zip`: onnxruntime and numpy wheels for the
Lambda platform, the handler, the model. onnxruntime gets one intra-op thread per whole vCPU
the memory size buys (memory / 1769 MB, at least 1, at most 6).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from deploy.aws.resources import Planned, bucket_name, create_bucket, partition, upload
from deploy.aws.session import IAM_PATH, AwsContext, aws_errors, error_code, resource_name, tags_dict, tags_list
from sim.errors import ServesimError

ARCHITECTURES = ("x86_64", "arm64")
MB_PER_VCPU = 1769
LOG_RETENTION_DAYS = 7
ROLE_PROPAGATION_S = 90.0
_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}


@dataclass(frozen=True)
class LambdaSpec:
    """What to deploy. `memory_mb`: one function per size (128-10240); `package`: ``zip`` or
    ``image`` (needs Docker); `timeout_s`: the function timeout (1-900); `function_url`: add a
    function URL (IAM auth) to each function."""

    model: str
    memory_mb: tuple[int, ...]
    architecture: str = "x86_64"
    python_version: str = "3.12"
    timeout_s: int = 30
    package: str = "zip"
    function_url: bool = False

    def __post_init__(self):
        mems = tuple(int(m) for m in self.memory_mb)
        if not mems or any(not 128 <= m <= 10240 for m in mems) or len(set(mems)) != len(mems):
            raise ServesimError(f"--memory-mb: Lambda memory sizes are 128-10240 MB, each once; got {list(mems)}")
        object.__setattr__(self, "memory_mb", mems)
        if self.architecture not in ARCHITECTURES:
            raise ServesimError(f"--architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}")
        if not 1 <= int(self.timeout_s) <= 900:
            raise ServesimError(f"--timeout-s: a Lambda timeout is 1-900 s, got {self.timeout_s}")
        if self.package not in ("zip", "image"):
            raise ServesimError(f"--package must be zip or image, got {self.package!r}")


@dataclass
class LambdaFunction:
    name: str
    arn: str
    memory_mb: int
    architecture: str
    url: str | None = None


@dataclass
class LambdaDeployment:
    """What was created (names and ARNs only)."""

    run_id: str
    region: str
    role_arn: str = ""
    bucket: str | None = None
    image_uri: str | None = None
    functions: list[LambdaFunction] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def threads_for(memory_mb: int) -> int:
    return max(1, min(6, int(memory_mb) // MB_PER_VCPU))


def role_policy(region: str, account: str, run_id: str, model_object: str | None = None) -> dict:
    """The role's only policy: write the run's own function logs (and read its model object)."""
    part = partition(region)
    statements = [{"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                   "Resource": f"arn:{part}:logs:{region}:{account}:log-group:/aws/lambda/{resource_name(run_id)}-*:*"}]
    if model_object:
        statements.append({"Sid": "ReadOwnModel", "Effect": "Allow", "Action": "s3:GetObject",
                           "Resource": f"arn:{part}:s3:::{model_object}"})
    return {"Version": "2012-10-17", "Statement": statements}


class LambdaStack:
    """Deploys `spec` as run `run_id`; `work_dir` holds the package (`package`: one already
    built for this spec). `prepare()` builds it (no AWS call), `plan()` lists, `deploy()` creates."""

    def __init__(self, ctx: AwsContext, spec: LambdaSpec, run_id: str, work_dir: Path,
                 echo: Callable[[str], None] = print, package=None):
        from deploy.models import resolve_model

        self.ctx, self.spec, self.run_id, self.work_dir, self.echo = ctx, spec, run_id, Path(work_dir), echo
        self.model = resolve_model(spec.model)
        self.package = package  # a LambdaPackage (zip) or the image build context (a folder); built if None
        self.deployment = LambdaDeployment(run_id, ctx.region_name)

    # -- names -------------------------------------------------------------------------------
    @property
    def role_name(self) -> str:
        return resource_name(self.run_id, "lambda-role")

    def function_name(self, memory_mb: int) -> str:
        return resource_name(self.run_id, self.model.name, f"{memory_mb}mb", self.spec.architecture)

    # -- plan --------------------------------------------------------------------------------
    def prepare(self):
        """Build the deployment package (or the image context) locally; no AWS call."""
        from deploy.aws import lambda_package as lp

        if self.spec.package == "zip":
            self.package = lp.build_lambda_zip(self.spec.model, architecture=self.spec.architecture,
                                               python_version=self.spec.python_version,
                                               out_dir=self.work_dir, echo=self.echo)
        else:
            self.package = lp.build_image_context(self.spec.model, architecture=self.spec.architecture,
                                                  python_version=self.spec.python_version, out_dir=self.work_dir)
        return self.package

    @property
    def _needs_bucket(self) -> bool:
        pkg = self.package
        return self.spec.package == "zip" and (pkg.upload_via_s3 or not pkg.model_in_zip)

    def plan(self) -> list[Planned]:
        if self.package is None:
            self.prepare()
        s, pkg = self.spec, self.package
        model_in_s3 = s.package == "zip" and not pkg.model_in_zip
        out = [Planned("iam-role", f"{IAM_PATH}{self.role_name}",
                       "assumable by lambda.amazonaws.com; logs:CreateLogStream/PutLogEvents on the run's log groups"
                       + ("; s3:GetObject on the model object" if model_in_s3 else ""))]
        if self._needs_bucket:
            what = []
            if pkg.upload_via_s3:
                what.append(f"the {pkg.zipped_bytes / 2**20:.1f} MB zip (over the 50 MB direct-upload limit)")
            if model_in_s3:
                what.append("the model (package would exceed 250 MB unzipped)")
            out.append(Planned("s3-bucket", bucket_name(self.run_id), "private; holds " + " and ".join(what)))
        if s.package == "image":
            out.append(Planned("ecr-repository", resource_name(self.run_id, "images"),
                               "container image built with Docker and pushed"))
        for m in s.memory_mb:
            fn = self.function_name(m)
            out.append(Planned("log-group", f"/aws/lambda/{fn}", f"retention {LOG_RETENTION_DAYS} days"))
            out.append(Planned("lambda-function", fn,
                               f"{m} MB, {s.architecture}, {s.package}, python{s.python_version}, timeout {s.timeout_s} s"))
            if s.function_url:
                out.append(Planned("function-url", fn, "AuthType AWS_IAM"))
        return out

    # -- deploy ------------------------------------------------------------------------------
    def deploy(self) -> LambdaDeployment:
        """Create everything in the plan (see the module docstring). On failure what was
        created stays tagged; the caller tears the run down."""
        if self.package is None:
            self.prepare()
        s, pkg, dep = self.spec, self.package, self.deployment
        account = self.ctx.account_id()
        model_object = None
        code: dict
        env = {"SERVESIM_MODEL_NAME": self.model.name}
        if self._needs_bucket:
            dep.bucket = create_bucket(self.ctx, self.run_id, self.echo)
        if s.package == "zip":
            if not pkg.model_in_zip:
                key = f"models/{pkg.model_sha256[:16]}/{pkg.model_path.name}"
                upload(self.ctx, dep.bucket, key, Path(pkg.model_path), self.echo)
                model_object = f"{dep.bucket}/{key}"
                env.update(SERVESIM_MODEL=f"s3://{dep.bucket}/{key}", SERVESIM_MODEL_SHA256=pkg.model_sha256)
            if pkg.upload_via_s3:
                key = f"code/{Path(pkg.zip_path).name}"
                upload(self.ctx, dep.bucket, key, Path(pkg.zip_path), self.echo)
                code = {"S3Bucket": dep.bucket, "S3Key": key}
            else:
                code = {"ZipFile": Path(pkg.zip_path).read_bytes()}
        else:
            code = {"ImageUri": self._push_image()}
        dep.role_arn = self._create_role(account, model_object)
        for m in s.memory_mb:
            dep.functions.append(self._create_function(m, code, env))
        return dep

    def _create_role(self, account: str, model_object: str | None) -> str:
        iam = self.ctx.client("iam")
        with aws_errors(f"creating the IAM role {self.role_name}"):
            role = iam.create_role(RoleName=self.role_name, Path=IAM_PATH,
                                   AssumeRolePolicyDocument=json.dumps(_TRUST),
                                   Description=f"servesim run {self.run_id}: Lambda function logs only",
                                   Tags=tags_list(self.run_id))["Role"]
            iam.put_role_policy(RoleName=self.role_name, PolicyName="servesim-logs-only",
                                PolicyDocument=json.dumps(role_policy(self.ctx.region_name, account, self.run_id,
                                                                      model_object)))
            iam.get_waiter("role_exists").wait(RoleName=self.role_name)
        self.echo(f"created IAM role {self.role_name} (logs only)")
        return role["Arn"]

    def _create_function(self, memory_mb: int, code: dict, env: dict) -> LambdaFunction:
        s, pkg = self.spec, self.package
        name = self.function_name(memory_mb)
        logs, lam = self.ctx.client("logs"), self.ctx.client("lambda")
        with aws_errors(f"creating the log group of {name}"):
            logs.create_log_group(logGroupName=f"/aws/lambda/{name}", tags=tags_dict(self.run_id))
            logs.put_retention_policy(logGroupName=f"/aws/lambda/{name}", retentionInDays=LOG_RETENTION_DAYS)
        kwargs = dict(FunctionName=name, Role=self.deployment.role_arn, Code=code, MemorySize=memory_mb,
                      Timeout=int(s.timeout_s), Architectures=[s.architecture], Tags=tags_dict(self.run_id),
                      Description=f"servesim {self.model.name} ({self.run_id})",
                      Environment={"Variables": {**env, "SERVESIM_THREADS": str(threads_for(memory_mb))}})
        if s.package == "zip":
            kwargs.update(Runtime=pkg.runtime, Handler=pkg.handler, PackageType="Zip")
            if not pkg.model_in_zip:  # the model is downloaded to /tmp at init
                kwargs["EphemeralStorage"] = {"Size": min(10240, max(512, 512 + pkg.model_bytes // 2**20 + 64))}
        else:
            kwargs["PackageType"] = "Image"
        with aws_errors(f"creating the Lambda function {name}"):
            fn = self._create_when_role_ready(lam, kwargs)
            lam.get_waiter("function_active_v2").wait(FunctionName=name)
            url = None
            if s.function_url:
                url = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]
        self.echo(f"created Lambda function {name} ({memory_mb} MB, {s.architecture}), Active")
        return LambdaFunction(name, fn["FunctionArn"], memory_mb, s.architecture, url)

    def _create_when_role_ready(self, lam, kwargs: dict) -> dict:
        """CreateFunction, waiting out IAM's propagation delay: a role created seconds ago may
        not be assumable by Lambda yet (InvalidParameterValueException); that one error is
        retried, said on the console, for up to ROLE_PROPAGATION_S."""
        deadline, said = time.monotonic() + ROLE_PROPAGATION_S, False
        while True:
            try:
                return lam.create_function(**kwargs)
            except Exception as exc:
                text = str(exc)
                if (error_code(exc) != "InvalidParameterValueException" or "assume" not in text
                        or time.monotonic() > deadline):
                    raise
                if not said:
                    self.echo("waiting for the new IAM role to propagate (AWS takes up to a minute)...")
                    said = True
                time.sleep(3.0)

    def _push_image(self) -> str:
        from deploy.aws import lambda_package as lp

        if not lp.docker_available():
            raise ServesimError("--package image needs a running Docker engine (docker info failed); "
                                "use --package zip, or run on a machine with Docker")
        import base64

        repo = resource_name(self.run_id, "images")
        ecr = self.ctx.client("ecr")
        with aws_errors(f"creating the ECR repository {repo}"):
            uri = ecr.create_repository(repositoryName=repo, tags=tags_list(self.run_id),
                                        imageScanningConfiguration={"scanOnPush": False})["repository"]["repositoryUri"]
            auth = ecr.get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
        image_uri = f"{uri}:{self.model.sha256[:12]}"
        lp.docker_build_push(self.package, image_uri, architecture=self.spec.architecture,
                             registry=auth["proxyEndpoint"], username=user, password=password, echo=self.echo)
        self.deployment.image_uri = image_uri
        return image_uri
