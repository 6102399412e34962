"""The packaged price file, and user price files that are wrong."""
from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import yaml
from simhelp import delete_key, set_key

from sim.errors import ConfigError
from sim.pricing import load_pricing

PACKAGED = Path(__file__).resolve().parents[1] / "sim" / "data" / "aws-us-east-1.yaml"


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(PACKAGED.read_text())


def test_packaged_prices_match_reference():
    p = load_pricing()
    assert (p.region, p.currency) == ("us-east-1", "USD")
    assert p.lambda_.usd_per_request == 0.0000002
    x86 = p.lambda_arch("x86_64")
    assert [(t.up_to_gb_s_per_month, t.usd_per_gb_s) for t in x86.tiers] == [
        (6e9, 0.0000166667), (15e9, 0.0000150000), (math.inf, 0.0000133334)]
    arm = p.lambda_arch("arm64")
    assert [(t.up_to_gb_s_per_month, t.usd_per_gb_s) for t in arm.tiers] == [
        (7.5e9, 0.0000133334), (18.75e9, 0.0000120001), (math.inf, 0.0000106667)]
    assert (x86.pc_usd_per_gb_s_held, x86.pc_duration_usd_per_gb_s) == (0.0000041667, 0.0000097222)
    assert (arm.pc_usd_per_gb_s_held, arm.pc_duration_usd_per_gb_s) == (0.0000033334, 0.0000077778)
    assert p.lambda_.pc_billing_increment_s == 300
    hourly = {k: v.usd_per_hour for k, v in p.ec2_instances.items()}
    assert hourly == {"t3.medium": 0.0416, "c6i.large": 0.085, "c6i.xlarge": 0.17, "c7g.large": 0.0725,
                      "m6i.large": 0.096, "g4dn.xlarge": 0.526, "g5.xlarge": 1.006, "inf2.xlarge": 0.7582}
    g4 = p.instance("g4dn.xlarge")
    assert (g4.vcpus, g4.memory_gib) == (4, 16) and "T4" in g4.accelerator
    assert p.instance("c6i.large").accelerator is None
    assert p.ec2_minimum_billed_s == 60
    a = p.alb
    assert (a.usd_per_alb_hour, a.usd_per_lcu_hour, a.billing_increment_s) == (0.0225, 0.008, 3600)
    assert (a.lcu_new_connections_per_s, a.lcu_active_connections_per_minute, a.lcu_processed_gb_per_hour,
            a.lcu_rule_evaluations_per_s, a.lcu_free_rules_per_request) == (25, 3000, 1, 1000, 10)


def test_every_figure_cites_source_and_date():
    rows = load_pricing().sources()
    keys = {r["key"] for r in rows}
    assert "lambda.duration.arm64.tiers[1].usd_per_gb_s" in keys
    assert "ec2.instances.inf2.xlarge.usd_per_hour" in keys
    assert len(rows) == 1 + 2 * 3 + 1 + 2 * 2 + 1 + 8 + 3 + 5
    for r in rows:
        assert set(r) == {"key", "value", "unit", "source", "date"}
        assert r["source"].strip() and r["unit"].strip()
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?|2026-11-22 compilation", r["date"]), r


def test_user_file_same_as_packaged(tmp_path, doc):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(doc))
    mine, packaged = load_pricing(path), load_pricing()
    assert mine.file == str(path)
    assert (mine.lambda_, mine.ec2_instances, mine.alb) == (packaged.lambda_, packaged.ec2_instances, packaged.alb)


def test_unknown_instance_type_lists_known():
    with pytest.raises(ConfigError) as err:
        load_pricing().instance("p5.48xlarge")
    msg = str(err.value)
    assert "p5.48xlarge" in msg and "c6i.large" in msg and "inf2.xlarge" in msg



ARM_TIERS = ["lambda", "duration", "arm64", "tiers"]


@pytest.mark.parametrize("mutate, key, expected", [
    (delete_key(["lambda", "usd_per_request"]), "lambda.usd_per_request", "key is missing"),
    (delete_key(ARM_TIERS + [1, "usd_per_gb_s", "value"]),
     "lambda.duration.arm64.tiers[1].usd_per_gb_s.value", "key is missing"),
    (delete_key(["ec2", "instances", "g5.xlarge", "usd_per_hour", "source"]),
     "ec2.instances.g5.xlarge.usd_per_hour.source", "key is missing"),
    (set_key(["ec2", "instances", "c6i.large", "usd_per_hour", "value"], -0.085),
     "ec2.instances.c6i.large.usd_per_hour.value", "a number >= 0"),
    (set_key(["alb", "usd_per_lcu_hour", "value"], "cheap"), "alb.usd_per_lcu_hour.value", "a number"),
    (set_key(["alb", "usd_per_lcu_hour", "value"], True), "alb.usd_per_lcu_hour.value", "a number"),
    (set_key(ARM_TIERS + [1, "usd_per_gb_s", "value"], [1, 2]),
     "lambda.duration.arm64.tiers[1].usd_per_gb_s.value", "a number"),
    (set_key(ARM_TIERS + [1, "up_to_gb_s_per_month"], 7_000_000_000),
     "lambda.duration.arm64.tiers[1].up_to_gb_s_per_month", "greater than the previous tier"),
    (set_key(ARM_TIERS + [2, "up_to_gb_s_per_month"], 30_000_000_000),
     "lambda.duration.arm64.tiers[2].up_to_gb_s_per_month", "null on the last tier"),
    (set_key(ARM_TIERS, []), "lambda.duration.arm64.tiers", "a non-empty list"),
    (delete_key(["lambda", "provisioned", "arm64"]), "lambda.provisioned.arm64", "key is missing"),
    (set_key(["ec2", "instances", "t3.medium", "vcpus"], 0), "ec2.instances.t3.medium.vcpus", "positive whole"),
    (set_key(["alb", "lcu", "new_connections_per_s", "value"], 0),
     "alb.lcu.new_connections_per_s.value", "a positive number"),
    (set_key(["schema"], "servesim.pricing/2"), "schema", "'servesim.pricing/1'"),
    (delete_key(["alb"]), "alb", "key is missing"),
])
def test_bad_price_file(tmp_path, doc, mutate, key, expected):
    bad = copy.deepcopy(doc)
    mutate(bad)
    path = tmp_path / "bad-prices.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as err:
        load_pricing(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {key}: expected"), msg
    assert expected in msg, msg


def test_not_yaml_or_missing_or_not_a_mapping(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_pricing(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema: [unclosed\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        load_pricing(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="a mapping"):
        load_pricing(listed)


def test_yaml_1_1_exponent_string_is_read_as_number(tmp_path, doc):
    # PyYAML reads 1.5e-5 (no sign-dot form) as a string; a price file may still use it
    path = tmp_path / "exp.yaml"
    text = yaml.safe_dump(doc).replace("1.66667e-05", "1.5e-5")
    assert "1.5e-5" in text
    path.write_text(text)
    assert load_pricing(path).lambda_arch("x86_64").tiers[0].usd_per_gb_s == 1.5e-5
