from td3drive.analysis.compare import compare, to_markdown
from tests.synthetic import healthy, reference_failure


def test_compare_rows_and_findings(tmp_path):
    c = compare(reference_failure(tmp_path / "a"), healthy(tmp_path / "b"))
    rows = {r["tag"]: r for r in c["metrics"]}
    r = rows["gradients/actor_mlp_norm"]
    assert r["a_final"] == 0.0 and r["ratio"] is None and r["change"] == r["b_final"]
    assert "train/q_pi" in c["only_in_b"]
    assert {f["id"] for f in c["findings_resolved"]} >= {"dead_network", "critic_exploitation"}
    same = compare(tmp_path / "a", tmp_path / "a")
    assert same["findings_new"] == same["findings_resolved"] == [] and same["findings_persisting"]
    assert all(row["change"] == 0 for row in same["metrics"])
    assert "| train/q1_value |" in to_markdown(c)
