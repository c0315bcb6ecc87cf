"""`make demo` (scripts/demo), the README's first command: it must work as written and leave
tables that delta-rs reads with every sample document."""
import os
import subprocess

from deltalake import DeltaTable

from conftest import ROOT, SANITIZER_ENV, TESTDATA, m2d_bin


def test_demo_snapshots_the_sample_collections(tmp_path):
    lake = tmp_path / "lake"
    env = dict(os.environ, **SANITIZER_ENV, M2D_BIN=m2d_bin(), M2D_LAKE=str(lake))
    p = subprocess.run([str(ROOT / "scripts" / "demo")], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    for f in sorted((TESTDATA / "mongodb-sample").glob("*/*.json")):
        n = sum(1 for line in f.read_text().splitlines() if line.strip())
        assert f"snapshot {f.parent.name}.{f.stem} -> {lake}/{f.stem}: {n} documents" in p.stderr
        assert DeltaTable(str(lake / f.stem)).to_pyarrow_table().num_rows == n
    assert "spark.read.format(\"delta\")" in p.stdout
