"""Prices of AWS Lambda, EC2 and the Application Load Balancer, read from a price file.

The packaged file `sim/data/aws-us-east-1.yaml` holds us-east-1 list prices in USD, each with
its unit, source and as-of date; a user can pass their own file of the same schema
(`schema: servesim.pricing/1`). Every value is validated on load: a mistake raises `ConfigError`
naming the file, the key path (``lambda.duration.arm64.tiers[1].usd_per_gb_s.value``) and what
was expected. Nothing here is a price: prices live only in the data files.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError, read_user_file

SCHEMA = "servesim.pricing/1"
PACKAGED_FILE = "aws-us-east-1.yaml"
_NUMBER_RE = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


@dataclass(frozen=True)
class Citation:
    """Where one figure of the price file comes from (for reports)."""

    key: str
    value: float
    unit: str
    source: str
    date: str


@dataclass(frozen=True)
class DurationTier:
    """One monthly volume tier of Lambda on-demand duration.

    up_to_gb_s_per_month: upper end of the tier in GB-s per month (``math.inf`` on the last tier).
    usd_per_gb_s: rate for GB-s inside the tier.
    """

    up_to_gb_s_per_month: float
    usd_per_gb_s: float


@dataclass(frozen=True)
class LambdaArchPrices:
    """Lambda prices of one architecture (x86_64 or arm64).

    tiers: on-demand duration tiers, thresholds strictly increasing, the last unbounded.
    pc_usd_per_gb_s_held: provisioned concurrency, per GB-s of configured concurrency enabled.
    pc_duration_usd_per_gb_s: duration rate of invocations served by provisioned environments.
    """

    tiers: tuple[DurationTier, ...]
    pc_usd_per_gb_s_held: float
    pc_duration_usd_per_gb_s: float


@dataclass(frozen=True)
class LambdaPrices:
    """usd_per_request: request fee; pc_billing_increment_s: PC time is rounded up to this."""

    usd_per_request: float
    pc_billing_increment_s: float
    architectures: Mapping[str, LambdaArchPrices]


@dataclass(frozen=True)
class Ec2InstancePrice:
    """One EC2 instance type: on-demand Linux price (USD per hour), size, accelerator if any."""

    instance_type: str
    usd_per_hour: float
    vcpus: int
    memory_gib: float
    accelerator: str | None = None


@dataclass(frozen=True)
class AlbPrices:
    """Application Load Balancer prices and the size of one LCU in each of its four dimensions.

    usd_per_alb_hour: per ALB-hour; billing_increment_s: ALB time is rounded up to this (3600:
    a partial hour is billed as a full one); usd_per_lcu_hour: per LCU-hour. One LCU is
    lcu_new_connections_per_s new connections/s, or lcu_active_connections_per_minute active
    connections/minute, or lcu_processed_gb_per_hour GB/hour, or lcu_rule_evaluations_per_s rule
    evaluations/s beyond lcu_free_rules_per_request rules per request.
    """

    usd_per_alb_hour: float
    usd_per_lcu_hour: float
    billing_increment_s: float
    lcu_new_connections_per_s: float
    lcu_active_connections_per_minute: float
    lcu_processed_gb_per_hour: float
    lcu_rule_evaluations_per_s: float
    lcu_free_rules_per_request: float


@dataclass(frozen=True)
class Pricing:
    """All prices of one price file. `file` is where they were read from."""

    file: str
    region: str
    currency: str
    lambda_: LambdaPrices
    ec2_instances: Mapping[str, Ec2InstancePrice]
    ec2_minimum_billed_s: float
    alb: AlbPrices
    citations: tuple[Citation, ...]

    def lambda_arch(self, architecture: str) -> LambdaArchPrices:
        """Lambda prices of `architecture`; ConfigError listing the known ones if it is unknown."""
        try:
            return self.lambda_.architectures[architecture]
        except KeyError:
            raise ConfigError(self.file, "architecture",
                              f"an architecture in the price file: {', '.join(sorted(self.lambda_.architectures))}",
                              architecture) from None

    def instance(self, instance_type: str) -> Ec2InstancePrice:
        """Price of `instance_type`; ConfigError listing the known types if it is unknown."""
        try:
            return self.ec2_instances[instance_type]
        except KeyError:
            raise ConfigError(self.file, "instance_type",
                              f"an instance type in the price file: {', '.join(sorted(self.ec2_instances))}",
                              instance_type) from None

    def sources(self) -> list[dict[str, Any]]:
        """One row per figure: key, value, unit, source, date (loads straight into pandas)."""
        return citation_rows(self.citations)


def citation_rows(citations) -> list[dict[str, Any]]:
    """One row per cited figure: key, value, unit, source, date (loads straight into pandas)."""
    return [dict(key=c.key, value=c.value, unit=c.unit, source=c.source, date=c.date) for c in citations]


def read_data_file(path: str | Path | None, packaged: str, what: str) -> tuple[str, Any]:
    """(source, parsed YAML) of a user's data file, or of the packaged `sim/data/<packaged>` when
    `path` is None; ConfigError naming the file when it is not valid YAML."""
    if path is None:
        ref = resources.files(__package__).joinpath("data", packaged)
        source, text = str(ref), ref.read_text(encoding="utf-8")
    else:
        source, text = str(path), read_user_file(path, what)
    try:
        return source, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"valid YAML ({exc})") from None


def load_pricing(path: str | Path | None = None) -> Pricing:
    """Read and validate a price file; None reads the packaged us-east-1 file."""
    source, doc = read_data_file(path, PACKAGED_FILE, "price file (YAML)")
    return _Reader(source).pricing(doc)


class _Reader:
    """Validates one parsed price file, collecting citations as it goes."""

    def __init__(self, source: str):
        self.source = source
        self.citations: list[Citation] = []

    def fail(self, key: str, expected: str, *got: Any) -> ConfigError:
        return ConfigError(self.source, key, expected, *got)

    def mapping(self, obj: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(obj, Mapping):
            raise self.fail(key, "a mapping", obj)
        return obj

    def get(self, obj: Mapping[str, Any], name: str, key: str) -> Any:
        if name not in obj:
            raise self.fail(f"{key}.{name}" if key else name, "a value (key is missing)")
        return obj[name]

    def string(self, obj: Any, key: str) -> str:
        if isinstance(obj, _dt.date):  # YAML reads an unquoted 2025-10-01 as a date
            return obj.isoformat()
        if not isinstance(obj, str) or not obj.strip():
            raise self.fail(key, "a non-empty string", obj)
        return obj

    def number(self, obj: Any, key: str, *, positive: bool = False) -> float:
        """A finite number >= 0 (> 0 if positive); accepts '1e-7', which YAML 1.1 leaves a string."""
        if isinstance(obj, str) and _NUMBER_RE.match(obj):
            obj = float(obj)
        if isinstance(obj, bool) or not isinstance(obj, (int, float)) or not math.isfinite(obj):
            raise self.fail(key, "a number", obj)
        if obj < 0 or (positive and obj == 0):
            raise self.fail(key, "a positive number" if positive else "a number >= 0", obj)
        return float(obj)

    def quantity(self, parent: Mapping[str, Any], name: str, key: str, *, positive: bool = False) -> float:
        """A {value, unit, source, date} record; records its citation and returns the value."""
        path = f"{key}.{name}"
        rec = self.mapping(self.get(parent, name, key), path)
        value = self.number(self.get(rec, "value", path), f"{path}.value", positive=positive)
        unit = self.string(self.get(rec, "unit", path), f"{path}.unit")
        src = self.string(self.get(rec, "source", path), f"{path}.source")
        date = self.string(self.get(rec, "date", path), f"{path}.date")
        self.citations.append(Citation(path, value, unit, src, date))
        return value

    def pricing(self, doc: Any) -> Pricing:
        doc = self.mapping(doc, "")
        schema = doc.get("schema")
        if schema != SCHEMA:
            raise self.fail("schema", repr(SCHEMA), schema)
        region = self.string(self.get(doc, "region", ""), "region")
        currency = self.string(self.get(doc, "currency", ""), "currency")
        lambda_ = self.lambda_prices(self.mapping(self.get(doc, "lambda", ""), "lambda"))
        ec2 = self.mapping(self.get(doc, "ec2", ""), "ec2")
        minimum_s = self.quantity(ec2, "minimum_billed_s_per_launch", "ec2")
        instances = self.ec2_instances(ec2)
        alb = self.alb(self.mapping(self.get(doc, "alb", ""), "alb"))
        return Pricing(file=self.source, region=region, currency=currency, lambda_=lambda_,
                       ec2_instances=instances, ec2_minimum_billed_s=minimum_s, alb=alb,
                       citations=tuple(self.citations))

    def lambda_prices(self, lam: Mapping[str, Any]) -> LambdaPrices:
        usd_per_request = self.quantity(lam, "usd_per_request", "lambda")
        duration = self.mapping(self.get(lam, "duration", "lambda"), "lambda.duration")
        if not duration:
            raise self.fail("lambda.duration", "at least one architecture (x86_64, arm64)", duration)
        pc = self.mapping(self.get(lam, "provisioned", "lambda"), "lambda.provisioned")
        increment_s = self.quantity(pc, "billing_increment_s", "lambda.provisioned", positive=True)
        archs = {}
        for arch, spec in duration.items():
            key = f"lambda.duration.{arch}"
            tiers = self.tiers(self.get(self.mapping(spec, key), "tiers", key), f"{key}.tiers")
            pc_key = f"lambda.provisioned.{arch}"
            pc_arch = self.mapping(self.get(pc, arch, "lambda.provisioned"), pc_key)
            archs[arch] = LambdaArchPrices(
                tiers=tiers,
                pc_usd_per_gb_s_held=self.quantity(pc_arch, "usd_per_gb_s_held", pc_key),
                pc_duration_usd_per_gb_s=self.quantity(pc_arch, "duration_usd_per_gb_s", pc_key),
            )
        return LambdaPrices(usd_per_request, increment_s, archs)

    def tiers(self, items: Any, key: str) -> tuple[DurationTier, ...]:
        if not isinstance(items, list) or not items:
            raise self.fail(key, "a non-empty list of tiers", items)
        tiers, previous = [], 0.0
        for i, item in enumerate(items):
            tkey = f"{key}[{i}]"
            tier = self.mapping(item, tkey)
            upper = tier.get("up_to_gb_s_per_month")
            ukey = f"{tkey}.up_to_gb_s_per_month"
            if i == len(items) - 1:
                if upper is not None:
                    raise self.fail(ukey, "null on the last tier (it has no upper end)", upper)
                upper = math.inf
            else:
                upper = self.number(upper, ukey, positive=True)
                if upper <= previous:
                    raise self.fail(ukey, f"a threshold greater than the previous tier's ({previous:g} GB-s)", upper)
            tiers.append(DurationTier(upper, self.quantity(tier, "usd_per_gb_s", tkey)))
            previous = upper
        return tuple(tiers)

    def ec2_instances(self, ec2: Mapping[str, Any]) -> dict[str, Ec2InstancePrice]:
        instances = self.mapping(self.get(ec2, "instances", "ec2"), "ec2.instances")
        out = {}
        for name, spec in instances.items():
            key = f"ec2.instances.{name}"
            spec = self.mapping(spec, key)
            vcpus = self.get(spec, "vcpus", key)
            if isinstance(vcpus, bool) or not isinstance(vcpus, int) or vcpus <= 0:
                raise self.fail(f"{key}.vcpus", "a positive whole number", vcpus)
            accel = spec.get("accelerator")
            out[str(name)] = Ec2InstancePrice(
                instance_type=str(name),
                usd_per_hour=self.quantity(spec, "usd_per_hour", key),
                vcpus=vcpus,
                memory_gib=self.number(self.get(spec, "memory_gib", key), f"{key}.memory_gib", positive=True),
                accelerator=None if accel is None else self.string(accel, f"{key}.accelerator"),
            )
        return out

    def alb(self, alb: Mapping[str, Any]) -> AlbPrices:
        lcu = self.mapping(self.get(alb, "lcu", "alb"), "alb.lcu")
        return AlbPrices(
            usd_per_alb_hour=self.quantity(alb, "usd_per_alb_hour", "alb"),
            usd_per_lcu_hour=self.quantity(alb, "usd_per_lcu_hour", "alb"),
            billing_increment_s=self.quantity(alb, "billing_increment_s", "alb", positive=True),
            lcu_new_connections_per_s=self.quantity(lcu, "new_connections_per_s", "alb.lcu", positive=True),
            lcu_active_connections_per_minute=self.quantity(lcu, "active_connections_per_minute", "alb.lcu",
                                                            positive=True),
            lcu_processed_gb_per_hour=self.quantity(lcu, "processed_gb_per_hour", "alb.lcu", positive=True),
            lcu_rule_evaluations_per_s=self.quantity(lcu, "rule_evaluations_per_s", "alb.lcu", positive=True),
            lcu_free_rules_per_request=self.quantity(lcu, "free_rules_per_request", "alb.lcu"),
        )
