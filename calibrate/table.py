"""The measurement table (DESIGN.md, "Measurement table"): one row per request, Parquet.

On disk a table is a folder (``measurements.parquet/``) of part files, each written whole
(temp file + rename) as a campaign goes, so an interrupted campaign keeps every part it closed and
`--resume` continues after the last one; pandas and pyarrow read the folder as one table. The
campaign's host checks and settings are kept beside the parts in ``_campaign.json``.
"""
from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "servesim.measurements/1"

COLUMNS = pa.schema([
    ("run_id", pa.string()),          # one campaign invocation
    ("target", pa.string()),          # local-server | local-lambda | http | aws-lambda | aws-ec2
    ("model", pa.string()),
    ("model_sha256", pa.string()),
    ("config", pa.string()),          # e.g. "memory_mb=1024,architecture=x86_64" or "workers=2,cpus=2"
    ("memory_mb", pa.int64()),        # Lambda-like configurations (null otherwise)
    ("architecture", pa.string()),
    ("instance_type", pa.string()),   # server-like configurations (null otherwise)
    ("workers", pa.int64()),
    ("cpus", pa.float64()),
    ("phase", pa.string()),           # cold | warm | load | burst | pairs | cold_idle | replay
    ("level", pa.float64()),          # load: offered rate (req/s, open loop) or clients (closed loop);
                                      # burst: requests sent at once (k); cold_idle: host idle before it (s);
                                      # pairs: the nominal offset of a pair's second request after its first (ms)
    ("concurrency", pa.int64()),      # clients in flight (1 for cold, warm and cold_idle; k for burst; 2 for pairs)
    ("seq", pa.int64()),              # request number within its (config, phase, level); pairs: 2i A, 2i + 1 B
    ("send_s", pa.float64()),         # wall-clock send time (Unix seconds)
    ("client_ms", pa.float64()),      # client-side latency
    ("server_ms", pa.float64()),      # server-side duration (X-Inference-Ms, or Lambda's Duration)
    ("init_ms", pa.float64()),        # cold start: Lambda Init Duration, or server process start -> ready
    ("billed_ms", pa.float64()),      # Lambda Billed Duration
    ("max_memory_mb", pa.float64()),
    ("status", pa.string()),          # ok | throttled | error | timeout
    ("error", pa.string()),
    ("limit", pa.string()),           # the CPU limit applied, e.g. "cgroup 0.579 vCPU"
])
STATUSES = ("ok", "throttled", "error", "timeout")
PHASES = ("cold", "warm", "load", "burst", "pairs", "cold_idle", "replay")
