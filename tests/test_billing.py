"""Exact hand-computed bills.

Every expected figure is written out as arithmetic on the prices of the packaged price file
(aws-us-east-1.yaml, from aws-facts.md):
  Lambda request 0.0000002 USD; x86_64 duration tiers 0.0000166667 / 0.0000150000 / 0.0000133334
  USD per GB-s with thresholds 6e9 / 15e9 GB-s per month; arm64 0.0000133334 / 0.0000120001 /
  0.0000106667 with 7.5e9 / 18.75e9; PC held 0.0000041667 (x86) / 0.0000033334 (arm64), PC
  duration 0.0000097222 (x86) / 0.0000077778 (arm64) USD per GB-s; c6i.large 0.085 and t3.medium
  0.0416 USD per hour; ALB 0.0225 USD per hour, 0.008 USD per LCU-hour.
"""
from __future__ import annotations

import numpy as np
import pytest

from sim.billing import (MONTH_S, Cost, alb_lcus_per_hour, ec2_cost, ec2_instance_seconds,
                         lambda_billed_ms, lambda_cost)
from sim.errors import ConfigError
from sim.pricing import load_pricing

EXACT = dict(rel=1e-12)


@pytest.fixture(scope="module")
def pricing():
    return load_pricing()


# --- Lambda: 1 ms rounding -------------------------------------------------------------------

def test_billed_ms_rounds_up_to_whole_ms():
    assert lambda_billed_ms(120.3) == 121
    assert lambda_billed_ms(120.0) == 120          # an exact integer is not rounded up
    assert lambda_billed_ms(0.2) == 1
    assert lambda_billed_ms(0.0) == 0
    assert isinstance(lambda_billed_ms(120.3), int)


def test_billed_ms_sums_init_and_duration_before_rounding():
    # 250.6 + 120.3 = 370.9 -> 371 (rounding each first would give 251 + 121 = 372)
    assert lambda_billed_ms(120.3, init_ms=250.6) == 371
    assert lambda_billed_ms(120.5, init_ms=250.5) == 371    # 371.0 exactly: not 372


def test_billed_ms_ignores_float_noise():
    assert 1.1 * 100 == 110.00000000000001                 # a duration computed in floating point
    assert lambda_billed_ms(1.1 * 100) == 110


def test_billed_ms_vectorised_int64():
    out = lambda_billed_ms(np.array([120.3, 120.0, 0.2, 99.0]), init_ms=np.array([0.0, 0.0, 0.0, 0.5]))
    assert out.dtype == np.int64
    assert out.tolist() == [121, 120, 1, 100]


def test_billed_ms_rejects_negative():
    with pytest.raises(ValueError):
        lambda_billed_ms(np.array([1.0, -1.0]))


# --- Lambda: duration and requests -----------------------------------------------------------

def test_lambda_x86_duration_and_request_fee(pricing):
    # 1000 invocations of 120.3 ms at 1536 MB x86_64, over one hour (tier 1 threshold pro-rated
    # to 6e9 * 3600 / 2,628,000 = 8,219,178 GB-s: far above use).
    # ceil -> 121 ms; 121 * 1000 ms = 121 s; 121 s * 1.5 GB = 181.5 GB-s
    # compute  = 181.5 * 0.0000166667 = 0.00302500605
    # requests = 1000 * 0.0000002     = 0.0002
    billed = int(lambda_billed_ms(np.full(1000, 120.3)).sum())
    assert billed == 121_000
    cost = lambda_cost(pricing=pricing, architecture="x86_64", memory_mb=1536, invocations=1000,
                       billed_ms_on_demand=billed, window_s=3600)
    assert cost.compute == pytest.approx(0.00302500605, **EXACT)
    assert cost.requests == pytest.approx(0.0002, **EXACT)
    assert cost.provisioned == 0.0
    assert cost.total == pytest.approx(0.00322500605, **EXACT)


def test_lambda_arm64_rate(pricing):
    # 2000 invocations of 250 ms at 2048 MB arm64: 500,000 ms = 500 s * 2 GB = 1000 GB-s
    # compute = 1000 * 0.0000133334 = 0.0133334; requests = 2000 * 0.0000002 = 0.0004
    cost = lambda_cost(pricing=pricing, architecture="arm64", memory_mb=2048, invocations=2000,
                       billed_ms_on_demand=500_000, window_s=3600)
    assert cost.compute == pytest.approx(0.0133334, **EXACT)
    assert cost.requests == pytest.approx(0.0004, **EXACT)


