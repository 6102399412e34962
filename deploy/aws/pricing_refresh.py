"""Current AWS list prices, read through the Price List Query API, as a servesim price file.

`refresh_pricing(region)` reads GetProducts (boto3 ``pricing`` client, every page) and builds a
document in the schema of `sim/data/aws-us-east-1.yaml` (``servesim.pricing/1``):

* AWSLambda, filtered on regionCode: on-demand duration per architecture (usagetypes
  ``Lambda-GB-Second`` / ``Lambda-GB-Second-ARM``, tiered by the month's GB-s), the request fee
  (``Request`` / ``Request-ARM``: the price file has one fee, so the two must be equal),
  provisioned concurrency held (``Lambda-Provisioned-Concurrency[-ARM]``) and the duration rate
  of provisioned environments (``Lambda-Provisioned-GB-Second[-ARM]``). Other Lambda SKUs (edge,
  storage, SnapStart, streaming, the free tier) are ignored.
* AmazonEC2, one query per instance type: Linux, shared tenancy, no pre-installed software,
  capacitystatus Used, no license; the on-demand hourly price, vCPUs and memory (GiB). Should
  several products match, the ``BoxUsage:<type>`` one is taken (more than one is an error).
* AWSELB, productFamily ``Load Balancer-Application``: ``LoadBalancerUsage`` (USD per ALB-hour)
  and ``LCUUsage`` (USD per LCU-hour).

Assumptions:

* Usagetypes carry a region prefix in most regions (``USE2-``, ``APN1-``; ``EU-`` for eu-west-1;
  sometimes ``USE1-``). A usagetype matches only if it is exactly the wanted one once that prefix
  is removed, so ``Lambda-Edge-GB-Second``, ``Global-Lambda-GB-Second`` (free tier),
  ``TS-LoadBalancerUsage`` (trust stores) or ``Outposts-LCUUsage`` never stand in for another.
* Each product has one on-demand term; its effectiveDate is the figure's ``date``. Prices are USD.
* A tiered price's dimensions must cover 0 to Inf without gaps; the others have a single one.
* What the API does not hold (EC2's minimum billed time per launch, the provisioned-concurrency
  billing increment, ALB's billing increment and LCU dimensions) and the accelerator descriptions
  of instance types are copied from a base price file, each with its own source and date.

Missing or malformed data raises `ServesimError` naming the service, region and what is wrong.
`write_pricing` checks the document with `sim.pricing.load_pricing` and writes it atomically.
"""
from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from deploy.aws.session import aws_errors
from sim.atomic import write_text
from sim.errors import ConfigError, ServesimError
from sim.pricing import SCHEMA, load_pricing

PRICE_LIST_REGION = "us-east-1"  # the Query API lives in us-east-1, eu-central-1 and ap-south-1 only
ARCH_SUFFIX = {"x86_64": "", "arm64": "-ARM"}
EC2_FILTERS = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
               "capacitystatus": "Used", "licenseModel": "No License required"}
ALB_FAMILY = "Load Balancer-Application"
GB_S_UNITS = {"Lambda-GB-Second", "GB-Second", "GB-Seconds", "Second", "Seconds"}
_REGION_PREFIX = re.compile(r"^(?:[A-Z]{3}[0-9]|EU)-")
_DECIMAL = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")
_GIB = re.compile(r"^([0-9][0-9,]*(?:\.[0-9]+)?) GiB$")


@dataclass(frozen=True)
class _Rate:
    """One price dimension of an on-demand term: USD per `unit` for usage in [begin, end).
    `date` is the term's effective date (YYYY-MM-DD)."""

    usd: float
    unit: str
    begin: float
    end: float
    sku: str
    rate_code: str
    date: str


@dataclass(frozen=True)
class _Product:
    """One Price List product: `usagetype` without its region prefix; `terms` its raw on-demand
    terms (read only for the products used, so odd unrelated SKUs do no harm)."""

    sku: str
    usagetype: str
    attributes: Mapping[str, Any]
    terms: Any


