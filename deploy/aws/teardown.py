"""Find and delete what servesim created: everything tagged ``servesim:run-id`` in one region.

Found by its tag, service by service (names alone are never trusted): Lambda functions (their
function URLs go with them), CloudWatch log groups of servesim functions, EC2 instances (not
yet terminated) and security groups, S3 buckets (emptied first, every version), ECR
repositories (with their images) and IAM roles under the ``/servesim/`` path (their inline and
attached policies first). Deletion runs in dependency order (instances are terminated and
waited for before their security group goes). What is already gone is not an error, so
teardown can be run again after an interruption.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from deploy.aws.session import IAM_PATH, NAME_PREFIX, TAG_KEY, AwsContext, aws_errors, check_run_id, is_not_found

KINDS = ("lambda-function", "log-group", "ec2-instance", "security-group", "ecr-repository", "s3-bucket", "iam-role")


@dataclass(frozen=True)
class Found:
    """A tagged resource: its kind (one of KINDS), id (name, ARN or AWS id) and run id."""

    kind: str
    id: str
    run_id: str

    def line(self) -> str:
        return f"  {self.kind:<16} {self.id}  (run {self.run_id})"


def _tag_value(tags: Iterable[dict] | dict | None) -> str | None:
    if isinstance(tags, dict):
        return tags.get(TAG_KEY)
    for t in tags or ():
        if t.get("Key") == TAG_KEY:
            return t.get("Value")
    return None


def _want(value: str | None, run_id: str | None) -> bool:
    return value is not None and (run_id is None or value == run_id)


def _tagged(kind: str, items: Iterable[dict], name_key: str, tags_of: Callable[[dict], object],
            run_id: str | None) -> list[Found]:
    """The `items` named ``servesim-...`` whose tags (read only for those) carry the run id."""
    out = []
    for item in items:
        if item[name_key].startswith(NAME_PREFIX) or item[name_key].startswith(f"/aws/lambda/{NAME_PREFIX}"):
            value = _tag_value(tags_of(item))
            if _want(value, run_id):
                out.append(Found(kind, item[name_key], value))
    return out


def find(ctx: AwsContext, run_id: str | None = None) -> list[Found]:
    """Every servesim resource of `run_id` (None: of every run) in the context's region."""
    if run_id is not None:
        check_run_id(run_id)
    out: list[Found] = []
    with aws_errors("listing servesim's Lambda functions"):
        lam = ctx.client("lambda")
        functions = (f for page in lam.get_paginator("list_functions").paginate() for f in page["Functions"])
        out += _tagged("lambda-function", functions, "FunctionName",
                       lambda f: lam.list_tags(Resource=f["FunctionArn"]).get("Tags"), run_id)
    with aws_errors("listing servesim's log groups"):
        logs = ctx.client("logs")
        groups = (g for page in logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix=f"/aws/lambda/{NAME_PREFIX}") for g in page["logGroups"])
        out += _tagged("log-group", groups, "logGroupName",
                       lambda g: logs.list_tags_log_group(logGroupName=g["logGroupName"]).get("tags"), run_id)
    tag_filter = [{"Name": f"tag:{TAG_KEY}", "Values": [run_id]} if run_id else {"Name": "tag-key", "Values": [TAG_KEY]}]
    with aws_errors("listing servesim's EC2 instances and security groups"):
        ec2 = ctx.client("ec2")
        live = ["pending", "running", "stopping", "stopped", "shutting-down"]
        for page in ec2.get_paginator("describe_instances").paginate(
                Filters=tag_filter + [{"Name": "instance-state-name", "Values": live}]):
            for res in page["Reservations"]:
                for inst in res["Instances"]:
                    out.append(Found("ec2-instance", inst["InstanceId"], _tag_value(inst.get("Tags"))))
        for page in ec2.get_paginator("describe_security_groups").paginate(Filters=tag_filter):
            for sg in page["SecurityGroups"]:
                out.append(Found("security-group", sg["GroupId"], _tag_value(sg.get("Tags"))))
    with aws_errors("listing servesim's ECR repositories"):
        ecr = ctx.client("ecr")
        repos = (r for page in ecr.get_paginator("describe_repositories").paginate() for r in page["repositories"])
        out += _tagged("ecr-repository", repos, "repositoryName",
                       lambda r: ecr.list_tags_for_resource(resourceArn=r["repositoryArn"]).get("tags"), run_id)
    with aws_errors("listing servesim's S3 buckets"):
        s3 = ctx.client("s3")
        for bucket in s3.list_buckets().get("Buckets", []):
            if bucket["Name"].startswith(NAME_PREFIX):
                try:
                    value = _tag_value(s3.get_bucket_tagging(Bucket=bucket["Name"]).get("TagSet"))
                except Exception as exc:  # NoSuchTagSet / NoSuchBucket: not one of ours (or gone)
                    if "NoSuchTagSet" in str(exc) or is_not_found(exc):
                        continue
                    raise
                if _want(value, run_id):
                    out.append(Found("s3-bucket", bucket["Name"], value))
    with aws_errors("listing servesim's IAM roles"):
        iam = ctx.client("iam")
        for page in iam.get_paginator("list_roles").paginate(PathPrefix=IAM_PATH):
            for role in page["Roles"]:
                value = _tag_value(iam.list_role_tags(RoleName=role["RoleName"]).get("Tags"))
                if _want(value, run_id):
                    out.append(Found("iam-role", role["RoleName"], value))
    return out


