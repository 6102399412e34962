"""What a deployment creates, said before it is created: planned resources and the S3 artifacts bucket.

A deployer first makes its `plan()` (a list of `Planned` resources, which ``--dry-run`` prints
and stops), then creates them in that order. The artifacts bucket holds what instances and
functions fetch at start (the app bundle, the model, a Lambda zip over 50 MB); it is private
(public access blocked), tagged with the run id and emptied and deleted by teardown.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from deploy.aws.session import AwsContext, aws_errors, resource_name, tags_list


@dataclass(frozen=True)
class Planned:
    """One resource a deployment will create: its kind (``iam-role``, ``lambda-function``...),
    its name and what it is for / how it is configured."""

    kind: str
    name: str
    detail: str = ""

    def line(self) -> str:
        return f"  {self.kind:<22} {self.name}" + (f"  ({self.detail})" if self.detail else "")


def partition(region: str) -> str:
    """The ARN partition of `region`."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def bucket_name(run_id: str) -> str:
    return resource_name(run_id, "artifacts", max_len=63)


def create_bucket(ctx: AwsContext, run_id: str, echo: Callable[[str], None]) -> str:
    """Create the run's private, tagged artifacts bucket; its name."""
    name = bucket_name(run_id)
    s3 = ctx.client("s3")
    with aws_errors(f"creating the S3 bucket {name}"):
        kwargs = {"Bucket": name}
        if ctx.region_name != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region_name}
        s3.create_bucket(**kwargs)
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags_list(run_id)})
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
    echo(f"created S3 bucket {name}")
    return name


def upload(ctx: AwsContext, bucket: str, key: str, path: Path, echo: Callable[[str], None]) -> str:
    """Upload `path` to s3://bucket/key (multipart when large); the s3:// URI."""
    with aws_errors(f"uploading {path.name} to s3://{bucket}/{key}"):
        ctx.client("s3").upload_file(str(path), bucket, key)
    echo(f"uploaded {path.name} ({path.stat().st_size / 2**20:.1f} MB) to s3://{bucket}/{key}")
    return f"s3://{bucket}/{key}"


def presign(ctx: AwsContext, bucket: str, key: str, expires_s: int) -> str:
    """A presigned GET URL for s3://bucket/key. It carries a signature: never print or log it."""
    with aws_errors(f"presigning s3://{bucket}/{key}"):
        return ctx.client("s3", signature_version="s3v4").generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(expires_s))
