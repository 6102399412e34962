"""The REPORT line parser that every Lambda target uses: AWS's own examples (aws-facts §6.2,
verbatim), the local gateway's lines (with servesim's fields), the JSON log format, LogResult."""
from __future__ import annotations

import base64
import json

import pytest

from deploy.lambda_report import (billed_duration_ms, format_report, parse_log_result, parse_report)

# AWS DG python-logging.md: a raw CloudWatch event (tab-separated, a space before one tab).
AWS_WARM = ("REPORT RequestId: 4ce9340a-b765-490f-ad8a-02ab3415e2bf\tDuration: 26.73 ms\t"
            "Billed Duration: 27 ms \tMemory Size: 128 MB\tMax Memory Used: 75 MB\t\n")
# Same doc, a cold start as the console shows it (spaces), followed by an X-Ray line.
AWS_COLD = """REPORT RequestId: 8f507cfc-xmpl-4697-b07a-ac58fc914c95  Duration: 15.74 ms  Billed Duration: 16 ms Memory Size: 128 MB Max Memory Used: 56 MB  Init Duration: 130.49 ms
XRAY TraceId: 1-5e34a614-10bdxmplf1fb44f07bc535a1   SegmentId: 07f5xmpl2d1f6f85 Sampled: true
"""


def test_aws_warm_example():
    r = parse_report(AWS_WARM)
    assert r["request_id"] == "4ce9340a-b765-490f-ad8a-02ab3415e2bf"
    assert (r["duration_ms"], r["billed_duration_ms"], r["memory_size_mb"], r["max_memory_used_mb"]) == \
        (26.73, 27, 128, 75)
    assert r["init_duration_ms"] is None and r["status"] is None


def test_aws_cold_example_with_spaces_and_xray_line():
    r = parse_report(AWS_COLD)
    assert r["request_id"] == "8f507cfc-xmpl-4697-b07a-ac58fc914c95"
    assert (r["duration_ms"], r["billed_duration_ms"], r["memory_size_mb"], r["max_memory_used_mb"],
            r["init_duration_ms"]) == (15.74, 16, 128, 56, 130.49)


def test_report_found_inside_a_log_tail():
    log = "START RequestId: abc Version: $LATEST\nhello\nEND RequestId: abc\n" + AWS_WARM
    assert parse_report(log)["duration_ms"] == 26.73
    assert parse_log_result(base64.b64encode(log.encode()).decode())["billed_duration_ms"] == 27


def test_failure_fields():
    line = ("REPORT RequestId: r1\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 50 MB\tStatus: timeout\t")
    r = parse_report(line)
    assert r["status"] == "timeout" and r["error_type"] is None
    line = line.replace("Status: timeout", "Status: error\tError Type: Runtime.ExitError")
    r = parse_report(line)
    assert (r["status"], r["error_type"]) == ("error", "Runtime.ExitError")


def test_format_round_trips_and_keeps_aws_fields_exact():
    line = format_report("id-1", duration_ms=12.341, memory_size_mb=1024, max_memory_used_mb=187,
                         init_duration_ms=432.1, servesim={"CPU Limit": "cgroup 0.579 vCPU",
                                                           "Memory Limit": "cgroup 1024 MB"})
    assert line == ("REPORT RequestId: id-1\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 1024 MB\t"
                    "Max Memory Used: 187 MB\tInit Duration: 432.10 ms\tServesim CPU Limit: cgroup 0.579 vCPU\t"
                    "Servesim Memory Limit: cgroup 1024 MB\t")
    r = parse_report(line)
    assert r == {"request_id": "id-1", "duration_ms": 12.34, "billed_duration_ms": 13, "memory_size_mb": 1024,
                 "max_memory_used_mb": 187, "init_duration_ms": 432.1, "restore_duration_ms": None,
                 "billed_restore_duration_ms": None, "status": None, "error_type": None,
                 "servesim_cpu_limit": "cgroup 0.579 vCPU", "servesim_memory_limit": "cgroup 1024 MB"}


@pytest.mark.parametrize("duration, billed", [(26.73, 27), (2000.0, 2000), (0.0, 1), (12.001, 12), (12.01, 13),
                                              (0.3, 1)])