def teardown(ctx: AwsContext, *, run_id: str | None = None, all_servesim: bool = False,
             echo: Callable[[str], None] = print, dry_run: bool = False) -> list[Found]:
    """Delete the resources of `run_id` (or, with `all_servesim`, of every run); the list of
    what was found. `dry_run`: only list them."""
    if (run_id is None) == (not all_servesim):
        from sim.errors import ServesimError

        raise ServesimError("teardown needs exactly one of --run-id ID or --all-servesim")
    found = find(ctx, run_id)
    if dry_run or not found:
        return found
    by_kind = {k: [f for f in found if f.kind == k] for k in KINDS}
    lam, logs, ec2, ecr = (ctx.client(s) for s in ("lambda", "logs", "ec2", "ecr"))
    _delete_each(by_kind["lambda-function"], "Lambda function", lambda i: lam.delete_function(FunctionName=i), echo)
    _delete_each(by_kind["log-group"], "log group", lambda i: logs.delete_log_group(logGroupName=i), echo)
    _terminate(ctx, by_kind["ec2-instance"], echo)
    _delete_each(by_kind["security-group"], "security group",
                 lambda i: _when_detached(lambda: ec2.delete_security_group(GroupId=i), echo), echo)
    _delete_each(by_kind["ecr-repository"], "ECR repository",
                 lambda i: ecr.delete_repository(repositoryName=i, force=True), echo)
    s3, iam = ctx.client("s3"), ctx.client("iam")
    _delete_each(by_kind["s3-bucket"], "S3 bucket", lambda i: _empty_and_delete_bucket(s3, i), echo)
    _delete_each(by_kind["iam-role"], "IAM role", lambda i: _delete_role(iam, i), echo)
    return found


def _when_detached(call, echo, wait_s: float = 180.0) -> None:
    """`call()`, waiting out AWS's DependencyViolation while the network interfaces of just
    terminated instances are released (it can take a minute after they show terminated)."""
    import time

    from deploy.aws.session import error_code

    deadline, said = time.monotonic() + wait_s, False
    while True:
        try:
            return call()
        except Exception as exc:
            if error_code(exc) != "DependencyViolation" or time.monotonic() > deadline:
                raise
            if not said:
                echo("waiting for the terminated instances' network interfaces to be released...")
                said = True
            time.sleep(5.0)


def _gone_ok(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except Exception as exc:
        if not is_not_found(exc):
            raise


def _delete_each(items: list[Found], what: str, delete: Callable[[str], object], echo) -> None:
    """`delete(id)` each of `items` (a `what`, e.g. "Lambda function"); one already gone is fine."""
    for f in items:
        with aws_errors(f"deleting the {what} {f.id}"):
            _gone_ok(delete, f.id)
        echo(f"deleted {what} {f.id}")


def _terminate(ctx: AwsContext, items: list[Found], echo) -> None:
    if not items:
        return
    ec2 = ctx.client("ec2")
    ids = [f.id for f in items]
    with aws_errors(f"terminating {', '.join(ids)}"):
        ec2.terminate_instances(InstanceIds=ids)
        echo(f"terminating {', '.join(ids)} (waiting, so their security group can go)...")
        ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 5, "MaxAttempts": 120})
    echo(f"terminated {', '.join(ids)}")


def _empty_and_delete_bucket(s3, name: str) -> None:
    """Every object version and delete marker, then the bucket."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        objects = [{"Key": o["Key"], "VersionId": o["VersionId"]}
                   for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objects:
            s3.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
    s3.delete_bucket(Bucket=name)


def _delete_role(iam, name: str) -> None:
    """Its inline and attached policies and instance profiles, then the role."""
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for pol in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=pol["PolicyArn"])
    for prof in iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
        iam.remove_role_from_instance_profile(InstanceProfileName=prof["InstanceProfileName"], RoleName=name)
    iam.delete_role(RoleName=name)
