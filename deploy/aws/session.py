"""Where boto3 clients come from, how resources are named and tagged, and what AWS errors mean.

`AwsContext` holds the region, an optional endpoint URL (moto's server mode, the local Lambda
gateway, a VPC endpoint) and an optional profile; credentials always come from boto3's usual
chain (environment, shared files, SSO, instance role) and are never read, printed or stored
here. ``AWS_ENDPOINT_URL`` and the per-service ``AWS_ENDPOINT_URL_<SERVICE>`` variables work as
boto3 documents them when no endpoint is given.

`aws_errors(what)` turns boto3's exceptions into `ServesimError`s that say what to do:
missing credentials, access denied, quotas, throttling, an unreachable endpoint.
"""
from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

from sim.errors import ServesimError

TAG_KEY = "servesim:run-id"
NAME_PREFIX = "servesim-"
IAM_PATH = "/servesim/"
_RUN_ID = re.compile(r"^[a-z0-9]{4,20}(?:-[a-z0-9]{1,12})?$")

ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
                 "InvalidClientTokenId", "AuthFailure", "SignatureDoesNotMatch", "ExpiredToken",
                 "ExpiredTokenException", "InvalidAccessKeyId", "OptInRequired"}
QUOTA = {"LimitExceeded", "LimitExceededException", "ServiceQuotaExceededException", "InstanceLimitExceeded",
         "VcpuLimitExceeded", "CodeStorageExceededException", "TooManyBuckets", "InsufficientInstanceCapacity",
         "MaxSpotInstanceCountExceeded", "RulesPerSecurityGroupLimitExceeded", "SecurityGroupLimitExceeded"}
THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown",
             "RequestThrottled", "RequestThrottledException"}
NOT_FOUND = {"ResourceNotFoundException", "NoSuchEntity", "NoSuchBucket", "InvalidInstanceID.NotFound",
             "InvalidGroup.NotFound", "RepositoryNotFoundException", "NoSuchKey", "404", "NotFound"}


def new_run_id() -> str:
    """A run id: UTC time to the second and 6 random hex digits (lower case, fits AWS names)."""
    return f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ServesimError(f"run id {run_id!r} is not one servesim makes (e.g. 20261122184512-ab12cd): "
                            "lower-case letters and digits, one optional dash")
    return run_id


def resource_name(run_id: str, *parts: object, max_len: int = 64) -> str:
    """``servesim-<run-id>-<parts...>`` made of [a-z0-9-], at most `max_len` characters (the
    run id is always kept whole, so names of one run stay recognisable)."""
    tail = "-".join(re.sub(r"[^a-z0-9]+", "-", str(p).lower()).strip("-") for p in parts if str(p))
    name = f"{NAME_PREFIX}{run_id}" + (f"-{tail}" if tail else "")
    return name[:max_len].rstrip("-")


def tags_list(run_id: str, **extra: str) -> list[dict]:
    """Tags in the ``[{"Key", "Value"}]`` shape (EC2, IAM, S3)."""
    return [{"Key": TAG_KEY, "Value": run_id}] + [{"Key": f"servesim:{k}", "Value": str(v)} for k, v in extra.items()]


def tags_dict(run_id: str, **extra: str) -> dict:
    """Tags in the ``{key: value}`` shape (Lambda, CloudWatch Logs, ECR uses the list shape)."""
    return {t["Key"]: t["Value"] for t in tags_list(run_id, **extra)}


