"""Loaders of the public Azure traces (Azure/AzurePublicDataset, CC-BY 4.0; cite the papers).

Three formats (schemas in aws-facts.md §5), each an `ArrivalSource` of seconds from the start of
its window ``[0, duration_s)``, streamed in float64 chunks:

- `Azure2019` — Azure Functions 2019 (Shahrad et al., ATC'20): per-minute invocation counts of
  each function, one CSV per day; arrivals are placed inside each minute. Optional duration
  percentiles give a service-time distribution (of 30-second averages: see
  `Azure2019.duration_distribution`).
- `Azure2021` — Azure Functions invocation trace 2021 (Zhang et al., SOSP'21): one row per
  invocation, arrival = ``end_timestamp - duration``.
- `AzureLLM` — Azure LLM inference traces 2023/2024/2025 (Splitwise, DynamoLLM, ModServe): one row
  per request with its token counts, which `batches` yields as per-request attributes.

Common rules. CSV files are read with ``pandas.read_csv(chunksize=...)`` so memory stays flat
(except `Azure2021`, which must sort: its docstring states the bound). Lines are numbered from 1
in the file, the header being line 1 (records are assumed not to hold quoted newlines, which these
files never do). A bad file — missing columns, unparseable or negative numbers, unparseable
timestamps, an out-of-order LLM trace — is a `ConfigError` naming the file, the line and the
column. Blank lines are skipped and counted. Nothing else is dropped silently: rows left out on
purpose (other functions, other triggers, outside the window, missing durations) are counted and
reported by `notes()` as sentences, and by `describe()` as data.

Windows: `start_s` and `duration_s` slice ``[start_s, start_s + duration_s)`` out of the file's
trace and re-base it to 0 (what ``start`` means for each format is in its docstring).
"""
from .common import TRIGGERS
from .functions2019 import Azure2019
from .functions2021 import Azure2021
from .llm import AzureLLM
from .specs import KINDS, build_azure2019, build_azure2021, build_azure_llm

__all__ = ["Azure2019", "Azure2021", "AzureLLM", "build_azure2019", "build_azure2021", "build_azure_llm",
           "KINDS", "TRIGGERS"]