def refresh_pricing(region: str, *, client=None, instance_types: Sequence[str] | None = None,
                    base: str | Path | None = None, today: str | None = None) -> dict:
    """The pricing document (a dict in the schema servesim.pricing/1, ready for yaml.safe_dump) for
    `region`, read through the Price List API (boto3 `pricing` client, `get_products`, paginated).

    `client`: a boto3 pricing client (default: ``boto3.client("pricing", region_name="us-east-1")``;
    the API lives in a few regions only, whatever region is priced). `instance_types`: EC2 types
    to price (default: those of the base file). `base`: the price file whose non-API figures are
    carried over (default: the packaged file). `today`: the retrieval date written into sources
    (default: today's UTC date)."""
    base_prices = load_pricing(base)
    cite = _Cite(today or datetime.now(timezone.utc).date().isoformat())
    if client is None:
        client = _default_client()
    carried = {c.key: _quantity(c.value, c.unit, c.source, c.date) for c in base_prices.citations}
    types = base_prices.ec2_instances if instance_types is None else instance_types
    accelerators = {name: p.accelerator for name, p in base_prices.ec2_instances.items() if p.accelerator}
    lambda_ = _lambda_prices(client, region, cite)
    lambda_["provisioned"] = {"billing_increment_s": carried["lambda.provisioned.billing_increment_s"],
                              **lambda_["provisioned"]}
    instances = {name: _instance(client, region, name, cite, accelerators.get(name))
                 for name in dict.fromkeys(types)}
    alb = _alb_prices(client, region, cite)
    alb["billing_increment_s"] = carried["alb.billing_increment_s"]
    alb["lcu"] = {key.removeprefix("alb.lcu."): rec for key, rec in carried.items() if key.startswith("alb.lcu.")}
    return {"schema": SCHEMA, "region": region, "currency": "USD", "lambda": lambda_,
            "ec2": {"minimum_billed_s_per_launch": carried["ec2.minimum_billed_s_per_launch"],
                    "instances": instances},
            "alb": alb}


def write_pricing(doc: dict, out: str | Path) -> Path:
    """Check `doc` with `sim.pricing.load_pricing` (from a temporary copy) and write it atomically
    to `out` as YAML, under a comment saying it comes from the AWS Price List API, when, and for
    which region. Nothing is written if the document is not a valid price file."""
    out = Path(out)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"# servesim price file for {doc.get('region')}, generated from the AWS Price List API (GetProducts)\n"
            f"# on {generated}. Each price cites its SKU and rate code; `date` is the price's effective date.\n"
            "# Figures the API does not hold keep the source and date of the base price file.\n"
            + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000))
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / out.name
        probe.write_text(text, encoding="utf-8")
        try:
            load_pricing(probe)
        except ConfigError as exc:
            raise ServesimError(f"not writing {out}: {str(exc).removeprefix(f'{probe}: ')}") from None
    return write_text(out, text)


@dataclass(frozen=True)
class _Cite:
    """Makes the {value, unit, source, date} record of a price read on `today`."""

    today: str

    def __call__(self, service: str, rate: _Rate, unit: str, note: str = "") -> dict:
        source = (f"AWS Price List API (GetProducts {service}, SKU {rate.sku}, rate code {rate.rate_code}"
                  f"{note}, retrieved {self.today})")
        return _quantity(rate.usd, unit, source, rate.date)


def _lambda_prices(client, region: str, cite: _Cite) -> dict:
    """The `lambda` section, less the provisioned-concurrency billing increment."""
    where = f"AWSLambda prices for {region}"
    products = _get_products(client, "AWSLambda", {"regionCode": region}, where)
    x86, arm = (_pick(products, f"Request{sfx}", where) for sfx in ARCH_SUFFIX.values())
    x86_fee, arm_fee = (_single(p, where, {"Requests", "Request"}) for p in (x86, arm))
    if arm_fee.usd != x86_fee.usd:
        raise ServesimError(f"{where}: the arm64 request fee ({arm_fee.usd:g} USD, SKU {arm.sku}) differs from the "
                            f"x86_64 one ({x86_fee.usd:g} USD, SKU {x86.sku}); a servesim price file has one fee")
    duration, provisioned = {}, {}
    for arch, sfx in ARCH_SUFFIX.items():
        on_demand = _pick(products, f"Lambda-GB-Second{sfx}", where)
        duration[arch] = {"tiers": [
            {"up_to_gb_s_per_month": None if math.isinf(rate.end) else _plain(rate.end),
             "usd_per_gb_s": cite("AWSLambda", rate, "USD per GB-s")}
            for rate in _tiers(on_demand, where, GB_S_UNITS)]}
        held = _pick(products, f"Lambda-Provisioned-Concurrency{sfx}", where)
        busy = _pick(products, f"Lambda-Provisioned-GB-Second{sfx}", where)
        provisioned[arch] = {
            "usd_per_gb_s_held": cite("AWSLambda", _single(held, where, GB_S_UNITS), "USD per GB-s"),
            "duration_usd_per_gb_s": cite("AWSLambda", _single(busy, where, GB_S_UNITS), "USD per GB-s"),
        }
    return {"usd_per_request": cite("AWSLambda", x86_fee, "USD per request",
                                    note=f"; arm64 SKU {arm.sku} has the same fee"),
            "duration": duration, "provisioned": provisioned}