@dataclass
class AwsContext:
    """Region, endpoint and profile for every boto3 client of one command (no credentials here).

    `region`: None takes boto3's default (AWS_REGION / AWS_DEFAULT_REGION / the profile's).
    `endpoint_url`: None uses AWS (or boto3's AWS_ENDPOINT_URL*); a URL sends every service
    there (moto's server mode; the local Lambda gateway for `lambda`)."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    _session: object = field(default=None, init=False, repr=False, compare=False)

    def session(self):
        if self._session is None:
            try:
                import boto3
            except ImportError:
                raise ServesimError("the AWS commands need boto3: pip install 'servesim[aws]'") from None
            with aws_errors("opening an AWS session"):
                self._session = boto3.Session(profile_name=self.profile)
        return self._session

    @property
    def region_name(self) -> str:
        region = self.region or self.session().region_name
        if not region:
            raise ServesimError("no AWS region: pass --region or set AWS_REGION (or a region in your AWS profile)")
        return region

    def client(self, service: str, *, retries: int | None = None, read_timeout_s: float | None = None,
               pool: int | None = None, region: str | None = None, **config):
        """A boto3 client. `retries`: total attempts (1 = never retry; default: boto3's
        standard mode); `read_timeout_s`: socket read timeout; `pool`: max pooled connections."""
        from botocore.config import Config

        opts: dict = {"user_agent_extra": "servesim", **config}
        opts["retries"] = {"mode": "standard", **({"total_max_attempts": retries} if retries else {})}
        if read_timeout_s is not None:
            opts["read_timeout"] = read_timeout_s
        if pool is not None:
            opts["max_pool_connections"] = pool
        kwargs = {"region_name": region or self.region_name, "config": Config(**opts)}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return self.session().client(service, **kwargs)

    def account_id(self) -> str:
        with aws_errors("finding the AWS account (sts:GetCallerIdentity)"):
            return self.client("sts").get_caller_identity()["Account"]

    def describe(self) -> dict:
        """What to record about where the run went: never credentials."""
        return {"region": self.region_name, "endpoint_url": self.endpoint_url, "profile": self.profile}


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return (response.get("Error") or {}).get("Code") or str((response.get("ResponseMetadata") or {})
                                                                  .get("HTTPStatusCode", "")) or None
    return None


def is_not_found(exc: BaseException) -> bool:
    code = error_code(exc) or ""
    return code in NOT_FOUND or code.endswith(".NotFound") or code.startswith("NoSuch")


def explain(exc: BaseException, what: str) -> str | None:
    """The message for a boto3/botocore exception met while doing `what`, or None if it is not one."""
    try:
        from botocore import exceptions as bx
    except ImportError:
        return None
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return (f"{what}: no AWS credentials found. servesim uses boto3's usual chain: set AWS_PROFILE (or "
                "--profile), run `aws configure` / `aws sso login`, or export AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, bx.ProfileNotFound):
        return f"{what}: {exc}: check --profile / AWS_PROFILE against ~/.aws/config"
    if isinstance(exc, getattr(bx, "TokenRetrievalError", ())):
        return f"{what}: the SSO session has expired: run `aws sso login`"
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return f"{what}: cannot reach the AWS endpoint ({exc}): check the network, --region and --endpoint-url"
    if isinstance(exc, bx.ClientError):
        code = error_code(exc) or "error"
        message = (exc.response.get("Error") or {}).get("Message") or str(exc)
        op = getattr(exc, "operation_name", "the call")
        if code in ACCESS_DENIED:
            return (f"{what}: AWS refused {op} ({code}: {message}). The credentials in use lack a permission "
                    "servesim needs; the README's 'AWS permissions' section lists them. Check which identity "
                    "you are with `aws sts get-caller-identity`.")
        if code in QUOTA:
            return (f"{what}: an AWS quota was hit ({code}: {message}). Ask for more in the Service Quotas "
                    "console, use fewer or smaller resources, and run `servesim teardown --all-servesim` "
                    "to delete leftovers of earlier runs.")
        if code in THROTTLED:
            return (f"{what}: AWS throttled {op} ({code}) even after boto3's retries; wait a minute and run "
                    "the command again (campaigns continue with --resume).")
        return f"{what}: AWS error in {op}: {code}: {message}"
    if isinstance(exc, bx.WaiterError):
        return f"{what}: gave up waiting ({exc})"
    if isinstance(exc, bx.BotoCoreError):
        return f"{what}: {exc}"
    return None


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Re-raise boto3's exceptions as `ServesimError` with a message saying what to do."""
    try:
        yield
    except ServesimError:
        raise
    except Exception as exc:  # noqa: BLE001 - only AWS's own exceptions are translated, the rest re-raised
        message = explain(exc, what)
        if message is None:
            raise
        raise ServesimError(message) from None
