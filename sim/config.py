"""Typed, frozen configuration of the platforms the simulator models.

These dataclasses are what the engines read. They are built by `scenarios.loader` from scenario
files (which validates every value and reports the file and key path of a mistake); building
them has no side effects. Units are in the field names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Union

from .dists import Distribution

Architecture = Literal["x86_64", "arm64"]
ReusePolicy = Literal["mru", "newest", "random"]
LoadBalancer = Literal["least_outstanding", "round_robin", "shared_queue"]
ScalingMetric = Literal["cpu", "requests_per_instance"]

REUSE_POLICIES = ("mru", "newest", "random")
LOAD_BALANCERS = ("least_outstanding", "round_robin", "shared_queue")
ARCHITECTURES = ("x86_64", "arm64")
SCALING_METRICS = ("cpu", "requests_per_instance")


@dataclass(frozen=True)
class IdleEffect:
    """How a request's service time depends on how long its unit (a Lambda environment, an EC2
    instance) was idle before it: the time drawn from the service distribution (which is that of
    a request reaching a rested unit) is multiplied by

        1 - (1 - hot_ratio) * exp(-idle_s / tau_s)

    so a request arriving right after the previous one finished takes `hot_ratio` times as long,
    one after an idle period much longer than `tau_ms` the full time. (Idle CPUs sleep deeper and
    lose their caches the longer they wait; on a 2-vCPU host a tiny model answered in 1.5 ms back
    to back and in 2.3 ms after 50 ms of idleness, tau about 12 ms.) Calibration fits both.
    """

    hot_ratio: float
    tau_ms: float

    def __post_init__(self):
        if not (0.0 < self.hot_ratio <= 10.0 and math.isfinite(self.hot_ratio)):
            raise ValueError(f"hot_ratio must be in (0, 10], got {self.hot_ratio}")
        if not (0.0 < self.tau_ms < math.inf):
            raise ValueError(f"tau_ms must be > 0 and finite, got {self.tau_ms}")

    @property
    def deficit(self) -> float:
        """1 - hot_ratio: what the engines multiply by exp(-idle_s / tau_s)."""
        return 1.0 - self.hot_ratio

    @property
    def tau_s(self) -> float:
        return self.tau_ms / 1000.0

    def factor(self, idle_s: float) -> float:
        """The multiplier for a unit idle `idle_s` seconds (math.inf: never used, rested)."""
        return 1.0 - self.deficit * math.exp(-idle_s / self.tau_s)


@dataclass(frozen=True)
class HostShare:
    """Concurrent work sharing the CPUs of one host: the local targets on a small machine (every
    Lambda environment, the gateway and the load generator on the same few cores), or an EC2
    instance running more busy workers than it has vCPUs.

    Each job in progress (a Lambda INIT, an invocation, a request in an EC2 worker) would use
    `init_cores` (INIT) or `work_cores` (the rest) cores when alone, and then takes its drawn
    duration. Jobs share `cores` by processor sharing with caps (water-filling): while their
    demands sum to at most `cores` each runs at full speed; beyond that each gets the same share
    (a job needing less keeps its own and leaves the rest to the others), and a job given a
    fraction f of its demand progresses at rate f, so its duration stretches by 1/f. For Lambda
    the host is shared by every environment; for EC2 each instance is its own host. Fitted by
    calibration from bursts of k simultaneous requests (`calibrate.fit.fit_host_share`).

    Contention (`work_contention` c >= 0): an invocation (a request, for EC2) also slows down
    with every other job in progress on the host, whether or not cores are free: with n jobs in
    progress it can use at most work_cores / (1 + c (n - 1)) cores, so it stretches at least by 1
    + c (n - 1) (caches, memory bandwidth, a gateway that every invocation goes through). The
    measured law on the local Lambda target: about 1 + 0.25 (k - 1) for k simultaneous
    invocations, already from k = 2, where the cores alone predict no stretch. 0: none.

    Way in (Lambda only; `way_in_ms` 0: none): before its environment starts a request's INIT or
    invocation, the local gateway and the emulator handle the request (HTTP, routing, the
    runtime API): `way_in_ms` of work alone on one core, a job on the host like the others,
    slowed by contention as an invocation is. The environment is taken at the arrival, and the
    way in is neither in the request's latency nor in its bill (Lambda's Duration starts with
    the invocation), but a newcomer's way in slows the invocations already running:
    `way_in_pressure` P is how hard a way in in progress presses on them against an ordinary
    job (an invocation with contention c and, besides other invocations, w ways in in progress
    uses at most work_cores / (1 + c (n_other + P w)) cores). Fitted from pairs of requests sent
    a few milliseconds apart (`calibrate.fit.fit_way_in`).

    Cold host (Lambda only; `init_idle_s` None: never): the first INITs after the host has run
    no INIT for a while are slower, because the host pages out memory nobody touched for that
    long (on the local target, DAMON reclaim after 30 s: the INIT's imports, onnxruntime, the
    model) and they page it back in. An INIT starting when no INIT is in progress on the host
    and the last one ended at least `init_idle_s` earlier finds the host cold and starts a
    page-in of (`init_idle_factor` - 1) times its drawn duration: a wait on the disk, using no
    cores and slowing nobody, after which its INIT runs as usual (shared with the others).
    Every INIT starting before the page-in ends waits for the same page-in (the files come
    back once, for all of them), then runs. The wait is part of the Init Duration. The host
    starts warm: its idle time counts from the run's start.
    """

    cores: float
    init_cores: float = 1.0
    work_cores: float = 1.0
    init_idle_s: float | None = None
    """Seconds without an INIT after which the host is cold (None: it never is)."""
    init_idle_factor: float = 1.0
    """How many times longer a lone INIT takes on a cold host, >= 1 (1.0 when init_idle_s is None)."""
    work_contention: float = 0.0
    """The stretch each other job in progress adds to an invocation (0: none)."""
    way_in_ms: float = 0.0
    """Lambda only: the gateway's work for a request before its environment runs it (ms; 0: none)."""
    way_in_pressure: float = 1.0
    """How hard a way in presses on running invocations, against an ordinary job (>= 0)."""

    def __post_init__(self):
        for name in ("cores", "init_cores", "work_cores"):
            v = getattr(self, name)
            if not (0.0 < v < math.inf):
                raise ValueError(f"{name} must be > 0 and finite, got {v}")
        if self.init_idle_s is not None and not (0.0 < self.init_idle_s < math.inf):
            raise ValueError(f"init_idle_s must be None or > 0 and finite (seconds), got {self.init_idle_s}")
        if not (0.0 <= self.work_contention < math.inf):
            raise ValueError(f"work_contention must be >= 0 and finite, got {self.work_contention}")
        for name in ("way_in_ms", "way_in_pressure"):
            v = getattr(self, name)
            if not (0.0 <= v < math.inf):
                raise ValueError(f"{name} must be >= 0 and finite, got {v}")
        if not (1.0 <= self.init_idle_factor < math.inf):
            raise ValueError(f"init_idle_factor must be >= 1 and finite, got {self.init_idle_factor}")
        if self.init_idle_s is None and self.init_idle_factor != 1.0:
            raise ValueError("init_idle_factor must be 1.0 when init_idle_s is None (the host is never cold), "
                             f"got {self.init_idle_factor}")