def test_billed_duration_rounds_the_written_duration_up_to_1_ms(duration, billed):
    assert billed_duration_ms(duration) == billed


def test_json_log_format_platform_report():
    rec = {"time": "2024-01-01T00:00:00Z", "type": "platform.report",
           "record": {"requestId": "r2", "status": "success",
                      "metrics": {"durationMs": 15.74, "billedDurationMs": 16, "memorySizeMB": 128,
                                  "maxMemoryUsedMB": 56, "initDurationMs": 130.49}}}
    r = parse_report(json.dumps(rec))
    assert (r["request_id"], r["duration_ms"], r["billed_duration_ms"], r["init_duration_ms"]) == \
        ("r2", 15.74, 16, 130.49)


# SnapStart: the text format gains Restore Duration and Billed Restore Duration (tab-prefixed, as the
# regexes of AWS Lambda Power Tuning read them, aws-facts §6.2); there is no Init Duration.
SNAPSTART = ("REPORT RequestId: 9a1c0ffe-0000-4b1e-8c11-5e0d1e5e0a11\tDuration: 48.21 ms\tBilled Duration: 49 ms\t"
             "Memory Size: 1024 MB\tMax Memory Used: 212 MB\tRestore Duration: 311.57 ms\t"
             "Billed Restore Duration: 178 ms\t\n")


def test_snapstart_restore_fields_text_and_json():
    r = parse_report(SNAPSTART)
    assert (r["duration_ms"], r["billed_duration_ms"], r["restore_duration_ms"], r["billed_restore_duration_ms"],
            r["init_duration_ms"]) == (48.21, 49, 311.57, 178, None)
    rec = {"type": "platform.report", "record": {"requestId": "r3", "status": "success", "metrics": {
        "durationMs": 48.21, "billedDurationMs": 49, "memorySizeMB": 1024, "maxMemoryUsedMB": 212,
        "restoreDurationMs": 311.57, "billedRestoreDurationMs": 178}}}
    j = parse_report(json.dumps(rec))
    assert {k: j[k] for k in ("restore_duration_ms", "billed_restore_duration_ms", "init_duration_ms", "status")} == \
        {"restore_duration_ms": 311.57, "billed_restore_duration_ms": 178, "init_duration_ms": None, "status": None}


def test_json_log_tail_with_several_records_and_a_warm_report():
    """A JSON-format log tail: platform.start, the function's own JSON line, platform.report
    (warm: no initDurationMs), as LogResult carries it."""
    lines = [{"time": "2026-11-22T18:00:00.000Z", "type": "platform.start", "record": {"requestId": "r4"}},
             {"timestamp": "2026-11-22T18:00:00.010Z", "level": "INFO", "message": "predicted", "requestId": "r4"},
             {"time": "2026-11-22T18:00:00.030Z", "type": "platform.report",
              "record": {"requestId": "r4", "status": "timeout", "metrics": {
                  "durationMs": 3000.0, "billedDurationMs": 3000, "memorySizeMB": 512, "maxMemoryUsedMB": 90}}}]
    tail = "\n".join(json.dumps(x) for x in lines) + "\n"
    r = parse_log_result(base64.b64encode(tail.encode()).decode())
    assert (r["request_id"], r["duration_ms"], r["billed_duration_ms"], r["memory_size_mb"], r["init_duration_ms"],
            r["status"]) == ("r4", 3000.0, 3000, 512, None, "timeout")


def test_invoke_answer_of_a_snapstart_function_counts_the_restore_as_the_cold_start():
    from calibrate.targets import parse_invoke

    headers = {"X-Amz-Log-Result": base64.b64encode(SNAPSTART.encode()).decode(), "X-Amz-Function-Error": ""}
    s = parse_invoke(0.0, 400.0, 200, headers, b'{"outputs": {}}', None)
    assert (s.status, s.server_ms, s.init_ms, s.billed_ms, s.max_memory_mb) == ("ok", 48.21, 311.57, 49.0, 212.0)


@pytest.mark.parametrize("text", ["START RequestId: x\nEND RequestId: x\n",
                                  "REPORT RequestId: x\tDuration: 1.00 ms\tMemory Size: 128 MB\t"])
def test_missing_report_or_field_is_an_error(text):
    with pytest.raises(ValueError):
        parse_report(text)