def test_lambda_x86_tier_crossing_with_prorated_thresholds(pricing):
    # Window 73 h = 262,800 s = MONTH_S / 10: thresholds 6e9 -> 6e8 and 15e9 -> 1.5e9 GB-s.
    # 10,240 MB = 10 GB; 2e11 billed ms = 2e8 s * 10 GB = 2e9 GB-s:
    #   tier 1: 6e8 GB-s             * 0.0000166667 = 10000.02
    #   tier 2: (1.5e9 - 6e8) = 9e8  * 0.0000150000 = 13500.0
    #   tier 3: (2e9 - 1.5e9) = 5e8  * 0.0000133334 =  6666.7
    #   compute = 30166.72; requests = 1,000,000 * 0.0000002 = 0.2
    assert 73 * 3600 == MONTH_S / 10
    cost = lambda_cost(pricing=pricing, architecture="x86_64", memory_mb=10240, invocations=1_000_000,
                       billed_ms_on_demand=200_000_000_000, window_s=73 * 3600)
    assert cost.compute == pytest.approx(30166.72, **EXACT)
    assert cost.requests == pytest.approx(0.2, **EXACT)


def test_lambda_arm64_tier_crossing(pricing):
    # Window MONTH_S / 10: arm64 thresholds 7.5e8 and 1.875e9 GB-s.
    # 1e11 ms at 10 GB = 1e9 GB-s: 7.5e8 * 0.0000133334 = 10000.05; 2.5e8 * 0.0000120001 = 3000.025
    cost = lambda_cost(pricing=pricing, architecture="arm64", memory_mb=10240, invocations=0,
                       billed_ms_on_demand=100_000_000_000, window_s=73 * 3600)
    assert cost.compute == pytest.approx(13000.075, **EXACT)


def test_lambda_exactly_at_tier_threshold_stays_in_tier_1(pricing):
    # 6e8 GB-s in MONTH_S / 10: 6e8 * 0.0000166667 = 10000.02, nothing at tier 2
    cost = lambda_cost(pricing=pricing, architecture="x86_64", memory_mb=10240, invocations=0,
                       billed_ms_on_demand=60_000_000_000, window_s=73 * 3600)
    assert cost.compute == pytest.approx(10000.02, **EXACT)


# --- Lambda: provisioned concurrency ---------------------------------------------------------

def test_lambda_provisioned_concurrency_x86(pricing):
    # PC 3 at 2048 MB (2 GB) over 3601 s -> rounded up to 13 * 300 = 3900 s:
    #   provisioned = 3 * 2 * 3900 * 0.0000041667 = 23400 * 0.0000041667 = 0.09750078
    # on PC: 500,000 ms = 500 s * 2 GB = 1000 GB-s * 0.0000097222 = 0.0097222
    # on demand (spill-over): 100,000 ms = 100 s * 2 GB = 200 GB-s * 0.0000166667 = 0.00333334
    # compute = 0.0097222 + 0.00333334 = 0.01305554; requests = 5000 * 0.0000002 = 0.001
    cost = lambda_cost(pricing=pricing, architecture="x86_64", memory_mb=2048, invocations=5000,
                       billed_ms_on_demand=100_000, billed_ms_provisioned=500_000,
                       provisioned_concurrency=3, window_s=3601)
    assert cost.provisioned == pytest.approx(0.09750078, **EXACT)
    assert cost.compute == pytest.approx(0.01305554, **EXACT)
    assert cost.requests == pytest.approx(0.001, **EXACT)
    assert cost.total == pytest.approx(0.09750078 + 0.01305554 + 0.001, **EXACT)


def test_lambda_provisioned_window_multiple_of_5_min_not_rounded(pricing):
    # 3600 s is 12 * 300 s: 3 * 2 GB * 3600 s * 0.0000041667 = 21600 * 0.0000041667 = 0.09000072
    cost = lambda_cost(pricing=pricing, architecture="x86_64", memory_mb=2048, invocations=0,
                       billed_ms_on_demand=0, provisioned_concurrency=3, window_s=3600)
    assert cost.provisioned == pytest.approx(0.09000072, **EXACT)
    assert cost.compute == 0.0


def test_lambda_provisioned_arm64(pricing):
    # PC 1 at 1024 MB over 60 s -> 300 s: 1 * 1 GB * 300 s * 0.0000033334 = 0.00100002
    # 1000 ms on PC = 1 GB-s * 0.0000077778
    cost = lambda_cost(pricing=pricing, architecture="arm64", memory_mb=1024, invocations=1,
                       billed_ms_on_demand=0, billed_ms_provisioned=1000,
                       provisioned_concurrency=1, window_s=60)
    assert cost.provisioned == pytest.approx(0.00100002, **EXACT)
    assert cost.compute == pytest.approx(0.0000077778, **EXACT)


def test_lambda_unknown_architecture(pricing):
    with pytest.raises(ConfigError, match="arm64, x86_64"):
        lambda_cost(pricing=pricing, architecture="ppc64", memory_mb=1024, invocations=1,
                    billed_ms_on_demand=1, window_s=60)


# --- EC2: per second, 60 s minimum ------------------------------------------------------------

WINDOW = (1000.0, 5000.0)