@dataclass(frozen=True)
class LambdaService:
    """What one invocation costs in time.

    warm_ms: handler duration of an invocation (ms), at this platform's memory size.
    cold_init_ms: INIT phase of a new execution environment (ms), before its first invocation.
    """

    warm_ms: Distribution
    cold_init_ms: Distribution
    interpolated: str | None = None
    """How these figures were carried to this memory size from a measured one (None: measured)."""
    idle: IdleEffect | None = None
    """How warm_ms depends on the environment's idle time before the invocation (None: it does
    not). The first invocation of a new environment runs right after its INIT: rested."""


@dataclass(frozen=True)
class LambdaConfig:
    """One AWS Lambda function configuration.

    An execution environment serves one request at a time. A request takes an idle warm
    environment (chosen by `reuse`), else starts a new one (a cold start) unless the concurrency
    limit or the scaling rate is reached, in which case it is throttled (HTTP 429).
    """

    name: str
    service: LambdaService
    memory_mb: int = 1024
    architecture: Architecture = "x86_64"
    keep_alive_s: Union[float, Distribution] = 360.0
    """Idle time after which an environment is reclaimed: seconds, or a distribution drawn per idle period."""
    reuse: ReusePolicy = "mru"
    concurrency_limit: int = 1000
    """Maximum concurrent executions (AWS's default account quota is 1000)."""
    scale_burst: int = 1000
    """Scaling rate as a token bucket: at most this many new environments at once ..."""
    scale_refill_per_s: float = 100.0
    """... refilled continuously at this rate (AWS: 1000 environments per 10 s per function)."""
    provisioned_concurrency: int = 0
    init_billed: bool = True
    """Bill the INIT phase of on-demand cold starts (AWS does since 2025-08-01)."""
    timeout_s: float = 900.0
    """Function timeout; an invocation running longer is stopped, billed in full and its environment discarded."""
    allow_extrapolation: bool = False
    """Let a profile's memory scaling carry warm durations outside the measured memory range."""
    host: HostShare | None = None
    """The environments share one host's CPUs (a local target; None: each has its own CPU share, as on AWS)."""