def _instance(client, region: str, name: str, cite: _Cite, accelerator: str | None) -> dict:
    """One entry of `ec2.instances`: vCPUs, memory, the base file's accelerator, hourly price."""
    where = f"AmazonEC2 prices for {region}, {name}"
    filters = {"instanceType": name, "regionCode": region, **EC2_FILTERS}
    found = _get_products(client, "AmazonEC2", filters, where)
    if not found:
        raise ServesimError(f"AmazonEC2 prices for {region}: the AWS Price List API knows no instance type "
                            f"{name!r} (Linux, shared tenancy, on demand) in this region")
    if len(found) > 1:
        found = [p for p in found if p.usagetype.startswith("BoxUsage:")]
    if len(found) != 1:
        raise ServesimError(f"{where}: {len(found)} on-demand Linux BoxUsage products "
                            f"(SKUs {', '.join(p.sku for p in found) or 'none'}), expected one")
    product = found[0]
    spec: dict[str, Any] = {"vcpus": _vcpus(product, where), "memory_gib": _memory_gib(product, where)}
    if accelerator:
        spec["accelerator"] = accelerator
    spec["usd_per_hour"] = cite("AmazonEC2", _single(product, where, {"Hrs"}), "USD per instance-hour")
    return spec


def _alb_prices(client, region: str, cite: _Cite) -> dict:
    """The `alb` section's two prices (the rest comes from the base file)."""
    where = f"AWSELB ({ALB_FAMILY}) prices for {region}"
    products = _get_products(client, "AWSELB", {"regionCode": region, "productFamily": ALB_FAMILY}, where)
    hourly, lcu = _pick(products, "LoadBalancerUsage", where), _pick(products, "LCUUsage", where)
    return {"usd_per_alb_hour": cite("AWSELB", _single(hourly, where, {"Hrs"}),
                                     "USD per ALB-hour (or partial hour)"),
            "usd_per_lcu_hour": cite("AWSELB", _single(lcu, where, {"LCU-Hrs"}), "USD per LCU-hour")}


def _default_client():
    try:
        import boto3
    except ImportError:
        raise ServesimError("refreshing prices needs boto3 (pip install boto3)") from None
    with aws_errors("opening the AWS Price List API"):
        return boto3.client("pricing", region_name=PRICE_LIST_REGION)


def _get_products(client, service: str, filters: Mapping[str, str], where: str) -> list[_Product]:
    """Every product of `service` matching `filters` (TERM_MATCH on each), all pages, parsed."""
    params = {"ServiceCode": service, "FormatVersion": "aws_v1",
              "Filters": [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()]}
    with aws_errors(f"reading {where} from the AWS Price List API"):
        pages = client.get_paginator("get_products").paginate(**params, PaginationConfig={"PageSize": 100})
        items = [item for page in pages for item in page.get("PriceList", [])]
    return [_parse(item, where) for item in items]


def _parse(item: Any, where: str) -> _Product:
    """One PriceList entry (a JSON string) as a `_Product`."""
    try:
        raw = json.loads(item)
        product = raw["product"]
        sku, attributes = str(product["sku"]), product["attributes"]
        usagetype = str(attributes.get("usagetype", ""))
    except (TypeError, ValueError, KeyError, AttributeError):
        raise ServesimError(f"{where}: a Price List entry is not JSON with product.sku and product.attributes: "
                            f"{str(item)[:120]}") from None
    terms = raw.get("terms")
    on_demand = terms.get("OnDemand") if isinstance(terms, Mapping) else None
    return _Product(sku, _REGION_PREFIX.sub("", usagetype, count=1), attributes, on_demand)


