"""refresh_pricing / write_pricing against a stubbed AWS Price List API (botocore's Stubber).

The stubbed PriceList entries follow the documented GetProducts (aws_v1) format: one JSON string
per product, with `product` (sku, productFamily, attributes) and
`terms.OnDemand.<sku>.<offerTermCode>` (effectiveDate, priceDimensions.<rateCode> with unit,
beginRange, endRange, pricePerUnit.USD as a string, description). The us-east-1 Lambda SKUs are
the ones cited by sim/data/aws-us-east-1.yaml, as are some us-east-2 ones; EC2 and ALB SKUs and
some rate codes are made up in the same format. Stubber also checks every request's
ServiceCode, Filters, FormatVersion, MaxResults and NextToken.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from sim.errors import ServesimError
from sim.pricing import load_pricing

stub_module = pytest.importorskip("botocore.stub")
boto3 = pytest.importorskip("boto3")

from deploy.aws.pricing_refresh import refresh_pricing, write_pricing  # noqa: E402

PACKAGED = Path(__file__).resolve().parents[1] / "sim" / "data" / "aws-us-east-1.yaml"
TODAY = "2026-11-22"
TERM = "JRTCKXETXF"  # the on-demand offer term code
LAMBDA_DATE, EC2_DATE, ALB_DATE = "2025-10-01", "2026-11-01", "2026-05-01"
LOCATION = {"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "eu-west-1": "EU (Ireland)"}


def flat(usd: str, description: str) -> list[tuple]:
    return [("6YS6EN2CT7", "0", "Inf", usd, description)]


# usagetype (without region prefix) -> (unit, [(rate code, beginRange, endRange, USD, description)])
LAMBDA_RATES = {
    "Lambda-GB-Second": ("Lambda-GB-Second", [
        ("CUKFZ388N3", "0", "6000000000", "0.0000166667",
         "$0.0000166667 per GB-second for the first 6 Billion GB-seconds"),
        ("QZE2SB4KVB", "6000000000", "15000000000", "0.0000150000",
         "$0.0000150000 per GB-second for the next 9 Billion GB-seconds"),
        ("V7R92EXG27", "15000000000", "Inf", "0.0000133334",
         "$0.0000133334 per GB-second for usage over 15 Billion GB-seconds")]),
    "Lambda-GB-Second-ARM": ("Lambda-GB-Second", [
        ("6NBUNBXSC3", "0", "7500000000", "0.0000133334",
         "$0.0000133334 per GB-second for the first 7.5 Billion GB-seconds (ARM)"),
        ("K8T3RUCD5N", "7500000000", "18750000000", "0.0000120001",
         "$0.0000120001 per GB-second for the next 11.25 Billion GB-seconds (ARM)"),
        ("W2PZ6VQH7M", "18750000000", "Inf", "0.0000106667",
         "$0.0000106667 per GB-second for usage over 18.75 Billion GB-seconds (ARM)")]),
    "Request": ("Requests", flat("0.0000002000", "$0.20 per 1M requests")),
    "Request-ARM": ("Requests", flat("0.0000002000", "$0.20 per 1M requests (ARM)")),
    "Lambda-Provisioned-Concurrency": ("Lambda-GB-Second", flat(
        "0.0000041667", "$0.0000041667 per GB-second of Provisioned Concurrency")),
    "Lambda-Provisioned-Concurrency-ARM": ("Lambda-GB-Second", flat(
        "0.0000033334", "$0.0000033334 per GB-second of Provisioned Concurrency (ARM)")),
    "Lambda-Provisioned-GB-Second": ("Lambda-GB-Second", flat(
        "0.0000097222", "$0.0000097222 per GB-second of Provisioned Concurrency duration")),
    "Lambda-Provisioned-GB-Second-ARM": ("Lambda-GB-Second", flat(
        "0.0000077778", "$0.0000077778 per GB-second of Provisioned Concurrency duration (ARM)")),
    # Not servesim's: must be told apart from the above.
    "Lambda-Storage-GB-Second": ("GB-Seconds", flat(
        "0.0000000309", "$0.0000000309 per GB-second of ephemeral storage")),
    "Lambda-Edge-GB-Second": ("Lambda-GB-Second", flat(
        "0.0000500100", "$0.00005001 per GB-second of Lambda@Edge duration")),
    "Lambda-Edge-Request": ("Request", flat("0.0000006000", "$0.60 per 1M Lambda@Edge requests")),
}
LAMBDA_SKUS = {
    "us-east-1": {"Lambda-GB-Second": "TG3M4CAGBA3NYQBH", "Lambda-GB-Second-ARM": "72SBSFWPMDTH8S3J",
                  "Request": "GU2ZS9HVP6QTQ7KE", "Request-ARM": "K7BX6567RJ67A2KE",
                  "Lambda-Provisioned-Concurrency": "BMKCD2ZCEYKTYYCB",
                  "Lambda-Provisioned-Concurrency-ARM": "MV7PTBS82AVCMXJJ",
                  "Lambda-Provisioned-GB-Second": "ZZF88MXYPS4DGSEZ",
                  "Lambda-Provisioned-GB-Second-ARM": "3Z4YRQ6XJRDK27UP",
                  "Lambda-Storage-GB-Second": "CVY5JH8RFRXMP92N", "Lambda-Edge-GB-Second": "UMUS4AT5S27NHYZQ",
                  "Lambda-Edge-Request": "NQA9ZMGJKNJQT78E"},
    "us-east-2": {"Lambda-GB-Second": "3BYZH4NKJN8TJUQ6", "Request": "ZEA64MMVK5QRB5TC",
                  "Lambda-Provisioned-Concurrency": "ZA4ZDREWFS9UEMSC",
                  "Lambda-Provisioned-GB-Second": "8RKHZ54QB9XA3Y9F"},
}
# The packaged file's instance types: vcpu, memory (GiB), USD per hour.
INSTANCES = {"t3.medium": (2, "4", "0.0416000000"), "c6i.large": (2, "4", "0.0850000000"),
             "c6i.xlarge": (4, "8", "0.1700000000"), "c7g.large": (2, "4", "0.0725000000"),
             "m6i.large": (2, "8", "0.0960000000"), "g4dn.xlarge": (4, "16", "0.5260000000"),
             "g5.xlarge": (4, "16", "1.0060000000"), "inf2.xlarge": (4, "16", "0.7582000000")}
ALB_RATES = {  # usagetype -> (unit, USD, description)
    "LoadBalancerUsage": ("Hrs", "0.0225000000", "$0.0225 per Application LoadBalancer-hour (or partial hour)"),
    "LCUUsage": ("LCU-Hrs", "0.0080000000",
                 "$0.008 per used Application load balancer capacity unit-hour (or partial hour)"),
    # Same family, other products: trust stores and Outposts.
    "TS-LoadBalancerUsage": ("Hrs", "0.0050000000",
                             "$0.005 per associated Application load balancer Trust Store unit-hour"),
    "Outposts-LCUUsage": ("LCU-Hrs", "0.0000000000", "$0.00 per LCU-hour on Outposts"),
}


def made_up_sku(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16].upper()


def entry(service: str, family: str, sku: str, date: str, unit: str, rates: list[tuple], **attributes) -> str:
    """One PriceList entry as GetProducts returns it: a JSON string."""
    term = f"{sku}.{TERM}"
    dims = {f"{term}.{code}": {"unit": unit, "endRange": end, "description": description, "appliesTo": [],
                               "rateCode": f"{term}.{code}", "beginRange": begin, "pricePerUnit": {"USD": usd}}
            for code, begin, end, usd, description in rates}
    return json.dumps({
        "product": {"productFamily": family, "attributes": {"servicecode": service, **attributes}, "sku": sku},
        "serviceCode": service,
        "terms": {"OnDemand": {term: {"priceDimensions": dims, "sku": sku, "effectiveDate": f"{date}T00:00:00Z",
                                      "offerTermCode": TERM, "termAttributes": {}}}},
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z"})


def lambda_entries(region: str, prefix: str, rates=LAMBDA_RATES) -> list[str]:
    skus = LAMBDA_SKUS.get(region, {})
    return [entry("AWSLambda", "Serverless", skus.get(usage) or made_up_sku(region, usage), LAMBDA_DATE, unit,
                  tiers, usagetype=prefix + usage, regionCode=region, location=LOCATION[region],
                  locationType="AWS Region", group="AWS-Lambda", servicename="AWS Lambda")
            for usage, (unit, tiers) in rates.items()]


def ec2_entry(region: str, prefix: str, name: str, vcpu: int, memory: str, usd: str,
              usagetype: str = "BoxUsage") -> str:
    return entry("AmazonEC2", "Compute Instance", made_up_sku(region, name, usagetype), EC2_DATE, "Hrs",
                 [("6YS6EN2CT7", "0", "Inf", usd, f"${usd} per On Demand Linux {name} Instance Hour")],
                 usagetype=f"{prefix}{usagetype}:{name}", instanceType=name, vcpu=str(vcpu),
                 memory=f"{memory} GiB", operatingSystem="Linux", tenancy="Shared", preInstalledSw="NA",
                 capacitystatus="Used" if usagetype == "BoxUsage" else "UnusedCapacityReservation",
                 licenseModel="No License required", operation="RunInstances", marketoption="OnDemand",
                 regionCode=region, location=LOCATION[region], servicename="Amazon Elastic Compute Cloud")


def alb_entries(region: str, prefix: str, rates=ALB_RATES) -> list[str]:
    return [entry("AWSELB", "Load Balancer-Application", made_up_sku(region, usage), ALB_DATE, unit,
                  flat(usd, description), usagetype=prefix + usage, operation="LoadBalancing:Application",
                  regionCode=region, location=LOCATION[region], servicename="Elastic Load Balancing")
            for usage, (unit, usd, description) in rates.items()]


def expect(stub, service: str, filters: list[tuple[str, str]], entries: list[str], *, pages: int = 1) -> None:
    """Queue the response(s) to one GetProducts query, split into `pages` pages."""
    params = {"ServiceCode": service, "FormatVersion": "aws_v1", "MaxResults": 100,
              "Filters": [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in filters]}
    size = -(-len(entries) // pages) if entries else 0
    for page in range(pages):
        response = {"FormatVersion": "aws_v1", "PriceList": entries[page * size:(page + 1) * size]}
        if page < pages - 1:
            response["NextToken"] = f"token-{page + 1}"
        stub.add_response("get_products", response,
                          {**params, "NextToken": f"token-{page}"} if page else params)


def ec2_filters(region: str, name: str) -> list[tuple[str, str]]:
    return [("instanceType", name), ("regionCode", region), ("operatingSystem", "Linux"), ("tenancy", "Shared"),
            ("preInstalledSw", "NA"), ("capacitystatus", "Used"), ("licenseModel", "No License required")]


def expect_region(stub, region: str, prefix: str, *, instances=INSTANCES, lambda_rates=LAMBDA_RATES,
                  lambda_pages: int = 1) -> None:
    """Queue what refresh_pricing asks, in its order: Lambda, each instance type, the ALB."""
    expect(stub, "AWSLambda", [("regionCode", region)], lambda_entries(region, prefix, lambda_rates),
           pages=lambda_pages)
    for name, (vcpu, memory, usd) in instances.items():
        expect(stub, "AmazonEC2", ec2_filters(region, name), [ec2_entry(region, prefix, name, vcpu, memory, usd)])
    expect(stub, "AWSELB", [("regionCode", region), ("productFamily", "Load Balancer-Application")],
           alb_entries(region, prefix))


@pytest.fixture
def client():
    return boto3.client("pricing", region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def refresh(client, queue, region="us-east-1", **kwargs) -> dict:
    """refresh_pricing with the responses `queue(stub)` adds; all of them must be used."""
    with stub_module.Stubber(client) as stub:
        queue(stub)
        doc = refresh_pricing(region, client=client, today=TODAY, **kwargs)
        stub.assert_no_pending_responses()
    return doc


def key_paths(node, path="") -> set[str]:
    if isinstance(node, dict):
        return {p for k, v in node.items() for p in {f"{path}.{k}"} | key_paths(v, f"{path}.{k}")}
    if isinstance(node, list):
        return {p for i, v in enumerate(node) for p in key_paths(v, f"{path}[{i}]")}
    return set()


# --- us-east-1: the packaged file's figures -------------------------------------------------

def test_us_east_1_gives_the_packaged_prices_with_price_list_citations(client, tmp_path):
    doc = refresh(client, lambda stub: expect_region(stub, "us-east-1", ""))
    fresh = load_pricing(write_pricing(doc, tmp_path / "prices.yaml"))
    packaged = load_pricing()

    assert (fresh.region, fresh.currency) == ("us-east-1", "USD")
    assert fresh.lambda_ == packaged.lambda_            # tiers, PC, request fee, PC increment
    assert fresh.ec2_instances == packaged.ec2_instances  # prices, vCPUs, memory, accelerators
    assert fresh.ec2_minimum_billed_s == packaged.ec2_minimum_billed_s == 60
    assert fresh.alb == packaged.alb
    assert key_paths(doc) == key_paths(yaml.safe_load(PACKAGED.read_text()))
    assert {c.key: c.unit for c in fresh.citations} == {c.key: c.unit for c in packaged.citations}

    rows = {r["key"]: r for r in fresh.sources()}
    assert rows["lambda.duration.x86_64.tiers[1].usd_per_gb_s"] == {
        "key": "lambda.duration.x86_64.tiers[1].usd_per_gb_s", "value": 0.000015, "unit": "USD per GB-s",
        "source": "AWS Price List API (GetProducts AWSLambda, SKU TG3M4CAGBA3NYQBH, "
                  "rate code TG3M4CAGBA3NYQBH.JRTCKXETXF.QZE2SB4KVB, retrieved 2026-11-22)",
        "date": LAMBDA_DATE}
    assert "GU2ZS9HVP6QTQ7KE" in rows["lambda.usd_per_request"]["source"]
    assert "K7BX6567RJ67A2KE" in rows["lambda.usd_per_request"]["source"]
    assert "MV7PTBS82AVCMXJJ" in rows["lambda.provisioned.arm64.usd_per_gb_s_held"]["source"]
    assert rows["ec2.instances.c6i.large.usd_per_hour"]["date"] == EC2_DATE
    assert rows["alb.usd_per_lcu_hour"]["date"] == ALB_DATE
    from_api = [k for k, r in rows.items() if r["source"].startswith("AWS Price List API (GetProducts")]
    assert len(from_api) == 1 + 2 * 3 + 2 * 2 + len(INSTANCES) + 2
    # What the API does not hold keeps the base file's source and date.
    base_rows = {r["key"]: r for r in packaged.sources()}
    for key in ("ec2.minimum_billed_s_per_launch", "lambda.provisioned.billing_increment_s",
                "alb.billing_increment_s", "alb.lcu.new_connections_per_s", "alb.lcu.free_rules_per_request"):
        assert rows[key] == base_rows[key]


def test_other_usagetypes_ending_alike_are_not_taken(client):
    # Storage, Lambda@Edge, ALB trust stores and Outposts are priced too; reversing the order in
    # which products arrive must not change what is picked.
    reversed_rates = dict(reversed(list(LAMBDA_RATES.items())))
    doc = refresh(client, lambda stub: expect_region(stub, "us-east-1", "", lambda_rates=reversed_rates,
                                                     instances={"c6i.large": INSTANCES["c6i.large"]}),
                  instance_types=["c6i.large"])
    assert doc["lambda"]["usd_per_request"]["value"] == 0.0000002
    assert doc["lambda"]["duration"]["x86_64"]["tiers"][0]["usd_per_gb_s"]["value"] == 0.0000166667
    assert (doc["alb"]["usd_per_alb_hour"]["value"], doc["alb"]["usd_per_lcu_hour"]["value"]) == (0.0225, 0.008)


# --- other regions: prefixed usagetypes -----------------------------------------------------

@pytest.mark.parametrize("region, prefix", [("us-east-2", "USE2-"), ("eu-west-1", "EU-")])
def test_other_region_reads_prefixed_usagetypes(client, tmp_path, region, prefix):
    instances = {"c6i.large": (2, "4", "0.0900000000"), "g4dn.xlarge": (4, "16", "0.5870000000")}
    doc = refresh(client, lambda stub: expect_region(stub, region, prefix, instances=instances),
                  region=region, instance_types=list(instances))
    p = load_pricing(write_pricing(doc, tmp_path / f"aws-{region}.yaml"))
    assert p.region == region
    assert [t.usd_per_gb_s for t in p.lambda_arch("arm64").tiers] == [0.0000133334, 0.0000120001, 0.0000106667]
    assert p.lambda_arch("x86_64").pc_usd_per_gb_s_held == 0.0000041667
    assert {k: v.usd_per_hour for k, v in p.ec2_instances.items()} == {"c6i.large": 0.09, "g4dn.xlarge": 0.587}
    assert "T4" in p.instance("g4dn.xlarge").accelerator and p.instance("c6i.large").accelerator is None
    assert (p.alb.usd_per_alb_hour, p.alb.usd_per_lcu_hour) == (0.0225, 0.008)
    if region == "us-east-2":
        source = {r["key"]: r["source"] for r in p.sources()}["lambda.provisioned.x86_64.usd_per_gb_s_held"]
        assert "SKU ZA4ZDREWFS9UEMSC, rate code ZA4ZDREWFS9UEMSC.JRTCKXETXF.6YS6EN2CT7" in source


def test_pages_are_followed(client):
    doc = refresh(client, lambda stub: expect_region(stub, "us-east-1", "", lambda_pages=3,
                                                     instances={"t3.medium": INSTANCES["t3.medium"]}),
                  instance_types=["t3.medium"])
    assert len(doc["lambda"]["duration"]["arm64"]["tiers"]) == 3
    assert doc["lambda"]["provisioned"]["arm64"]["duration_usd_per_gb_s"]["value"] == 0.0000077778


def test_boxusage_product_is_preferred_and_two_are_an_error(client):
    def queue(*usagetypes):
        def add(stub):
            expect(stub, "AWSLambda", [("regionCode", "us-east-1")], lambda_entries("us-east-1", ""))
            expect(stub, "AmazonEC2", ec2_filters("us-east-1", "c6i.large"),
                   [ec2_entry("us-east-1", "", "c6i.large", 2, "4", usd, usagetype)
                    for usagetype, usd in usagetypes])
            expect(stub, "AWSELB", [("regionCode", "us-east-1"), ("productFamily", "Load Balancer-Application")],
                   alb_entries("us-east-1", ""))
        return add

    doc = refresh(client, queue(("UnusedBox", "0.0000000000"), ("BoxUsage", "0.0850000000")),
                  instance_types=["c6i.large"])
    assert doc["ec2"]["instances"]["c6i.large"]["usd_per_hour"]["value"] == 0.085
    with pytest.raises(ServesimError, match=r"us-east-1, c6i\.large: 2 on-demand Linux BoxUsage products"):
        refresh(client, queue(("BoxUsage", "0.0850000000"), ("BoxUsage", "0.0900000000")),
                instance_types=["c6i.large"])


# --- missing or malformed data --------------------------------------------------------------

def only(name: str) -> dict:
    return {name: INSTANCES[name]}


def test_missing_sku_names_usagetype_region_and_service(client):
    rates = {k: v for k, v in LAMBDA_RATES.items() if k != "Lambda-Provisioned-Concurrency-ARM"}
    with pytest.raises(ServesimError) as err:
        refresh(client, lambda stub: expect_region(stub, "us-east-1", "", lambda_rates=rates))
    assert str(err.value).startswith("AWSLambda prices for us-east-1: no product with usagetype "
                                     "Lambda-Provisioned-Concurrency-ARM")


def test_non_numeric_price(client):
    with pytest.raises(ServesimError, match=r"AmazonEC2 prices for us-east-1, c6i\.large: SKU \w+ "
                                            r"\(BoxUsage:c6i\.large\): rate code \S+: pricePerUnit\.USD is 'N/A', "
                                            r"not a number"):
        refresh(client, lambda stub: expect_region(stub, "us-east-1", "", instances={"c6i.large": (2, "4", "N/A")}),
                instance_types=["c6i.large"])


def test_unknown_instance_type_is_named(client):
    def queue(stub):
        expect(stub, "AWSLambda", [("regionCode", "us-east-1")], lambda_entries("us-east-1", ""))
        expect(stub, "AmazonEC2", ec2_filters("us-east-1", "c6i.large"),
               [ec2_entry("us-east-1", "", "c6i.large", 2, "4", "0.085")])
        expect(stub, "AmazonEC2", ec2_filters("us-east-1", "c6i.hyper"), [])

    with pytest.raises(ServesimError, match=r"knows no instance type 'c6i\.hyper'"):
        refresh(client, queue, instance_types=["c6i.large", "c6i.hyper"])


def test_tiers_that_do_not_line_up(client):
    rates = copy.deepcopy(LAMBDA_RATES)
    unit, tiers = rates["Lambda-GB-Second"]
    tiers[1] = ("QZE2SB4KVB", "7000000000", "15000000000", "0.0000150000", "gap between 6 and 7 Billion GB-s")
    with pytest.raises(ServesimError, match=r"SKU TG3M4CAGBA3NYQBH \(Lambda-GB-Second\): price tiers do not line "
                                            r"up \(0-6e\+09, 7e\+09-1.5e\+10, 1.5e\+10-inf\)"):
        refresh(client, lambda stub: expect_region(stub, "us-east-1", "", lambda_rates=rates))


def test_arm_request_fee_must_equal_x86(client):
    rates = dict(LAMBDA_RATES, **{"Request-ARM": ("Requests", flat("0.0000002500", "$0.25 per 1M requests"))})
    with pytest.raises(ServesimError, match=r"arm64 request fee \(2\.5e-07 USD, SKU K7BX6567RJ67A2KE\) differs"):
        refresh(client, lambda stub: expect_region(stub, "us-east-1", "", lambda_rates=rates))


def test_unexpected_unit_is_refused(client):
    rates = dict(LAMBDA_RATES, **{"Lambda-Provisioned-GB-Second": ("Lambda-GB-Hour", flat("0.035", "per GB-hour"))})
    with pytest.raises(ServesimError, match=r"is priced per 'Lambda-GB-Hour'"):
        refresh(client, lambda stub: expect_region(stub, "us-east-1", "", lambda_rates=rates))


def test_entry_without_an_on_demand_term(client):
    broken = json.loads(lambda_entries("us-east-1", "")[0])
    broken["terms"] = {"OnDemand": {}}

    def queue(stub):
        expect(stub, "AWSLambda", [("regionCode", "us-east-1")],
               [json.dumps(broken)] + lambda_entries("us-east-1", "")[1:])

    with pytest.raises(ServesimError, match=r"SKU TG3M4CAGBA3NYQBH \(Lambda-GB-Second\): 0 on-demand terms"):
        refresh(client, queue)


def test_api_errors_become_servesim_errors(client):
    with stub_module.Stubber(client) as stub:
        stub.add_client_error("get_products", service_error_code="AccessDeniedException",
                              service_message="User is not authorized to perform: pricing:GetProducts")
        with pytest.raises(ServesimError, match=r"AWSLambda prices for us-east-1.*AccessDeniedException"):
            refresh_pricing("us-east-1", client=client, today=TODAY)


# --- write_pricing --------------------------------------------------------------------------

def test_write_pricing_round_trip(client, tmp_path):
    doc = refresh(client, lambda stub: expect_region(stub, "us-east-1", "", instances=only("g5.xlarge")),
                  instance_types=["g5.xlarge"])
    out = write_pricing(doc, tmp_path / "prices" / "aws-us-east-1.yaml")
    assert out == tmp_path / "prices" / "aws-us-east-1.yaml"
    assert [f.name for f in out.parent.iterdir()] == [out.name]  # no temporary file left beside it
    text = out.read_text()
    header = text.splitlines()[0]
    assert re.match(r"# servesim price file for us-east-1, generated from the AWS Price List API", header)
    assert re.search(r"# on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", text)
    assert yaml.safe_load(text) == doc
    assert load_pricing(out).instance("g5.xlarge").usd_per_hour == 1.006


def test_write_pricing_refuses_an_invalid_document(client, tmp_path):
    doc = refresh(client, lambda stub: expect_region(stub, "us-east-1", "", instances=only("c7g.large")),
                  instance_types=["c7g.large"])
    out = tmp_path / "prices.yaml"
    out.write_text("old contents\n")
    del doc["alb"]["usd_per_lcu_hour"]["value"]
    with pytest.raises(ServesimError, match=r"not writing .*prices\.yaml: alb\.usd_per_lcu_hour\.value: expected"):
        write_pricing(doc, out)
    assert out.read_text() == "old contents\n"
    assert [f.name for f in tmp_path.iterdir()] == ["prices.yaml"]


# --- the command, over HTTP --------------------------------------------------------------------

class _PriceListHandler(BaseHTTPRequestHandler):
    """A Price List Query API endpoint (JSON 1.1 protocol, GetProducts) answering from the same
    documented-format entries as the stubbed tests, selected by ServiceCode and instanceType."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.headers["X-Amz-Target"] == "AWSPriceListService.GetProducts"
        self.server.requests.append(body)
        filters = {f["Field"]: f["Value"] for f in body.get("Filters", [])}
        region = filters["regionCode"]
        if body["ServiceCode"] == "AWSLambda":
            entries = lambda_entries(region, "")
        elif body["ServiceCode"] == "AmazonEC2":
            name = filters["instanceType"]
            entries = [ec2_entry(region, "", name, *INSTANCES[name])] if name in INSTANCES else []
        else:
            entries = alb_entries(region, "")
        data = json.dumps({"FormatVersion": "aws_v1", "PriceList": entries}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def price_list_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PriceListHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_cli_pricing_refresh_writes_a_file_the_simulator_reads(price_list_endpoint, tmp_path):
    from click.testing import CliRunner

    import cli

    out = tmp_path / "prices.yaml"
    url = f"http://127.0.0.1:{price_list_endpoint.server_address[1]}"
    result = CliRunner().invoke(cli.main, ["pricing", "refresh", "--region", "us-east-1", "--out", str(out),
                                           "--instance-types", "c6i.large,c7g.large", "--endpoint-url", url])
    assert result.exit_code == 0, result.output
    prices = load_pricing(out)
    assert sorted(prices.ec2_instances) == ["c6i.large", "c7g.large"]
    assert prices.instance("c6i.large").usd_per_hour == 0.085
    assert prices.lambda_arch("x86_64").tiers[0].usd_per_gb_s == load_pricing().lambda_arch("x86_64").tiers[0].usd_per_gb_s
    assert [r["ServiceCode"] for r in price_list_endpoint.requests] == ["AWSLambda", "AmazonEC2", "AmazonEC2", "AWSELB"]
    unknown = CliRunner().invoke(cli.main, ["pricing", "refresh", "--region", "us-east-1", "--out",
                                            str(tmp_path / "x.yaml"), "--instance-types", "c9z.huge", "--endpoint-url",
                                            url])
    assert unknown.exit_code == 2 and "c9z.huge" in unknown.output and not (tmp_path / "x.yaml").exists()