@dataclass(frozen=True)
class EC2Service:
    """service_ms: time one worker process takes to serve one request (ms) on this instance type."""

    service_ms: Distribution
    idle: IdleEffect | None = None
    """How service_ms depends on the time since the instance last had a request in service (0 while
    another worker of it is busy; a new instance is rested). None: it does not."""


@dataclass(frozen=True)
class AutoscalingConfig:
    """Target-tracking auto scaling of an EC2 fleet.

    Every `metric_period_s` the metric is averaged over the period across in-service instances.
    Scale out when it exceeds `target` for `scale_out_periods` consecutive periods, scale in when
    it stays below `target * scale_in_ratio` for `scale_in_periods` periods; the desired fleet is
    ceil(in_service * metric / target), clamped to [min, max]. After a scaling action no other
    action for `cooldown_s`. A new instance is billed from launch and serves after `boot_s`.
    """

    min_instances: int
    max_instances: int
    target: float
    boot_s: Distribution
    metric: ScalingMetric = "cpu"
    """cpu: busy-worker fraction (0..1); requests_per_instance: requests per instance per metric period."""
    metric_period_s: float = 60.0
    scale_out_periods: int = 3
    scale_in_periods: int = 15
    scale_in_ratio: float = 0.9
    cooldown_s: float = 300.0
    initial_instances: int | None = None


@dataclass(frozen=True)
class EC2Config:
    """A fleet of EC2 instances, each running `workers_per_instance` processes, behind an ALB."""

    name: str
    service: EC2Service
    instance_type: str = "c6i.large"
    instances: int = 1
    workers_per_instance: int = 2
    load_balancer: LoadBalancer = "least_outstanding"
    queue_limit: int = 2048
    """Requests waiting per instance (gunicorn's default backlog is 2048); more are rejected (503).
    With shared_queue it is the limit of the one shared queue."""
    request_timeout_s: float = 60.0
    """A request not answered within this time is a timeout (ALB's default idle timeout is 60 s);
    its worker still serves it, as gunicorn does not know the client left."""
    autoscaling: AutoscalingConfig | None = None
    load_balancer_billed: bool = True
    host: HostShare | None = None
    """The workers of an instance share its CPUs (None: each worker has a CPU of its own)."""
    request_kb: float = 10.0
    """Mean request body size, used to estimate the ALB's processed-bytes LCUs (an image is ~100 KB)."""
    response_kb: float = 2.0



# -- pods and containers: k8s-function (OpenFaaS, Knative) and container-service (Fargate, Cloud Run) --

