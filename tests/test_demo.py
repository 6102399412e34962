"""`servesim demo` end to end on the real local targets, with small sizes (the full demo is `make
demo`): every step runs, the answer is printed, the report holds it, and no process is left."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("gunicorn")
pytest.importorskip("sklearn")


@pytest.mark.slow
def test_demo_small(tmp_path, monkeypatch):
    import cli
    from deploy.procs import live_processes
    from deploy.rie import rie_path
    from sim.errors import ServesimError

    try:
        rie_path()
    except ServesimError as exc:
        pytest.skip(f"the Lambda Runtime Interface Emulator is not installed (make rie): {exc}")
    monkeypatch.chdir(tmp_path)  # a relative --out, as `make demo` gives (the scenarios' paths are theirs)
    out = tmp_path / "out" / "demo"
    result = CliRunner().invoke(cli.main, ["demo", "--out", "out/demo", "--days", "1", "--validate-s", "8",
                                           "--cold", "2", "--warm", "100", "--executor", "serial",
                                           "--no-progress"])
    assert result.exit_code == 0, result.output
    text = result.output
    for step in range(1, 7):
        assert f"[{step}/6]" in text
    assert re.search(r"cheapest configuration meeting p99 <= 50 ms over the month: (lambda|ec2) \(", text), text
    assert "break-even load:" in text
    assert re.search(r"prediction error on local-lambda \(\d+ requests over 8 s\): p50 [-+]\d", text), text
    assert re.search(r"prediction error on local-server \(\d+ requests over 8 s\): p50 [-+]\d", text), text
    report = (out / "report.html").read_text()
    assert "<h2>The answer</h2>" in report and "Validation against the local targets" in report
    assert report.count('src="data:image/png;base64,') >= 6 and 'src="http' not in report
    for f in ("profile.json", "month/sweep.parquet", "breakeven/sweep.parquet", "validate-local-lambda/validation.json",
              "validate-local-server/validation.json"):
        assert (out / f).exists(), f
    assert live_processes() == []
