"""RESULTS.md keeps the other device kind's section and folds gpu_check output folders in."""

import json

from bench.results import collect, fmt, read_data, record


def test_a_cpu_run_keeps_the_gpu_section_and_the_benchmarks_it_did_not_run(tmp_path):
    path = tmp_path / "RESULTS.md"
    record("gpu", {"gpu": "NVIDIA H100 80GB HBM3"}, {"embed_throughput": {"result": {"x": 7000.0}}}, path)
    record("cpu", {"cpu": "AMD EPYC", "cores": 2}, {"bench_metrics": {"result": {"cpu_s": 0.5}}}, path)
    record("cpu", {"cpu": "AMD EPYC", "cores": 2}, {"bench_synth": {"result": {"rate": 30.0}}}, path)
    data = read_data(path)
    assert data["gpu"]["benchmarks"] == {"embed_throughput": {"result": {"x": 7000.0}}}
    assert set(data["cpu"]["benchmarks"]) == {"bench_metrics", "bench_synth"}
    text = path.read_text()
    assert "## GPU: NVIDIA H100 80GB HBM3" in text and "| x | 7,000 |" in text and "## CPU: AMD EPYC, 2 cores" in text


def test_collect_groups_setting_files_under_their_benchmark(tmp_path):
    (tmp_path / "machine.json").write_text(json.dumps({"gpu": "NVIDIA H200"}))
    (tmp_path / "train_throughput-b256-eager.json").write_text(json.dumps({"full_over_bare": 0.93}))
    (tmp_path / "train_throughput-b64-eager.json").write_text(json.dumps({"full_over_bare": 0.9}))
    (tmp_path / "time_to_result.json").write_text(json.dumps({"wall_s": 95.0}))
    (tmp_path / "summary.json").write_text("{}")
    info, benchmarks = collect(tmp_path)
    assert info == {"gpu": "NVIDIA H200"}
    assert benchmarks["train_throughput"]["result"] == {"b256-eager": {"full_over_bare": 0.93},
                                                        "b64-eager": {"full_over_bare": 0.9}}
    assert benchmarks["time_to_result"]["result"] == {"wall_s": 95.0}
    assert set(benchmarks) == {"train_throughput", "time_to_result"}


def test_figures_are_formatted_for_reading():
    assert [fmt(2412.37), fmt(0.93412), fmt(None), fmt(True)] == ["2,412", "0.934", "-", "yes"]