BILLING_MODES = ("instance", "request", "execution")
BillingMode = Literal["instance", "request", "execution"]
CONTROL_PLANES = ("eks", "none")
CONTAINER_SCALING_METRICS = ("concurrency", "cpu")


@dataclass(frozen=True)
class PodService:
    """service_ms: time one request takes inside a pod or container instance (ms), each of its
    `concurrency` slots serving one request at a time (a slot is a worker: concurrent requests
    do not slow each other down)."""

    service_ms: Distribution


@dataclass(frozen=True)
class OpenFaasRps:
    """OpenFaaS (community edition) scaling on its requests-per-second alert.

    Prometheus evaluates every `eval_interval_s` the function's rate of invocations over the
    last `rate_window_s` (all replicas together). The alert fires once that rate has been above
    `threshold_rps` at every evaluation for `for_s`. While it fires, AlertManager notifies the
    gateway `group_wait_s` after it started firing and then every `repeat_interval_s`, and each
    notification adds
    ceil(max_replicas * scale_factor_pct / 100) replicas, capped at max_replicas. When the alert
    resolves (the rate is no longer above the threshold) the function scales back to
    min_replicas. The rate counts the requests the gateway accepts (OpenFaaS counts HTTP 200
    answers: the same requests, a service time later). Defaults: `sim/data/platform-presets.yaml` (`autoscalers.openfaas-rps`).
    """

    threshold_rps: float
    rate_window_s: float
    for_s: float
    eval_interval_s: float
    group_wait_s: float
    repeat_interval_s: float
    scale_factor_pct: float


@dataclass(frozen=True)
class KnativeKpa:
    """Knative's Pod Autoscaler (KPA), concurrency mode.

    Every `tick_s` the autoscaler averages the requests in flight (in pods and buffered in the
    activator) over the stable window and over the panic window (`panic_window_pct` % of it).
    Wanted pods = ceil(average / (target * target_utilization)), the target being concurrent
    requests per pod. When the panic window's wanted pods reach `panic_threshold_pct` % of the
    ready pods the autoscaler panics: it scales on the panic window and never scales down, until
    a stable window has passed without that condition. A tick changes the pods by at most
    `max_scale_up_rate` times / 1/`max_scale_down_rate` times the ready pods. With no request in
    flight over a whole stable window the wanted pods are 0 (scale to zero, when
    `scale_to_zero`): the last pod is removed `scale_to_zero_grace_s` later if no request came.
    A request arriving with no pod is buffered and starts a pod at once (scale from zero: a
    cold start). Defaults: `sim/data/platform-presets.yaml` (`autoscalers.knative-kpa`).
    """

    target: float
    target_utilization: float
    stable_window_s: float
    panic_window_pct: float
    panic_threshold_pct: float
    max_scale_up_rate: float
    max_scale_down_rate: float
    scale_to_zero_grace_s: float
    tick_s: float
    scale_to_zero: bool = True


Autoscaler = Union[OpenFaasRps, KnativeKpa]


@dataclass(frozen=True)
class K8sFunctionConfig:
    """A function on Kubernetes (OpenFaaS or Knative): pods of `concurrency` slots each.

    Requests wait in one FIFO queue at the gateway (OpenFaaS gateway, Knative activator) and go
    to a ready pod with a free slot (the least busy, ties to the oldest pod); the queue holds at
    most `queue_limit` requests (more are rejected, 503) and a request answered after
    `request_timeout_s` is a timeout. Pods number between `min_replicas` and `max_replicas`
    (OpenFaaS CE keeps at least one); a new pod serves after `pod_start_s` (image pull, container
    start, model load): a request that arrived while the pod serving it was starting is a cold
    start. Pods run on nodes of `node_instance_type`, `pods_per_node` each: a fixed pool of
    `nodes` nodes, or (nodes None) as many as the pods need at each moment, a node starting and
    stopping with the pods (node provisioning time is not modelled). Billing: the nodes like EC2
    instances, plus the cluster's control plane (`eks`, or `none` for a cluster already paid
    for, minikube or kind), its whole fee charged to this function.
    """

    name: str
    service: PodService
    pod_start_s: Distribution
    autoscaler: Autoscaler
    control_plane_usd_per_hour: float
    """The control plane's fee (resolved by the loader from `control_plane` and the presets file)."""
    min_replicas: int = 1
    max_replicas: int = 5
    """OpenFaaS CE caps every function at 5 replicas (older gateways: 20)."""
    concurrency: int = 1
    node_instance_type: str = "c6i.large"
    pods_per_node: int = 2
    nodes: int | None = None
    control_plane: str = "eks"
    queue_limit: int = 10000
    request_timeout_s: float = 60.0