def _rates(product: _Product, where: str) -> tuple[_Rate, ...]:
    """The price dimensions of the product's one on-demand term, sorted by beginRange."""
    what = f"{where}: SKU {product.sku} ({product.usagetype})"
    terms = list(product.terms.values()) if isinstance(product.terms, Mapping) else []
    if len(terms) != 1:
        raise ServesimError(f"{what}: {len(terms)} on-demand terms in terms.OnDemand, expected one")
    term = terms[0] if isinstance(terms[0], Mapping) else {}
    date, dims = term.get("effectiveDate"), term.get("priceDimensions")
    if not isinstance(date, str) or not _DATE.match(date) or not isinstance(dims, Mapping) or not dims:
        raise ServesimError(f"{what}: its on-demand term needs an effectiveDate (YYYY-MM-DD...) and "
                            f"priceDimensions; got effectiveDate {date!r}, priceDimensions {dims!r:.80}")
    rates = []
    for code, dim in dims.items():
        dim = dim if isinstance(dim, Mapping) else {}
        usd = (dim.get("pricePerUnit") or {}).get("USD")
        if not isinstance(usd, str) or not _DECIMAL.match(usd.strip()):
            raise ServesimError(f"{what}: rate code {code}: pricePerUnit.USD is {usd!r}, not a number")
        rates.append(_Rate(float(usd), str(dim.get("unit")), _bound(dim.get("beginRange"), code, what),
                           _bound(dim.get("endRange"), code, what), product.sku,
                           str(dim.get("rateCode") or code), date[:10]))
    return tuple(sorted(rates, key=lambda r: r.begin))


def _bound(value: Any, code: str, what: str) -> float:
    if value == "Inf":
        return math.inf
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise ServesimError(f"{what}: rate code {code}: range bound {value!r} is neither a number nor 'Inf'")
    return float(value)


def _pick(products: Iterable[_Product], usagetype: str, where: str) -> _Product:
    """The one product whose usagetype, region prefix removed, is exactly `usagetype`."""
    products = list(products)
    found = [p for p in products if p.usagetype == usagetype]
    if len(found) != 1:
        seen = ", ".join(sorted({p.usagetype for p in products})) or "none"
        problem = "no product" if not found else f"{len(found)} products (SKUs {', '.join(p.sku for p in found)})"
        raise ServesimError(f"{where}: {problem} with usagetype {usagetype} (after its region prefix), "
                            f"expected one; usagetypes returned: {seen}")
    return found[0]


def _single(product: _Product, where: str, units: set[str]) -> _Rate:
    """The product's only rate, which must run from 0 to Inf in one of `units`."""
    rates = _rates(product, where)
    if len(rates) != 1 or rates[0].begin != 0 or not math.isinf(rates[0].end):
        raise ServesimError(f"{where}: SKU {product.sku} ({product.usagetype}) has {len(rates)} price tiers "
                            f"({_ranges(rates)}), expected a single one from 0 to Inf")
    _check_unit(product, rates[0], where, units)
    return rates[0]


def _tiers(product: _Product, where: str, units: set[str]) -> tuple[_Rate, ...]:
    """The product's rates as volume tiers: from 0, each starting where the last ended, up to Inf."""
    rates = _rates(product, where)
    if (rates[0].begin != 0 or not math.isinf(rates[-1].end)
            or any(b.begin != a.end for a, b in zip(rates, rates[1:]))):
        raise ServesimError(f"{where}: SKU {product.sku} ({product.usagetype}): price tiers do not line up "
                            f"({_ranges(rates)}); expected contiguous tiers from 0 to Inf")
    for rate in rates:
        _check_unit(product, rate, where, units)
    return rates


def _ranges(rates: Iterable[_Rate]) -> str:
    return ", ".join(f"{r.begin:g}-{r.end:g}" for r in rates)


def _check_unit(product: _Product, rate: _Rate, where: str, units: set[str]) -> None:
    if rate.unit not in units:
        raise ServesimError(f"{where}: SKU {product.sku} ({product.usagetype}) is priced per {rate.unit!r}, "
                            f"expected one of {', '.join(sorted(units))}")


def _vcpus(product: _Product, where: str) -> int:
    vcpu = str(product.attributes.get("vcpu", ""))
    if not vcpu.isdigit() or int(vcpu) == 0:
        raise ServesimError(f"{where}: SKU {product.sku}: vcpu is {vcpu!r}, expected a positive whole number")
    return int(vcpu)


def _memory_gib(product: _Product, where: str) -> float:
    memory = str(product.attributes.get("memory", ""))
    match = _GIB.match(memory)
    if not match or float(match.group(1).replace(",", "")) <= 0:
        raise ServesimError(f"{where}: SKU {product.sku}: memory is {memory!r}, expected e.g. '4 GiB'")
    return _plain(float(match.group(1).replace(",", "")))


def _quantity(value: float, unit: str, source: str, date: str) -> dict:
    return {"value": _plain(value), "unit": unit, "source": source, "date": date}


def _plain(x: float) -> int | float:
    """Whole numbers as int (the YAML then reads 60, not 60.0)."""
    return int(x) if float(x).is_integer() else float(x)