@pytest.mark.parametrize("launch, expected_s, why", [
    ((2000, 2030), 60, "30 s instance inside the window: billed the 60 s minimum"),
    ((2000, 2600), 600, "600 s inside the window: per second"),
    ((500, 1500), 500, "launched before the window: 1500 - 1000, no minimum"),
    ((4000, 6000), 1000, "crosses the window end: 5000 - 4000"),
    ((0, 10_000), 4000, "alive over the whole window"),
    ((100, 900), 0, "ended before the window"),
    ((6000, 7000), 0, "launched after the window"),
    ((990, 1010), 50, "minimum straddles the start: billed [990, 1050], 50 s of it inside"),
    ((4980, 4990), 20, "minimum straddles the end: billed [4980, 5040], 20 s of it inside"),
])
def test_ec2_instance_seconds(launch, expected_s, why):
    assert ec2_instance_seconds([launch], WINDOW, 60) == pytest.approx(expected_s, **EXACT), why


def test_ec2_cost_per_second(pricing):
    # c6i.large: 60 + 500 + 1000 = 1560 s; 1560 * 0.085 / 3600 = 132.6 / 3600 = 0.036833333...
    cost = ec2_cost(pricing=pricing, instance_type="c6i.large",
                    launches=[(2000, 2030), (500, 1500), (4000, 6000)], window=WINDOW)
    assert cost.compute == pytest.approx(132.6 / 3600, **EXACT)
    assert cost.load_balancer == 0.0
    assert cost.total == cost.compute


def test_ec2_unknown_instance_type(pricing):
    with pytest.raises(ConfigError, match="c6i.large"):
        ec2_cost(pricing=pricing, instance_type="x9.huge", launches=[], window=WINDOW)


# --- ALB ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("requests, active, bytes_per_request, rules, expected_lcu, dimension", [
    # 180,000 req/h = 50 new conn/s / 25 = 2.0; active 300/3000 = 0.1;
    # 1.8e8 B / 2**30 = 0.168 GB; no billed rules
    (180_000, 300, 1000, 0, 2.0, "new connections"),
    # 36,000 req/h = 10/s / 25 = 0.4; active 9000 / 3000 = 3.0
    (36_000, 9000, 1000, 0, 3.0, "active connections"),
    # 36,000 * 2**20 B = 36,000 / 1024 GB = 35.15625 GB / 1 GB per LCU
    (36_000, 300, 2**20, 0, 35.15625, "processed bytes"),
    # 60 rules, 10 free: 10 req/s * 50 = 500 rule evaluations/s / 1000 = 0.5 (conn 0.4, active 0.1)
    (36_000, 300, 1000, 60, 0.5, "rule evaluations"),
    # 10 rules are free: back to new connections 0.4
    (36_000, 300, 1000, 10, 0.4, "rules within the free 10"),
])
def test_alb_lcus_max_of_dimensions(pricing, requests, active, bytes_per_request, rules, expected_lcu, dimension):
    lcus = alb_lcus_per_hour(np.array([requests]), mean_active_connections=np.array([active]),
                             bytes_per_request=bytes_per_request, prices=pricing.alb, rules_per_request=rules)
    assert lcus.shape == (1,)
    assert lcus[0] == pytest.approx(expected_lcu, **EXACT), dimension


def test_ec2_cost_with_alb_partial_hour_billed_full(pricing):
    # Window 0..5400 s = 1.5 h -> 2 ALB-hours * 0.0225 = 0.045
    # LCUs: hour 0 = 2.0 (new connections), hour 1 = 3.0 (active) -> 5 LCU-h * 0.008 = 0.04
    # t3.medium alive 5400 s: 5400 * 0.0416 / 3600 = 0.0624
    cost = ec2_cost(pricing=pricing, instance_type="t3.medium", launches=[(0, 5400)], window=(0, 5400),
                    alb_requests_per_hour=np.array([180_000, 36_000]),
                    alb_mean_active_connections=np.array([300, 9000]), bytes_per_request=1000)
    assert cost.compute == pytest.approx(0.0624, **EXACT)
    assert cost.load_balancer == pytest.approx(0.045 + 0.04, **EXACT)
    assert cost.total == pytest.approx(0.1474, **EXACT)


def test_alb_whole_hours_not_rounded_up(pricing):
    # 7200 s = exactly 2 ALB-hours: 2 * 0.0225 = 0.045; no traffic, no LCUs
    cost = ec2_cost(pricing=pricing, instance_type="t3.medium", launches=[], window=(0, 7200),
                    alb_requests_per_hour=np.zeros(2))
    assert cost.load_balancer == pytest.approx(0.045, **EXACT)
    assert cost.compute == 0.0


# --- Cost ----------------------------------------------------------------------------------------

def test_cost_add_and_dict():
    a = Cost(compute=1.0, requests=0.5, provisioned=0.25)
    b = Cost(load_balancer=2.0, other=0.125, compute=1.0)
    s = a + b
    assert s == Cost(compute=2.0, requests=0.5, provisioned=0.25, load_balancer=2.0, other=0.125)
    assert s.total == 4.875
    assert s.as_dict() == {"total": 4.875, "compute": 2.0, "requests": 0.5, "provisioned": 0.25,
                           "load_balancer": 2.0, "other": 0.125}
    assert list(s.as_dict()) == ["total", "compute", "requests", "provisioned", "load_balancer", "other"]