@dataclass(frozen=True)
class ContainerPrices:
    """How a container service (or another cloud's functions) bills, from a preset of
    `sim/data/platform-presets.yaml` (`container_services.<preset>`), prices in USD.

    usd_per_vcpu_s, usd_per_gb_s: per vCPU-second and GB-second of the instance's size.
    usd_per_request: per request (or execution).
    billing: instance (alive time, from start to stop), request (time the instance serves at
    least one request), execution (each request's own duration, concurrent ones each billed).
    increment_s: billed time is rounded up to this per instance lifetime (instance), active
    period (request), or execution (execution); minimum_s: least billed per instance lifetime,
    active period or execution likewise (Fargate: 60 s per task, Azure Flex: 1 s per active
    period); memory_increment_gb: memory is rounded up to this (execution). Memory is in the
    unit the preset bills (GiB for Cloud Run and Google Cloud Functions).
    """

    preset: str
    usd_per_vcpu_s: float
    usd_per_gb_s: float
    usd_per_request: float
    billing: BillingMode
    increment_s: float = 0.0
    minimum_s: float = 0.0
    memory_increment_gb: float = 0.0


@dataclass(frozen=True)
class ContainerScaling:
    """Scaling of a container service.

    metric concurrency: the Knative-style autoscaler of `kpa` (Cloud Run scales on requests in
    flight per instance against `target` of `concurrency`; scale to zero when min_instances is 0).
    metric cpu: target tracking on the busy-slot fraction, as EC2's auto scaling (`tracking`,
    e.g. ECS service auto scaling of Fargate tasks). `idle_timeout_s`: an idle instance above
    min_instances is stopped after this long without a request (None: the autoscaler decides).
    """

    metric: Literal["concurrency", "cpu"]
    kpa: KnativeKpa | None = None
    tracking: AutoscalingConfig | None = None
    idle_timeout_s: float | None = None


@dataclass(frozen=True)
class ContainerServiceConfig:
    """A container service (Fargate, Cloud Run; Google Cloud Functions 2nd gen and Azure
    Functions through their presets): instances of `vcpu` vCPUs and `memory_gb` GB serving up
    to `concurrency` requests each, scaled by `scaling` between `min_instances` and
    `max_instances`, queueing and cold starts as in `K8sFunctionConfig` (the instance start
    `start_s` is the cold start). Billed by `prices` (see `ContainerPrices`)."""

    name: str
    service: PodService
    start_s: Distribution
    prices: ContainerPrices
    scaling: ContainerScaling
    concurrency: int = 80
    min_instances: int = 0
    max_instances: int = 100
    vcpu: float = 1.0
    memory_gb: float = 2.0
    queue_limit: int = 10000
    request_timeout_s: float = 300.0


PlatformConfig = Union[LambdaConfig, EC2Config, K8sFunctionConfig, ContainerServiceConfig]

_KINDS = {LambdaConfig: "lambda", EC2Config: "ec2", K8sFunctionConfig: "k8s-function",
          ContainerServiceConfig: "container-service"}


def platform_kind(cfg: PlatformConfig) -> str:
    """The scenario ``kind`` of a platform configuration (``lambda``, ``ec2``, ``k8s-function``,
    ``container-service``)."""
    return _KINDS[type(cfg)]
