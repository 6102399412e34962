"""Hand-computed bills of container services and Kubernetes clusters, from the packaged figures.

Each expected value is written as arithmetic from the published prices (quoted in the comments),
not as a pinned output.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.billing import Cost
from sim.billing_pods import container_cost, execution_gb_s, interval_billed_s, k8s_cost
from sim.errors import ConfigError
from sim.presets import load_presets
from sim.pricing import load_pricing

REL = 1e-12


@pytest.fixture(scope="module")
def presets():
    return load_presets()


def _request_bill(prices, periods, *, vcpu, memory_gb, requests, window=(0.0, 3600.0)):
    billed = sum(interval_billed_s(a, b, window, minimum_s=prices.minimum_s, increment_s=prices.increment_s)
                 for a, b in periods)
    return container_cost(prices=prices, vcpu=vcpu, memory_gb=memory_gb, billed_s=billed, execution_gb_s=0.0,
                          requests=requests)


def test_fargate_per_second_with_one_minute_minimum(presets):
    prices = presets.container("fargate").prices()
    per_s = 1 * 0.04048 / 3600 + 2 * 0.004445 / 3600  # 1 vCPU, 2 GB at $0.04048/vCPU-h, $0.004445/GB-h
    for alive_s, billed_s in [(90, 90), (30, 60), (90.4, 91)]:
        cost = _request_bill(prices, [(100.0, 100.0 + alive_s)], vcpu=1, memory_gb=2, requests=500)
        assert cost.compute == pytest.approx(billed_s * per_s, rel=REL)
        assert cost.requests == 0
        assert cost.total == cost.compute


def test_cloud_run_request_based(presets):
    prices = presets.container("cloud-run").prices("request")
    # active periods of 250 ms (-> 300 ms) and 300 ms (10.3 - 10 carries float noise: stays 300 ms)
    cost = _request_bill(prices, [(0.0, 0.25), (10.0, 10.3)], vcpu=1, memory_gb=0.5, requests=5)
    assert cost.compute == pytest.approx((0.3 + 0.3) * (1 * 0.000024 + 0.5 * 0.0000025), rel=REL)
    assert cost.requests == pytest.approx(5 * 0.40 / 1e6, rel=REL)


def test_cloud_run_instance_based(presets):
    prices = presets.container("cloud-run").prices("instance")
    cost = _request_bill(prices, [(0.0, 120.05)], vcpu=2, memory_gb=1, requests=1000)
    assert cost.compute == pytest.approx(120.1 * (2 * 0.000018 + 1 * 0.000002), rel=REL)
    assert cost.requests == 0


def test_gcf2_one_request_per_instance(presets):
    preset = presets.container("gcf2")
    d = preset.defaults  # 256 MiB -> 0.167 vCPU
    # three 120 ms invocations, each its own active period, each rounded up to 200 ms
    cost = _request_bill(preset.prices(), [(0.0, 0.12), (5.0, 5.12), (9.0, 9.12)], vcpu=d["vcpu"],
                         memory_gb=d["memory_gb"], requests=3)
    assert cost.compute == pytest.approx(3 * 0.2 * (0.167 * 0.000024 + 0.25 * 0.0000025), rel=REL)
    assert cost.requests == pytest.approx(3 * 0.40 / 1e6, rel=REL)


def test_azure_consumption_executions(presets):
    prices = presets.container("azure-consumption").prices()
    # 37 ms -> 100 ms minimum; 150.2 ms -> 151 ms; 200 MB -> 256 MB (128 MB steps, 1 GB = 1024 MB)
    gb_s = execution_gb_s(np.array([37.0, 150.2]), 200 / 1024, prices)
    assert gb_s == pytest.approx((0.100 + 0.151) * 256 / 1024, rel=1e-9)
    cost = container_cost(prices=prices, vcpu=1, memory_gb=200 / 1024, billed_s=0.0, execution_gb_s=gb_s,
                          requests=2)
    assert cost.compute == pytest.approx((0.100 + 0.151) * 0.25 * 0.000016, rel=1e-9)
    assert cost.requests == pytest.approx(2 * 0.20 / 1e6, rel=REL)
    assert execution_gb_s(np.array([37.0]), 200 / 1024, prices) == pytest.approx(0.1 * 0.25, rel=REL)


def test_azure_execution_rounding_ignores_float_noise(presets):
    prices = presets.container("azure-consumption").prices()
    # 110.00000000000001 ms is 110 ms, not 111; 128 MB * 2 is exactly 2 steps
    assert execution_gb_s(np.array([100 + 10.000000000000014]), 0.25, prices) == pytest.approx(0.110 * 0.25,
                                                                                                  rel=REL)
    assert execution_gb_s(np.array([], dtype=float), 0.25, prices) == 0.0


def test_azure_flex_on_demand(presets):
    preset = presets.container("azure-flex")
    # active periods of 350 ms (-> 1,000 ms minimum) and 1,230 ms (-> 1,300 ms), 2,048 MB instance
    cost = _request_bill(preset.prices(), [(0.0, 0.35), (60.0, 61.23)], vcpu=preset.defaults["vcpu"],
                         memory_gb=preset.defaults["memory_gb"], requests=7)
    assert cost.compute == pytest.approx((1.0 + 1.3) * 2 * 0.000026, rel=REL)
    assert cost.requests == pytest.approx(7 * 0.40 / 1e6, rel=REL)


def test_k8s_nodes_and_eks_fee(presets):
    pricing = load_pricing()
    fee = presets.control_plane_usd_per_hour("eks")
    # one c6i.large for the whole hour, one killed after 30 s (billed the 60 s minimum)
    cost = k8s_cost(pricing=pricing, node_instance_type="c6i.large", node_launches=[(0.0, 7200.0), (1800.0, 1830.0)],
                    window=(0.0, 3600.0), control_plane_usd_per_hour=fee)
    assert cost.compute == pytest.approx((3600 + 60) * 0.085 / 3600, rel=REL)
    assert cost.other == pytest.approx(3600 * 0.10 / 3600, rel=REL)
    half = k8s_cost(pricing=pricing, node_instance_type="c6i.large", node_launches=[], window=(0.0, 1800.0),
                    control_plane_usd_per_hour=fee)
    assert half == Cost(other=pytest.approx(1800 * 0.10 / 3600, rel=REL))
    free = k8s_cost(pricing=pricing, node_instance_type="t3.medium", node_launches=[(0.0, 100.0)],
                    window=(0.0, 3600.0), control_plane_usd_per_hour=presets.control_plane_usd_per_hour("none"))
    assert (free.compute, free.other) == (pytest.approx(100 * 0.0416 / 3600, rel=REL), 0.0)


def test_k8s_unknown_node_type_is_the_ec2_error():
    with pytest.raises(ConfigError, match=r"c6i\.large.*p5\.48xlarge"):
        k8s_cost(pricing=load_pricing(), node_instance_type="p5.48xlarge", node_launches=[], window=(0.0, 1.0),
                 control_plane_usd_per_hour=0.1)


def test_window_clipping_adds_up():
    # a 30 s life billed its 60 s minimum: [100, 160]
    whole = interval_billed_s(100.0, 130.0, (0.0, 1000.0), minimum_s=60.0, increment_s=1.0)
    first = interval_billed_s(100.0, 130.0, (0.0, 150.0), minimum_s=60.0, increment_s=1.0)
    second = interval_billed_s(100.0, 130.0, (150.0, 1000.0), minimum_s=60.0, increment_s=1.0)
    assert (whole, first, second) == (60.0, 50.0, 10.0)
    # started before the window: charged from the window's start, no minimum again
    assert interval_billed_s(-50.0, 100.0, (0.0, 300.0), minimum_s=60.0) == 100.0
    # entirely outside
    assert interval_billed_s(400.0, 500.0, (0.0, 300.0), minimum_s=60.0) == 0.0


def test_float_noise_does_not_add_a_step():
    assert interval_billed_s(0.0, 0.1 + 0.2, (0.0, 10.0), increment_s=0.1) == pytest.approx(0.3, rel=REL)
    assert interval_billed_s(0.0, 0.30001, (0.0, 10.0), increment_s=0.1) == pytest.approx(0.4, rel=REL)
    assert interval_billed_s(5.0, 5.0, (0.0, 10.0), increment_s=0.1) == 0.0


def test_bad_arguments(presets):
    with pytest.raises(ValueError, match="interval"):
        interval_billed_s(2.0, 1.0, (0.0, 10.0))
    with pytest.raises(ValueError, match="window"):
        interval_billed_s(0.0, 1.0, (10.0, 0.0))
    with pytest.raises(ValueError, match="durations"):
        execution_gb_s(np.array([-1.0]), 0.5, presets.container("azure-consumption").prices())
    with pytest.raises(ValueError, match="billed_s must be 0"):
        container_cost(prices=presets.container("azure-consumption").prices(), vcpu=1, memory_gb=1, billed_s=1.0,
                       execution_gb_s=0.0, requests=0)
    with pytest.raises(ValueError, match="execution_gb_s must be 0"):
        container_cost(prices=presets.container("fargate").prices(), vcpu=1, memory_gb=1, billed_s=1.0,
                       execution_gb_s=1.0, requests=0)


@settings(max_examples=60, deadline=None)
@given(start=st.floats(-100, 100), length=st.floats(0, 500), extra=st.floats(0, 500),
       cut=st.floats(-200, 1200), minimum=st.sampled_from([0.0, 1.0, 60.0]),
       increment=st.sampled_from([0.0, 0.001, 0.1, 1.0]))
def test_billed_seconds_invariants(start, length, extra, cut, minimum, increment):
    """Non-negative, monotone in the interval's length, adjacent windows add up, >= the life inside."""
    window = (-200.0, 1200.0)
    short = interval_billed_s(start, start + length, window, minimum_s=minimum, increment_s=increment)
    long = interval_billed_s(start, start + length + extra, window, minimum_s=minimum, increment_s=increment)
    assert 0.0 <= short <= long + 1e-9
    assert short >= length - 1e-9
    parts = (interval_billed_s(start, start + length, (window[0], cut), minimum_s=minimum, increment_s=increment)
             + interval_billed_s(start, start + length, (cut, window[1]), minimum_s=minimum, increment_s=increment))
    assert parts == pytest.approx(short, abs=1e-9)
