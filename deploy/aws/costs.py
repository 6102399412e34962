"""What a calibration campaign on AWS can cost at most, before it starts, and the budget guard.

The bounds follow from the campaign's sizes (`calibrate.campaign.CampaignSettings`) and the
limits that cap every request, never from hoped-for latencies, so the campaign cannot spend
more (prices from the pricing file; the highest Lambda duration tier, no free tier):

- **Lambda**, per memory size M GB: a cold start bills at most Lambda's 10 s INIT limit plus
  the function timeout (INIT is billed since 2025-08-01); a sequential request at most the
  timeout; a load level of c closed-loop clients at most c x (level + 3 timeouts) of
  duration (each client's environment is busy at most the whole level, plus its two unrecorded
  warm-up calls and its last call's overrun). Requests: at most one per millisecond per client.
- **EC2**, per instance type: one instance per cold start, up at most the health-check
  timeout plus one request timeout; one serving instance up at most the health timeout plus
  every sequential request at its timeout plus every load level (and its overruns). Every
  launch is billed at least EC2's minimum (60 s).

Not included (each is cents for a calibration campaign, and said so in the output): data
transfer, CloudWatch Logs ingestion, S3 and ECR storage and requests, EBS root volumes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sim.errors import ServesimError

LAMBDA_INIT_LIMIT_S = 10.0
MIN_REQUEST_S = 0.001  # a request takes at least 1 ms: bounds the request count of a load level
EXCLUDED = ("data transfer", "CloudWatch Logs ingestion", "S3/ECR storage and requests", "EBS root volumes")


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: float
    unit: str
    usd: float

    def line(self) -> str:
        return f"  {self.item:<44} {self.quantity:>14,.1f} {self.unit:<16} ${self.usd:,.4f}"


@dataclass
class CostEstimate:
    """An upper bound of a campaign's cost, line by line."""

    what: str
    lines: list[CostLine] = field(default_factory=list)
    excluded: tuple[str, ...] = EXCLUDED

    @property
    def upper_usd(self) -> float:
        return sum(line.usd for line in self.lines)

    def text(self) -> list[str]:
        return [f"upper bound of the cost of {self.what}:", *(line.line() for line in self.lines),
                f"  {'total (upper bound)':<75} ${self.upper_usd:,.4f}",
                f"  not included: {', '.join(self.excluded)}"]


def _load_terms(settings, timeout_s: float) -> tuple[float, float]:
    """(client-seconds of the load levels incl. overruns, request count bound of the load levels)."""
    busy = sum(c * (settings.level_s + 3 * timeout_s) for c in settings.load_levels)
    requests = sum(c * (2 + settings.level_s / MIN_REQUEST_S) for c in settings.load_levels)
    return busy, requests


def lambda_campaign_cost(settings, memory_mb: list[int], architecture: str, timeout_s: float, pricing) -> CostEstimate:
    """The bound for an aws-lambda campaign of `settings` over `memory_mb` (see the module docstring)."""
    arch = pricing.lambda_arch(architecture)
    rate = max(t.usd_per_gb_s for t in arch.tiers)
    est = CostEstimate(f"the aws-lambda campaign ({architecture}, timeout {timeout_s:g} s)")
    sequential = settings.warmup + settings.n_warm
    load_busy, load_requests = _load_terms(settings, timeout_s)
    requests = 0.0
    for m in memory_mb:
        gb = m / 1024.0
        cold = settings.n_cold * (LAMBDA_INIT_LIMIT_S + timeout_s) * gb
        seq = sequential * timeout_s * gb
        load = load_busy * gb
        est.lines.append(CostLine(f"{m} MB: {settings.n_cold} cold starts", cold, "GB-s", cold * rate))
        est.lines.append(CostLine(f"{m} MB: {sequential} sequential requests", seq, "GB-s", seq * rate))
        if settings.load_levels:
            est.lines.append(CostLine(f"{m} MB: load levels {','.join(map(str, settings.load_levels))}", load, "GB-s",
                                      load * rate))
        requests += settings.n_cold + sequential + load_requests
    est.lines.append(CostLine("requests", requests, "requests", requests * pricing.lambda_.usd_per_request))
    return est


def ec2_campaign_cost(settings, instance_types: list[str], pricing, *, health_timeout_s: float,
                      request_timeout_s: float, extra_warmup: int = 0) -> CostEstimate:
    """The bound for an aws-ec2 campaign of `settings` over `instance_types`."""
    est = CostEstimate(f"the aws-ec2 campaign (health timeout {health_timeout_s:g} s, request timeout "
                       f"{request_timeout_s:g} s)")
    minimum = pricing.ec2_minimum_billed_s
    load_busy, _ = _load_terms(settings, request_timeout_s)
    for t in instance_types:
        price = pricing.instance(t).usd_per_hour / 3600.0
        cold = settings.n_cold * max(minimum, health_timeout_s + request_timeout_s)
        sequential = ((settings.warmup + extra_warmup + settings.n_warm) * request_timeout_s
                      + settings.n_warm * settings.warm_gap_s)  # each warm pause is at most warm_gap_s
        load = sum(settings.level_s + 3 * request_timeout_s for _ in settings.load_levels)
        serving = max(minimum, health_timeout_s + sequential + load)
        est.lines.append(CostLine(f"{t}: {settings.n_cold} boots (one instance each)", cold, "instance-s", cold * price))
        est.lines.append(CostLine(f"{t}: the serving instance", serving, "instance-s", serving * price))
    return est


def check_budget(estimate: CostEstimate, max_cost_usd: float | None) -> None:
    """Refuse a campaign whose upper bound exceeds `max_cost_usd` (None: no budget)."""
    if max_cost_usd is not None and estimate.upper_usd > max_cost_usd:
        raise ServesimError(f"{estimate.what} could cost up to ${estimate.upper_usd:,.2f}, over --max-cost-usd "
                            f"{max_cost_usd:g}: measure fewer configurations, cold starts, requests or levels, "
                            "lower --timeout-s, or raise the budget (--dry-run prints the bound line by line)")
