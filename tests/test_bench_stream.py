"""``opusclip bench stream`` runs end to end (tiny sizes: a smoke test, not a measurement)."""

from __future__ import annotations

import json

from opusclip_lib.bench import stream


def test_bench_stream_writes_its_checks_and_streams(tmp_path):
    out = tmp_path / "stream.json"
    code = stream.main(["--concurrency", "2", "--seconds", "0.3", "--token-ms", "5",
                        "--sample-s", "0.05", "--server", "thread", "--json", str(out),
                        "--plot", str(tmp_path / "stream.png")])
    written = json.loads(out.read_text())
    assert code == 0
    assert [row["check"].split(" ")[0] for row in written["checks"]] == ["median", "resident"]
    assert written["streams"]
    assert all(run["tokens_per_s"] > 0 for run in written["streams"])
    assert (tmp_path / "stream.png").stat().st_size > 0
