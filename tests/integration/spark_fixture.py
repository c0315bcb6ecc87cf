"""One Spark session with Delta for the whole test run (it takes seconds to start). The Delta
jars come from the project's Maven cache (.cache/jars/delta), handed over with spark.jars, so
Spark resolves nothing itself."""
import glob
import os

import pytest

from conftest import ROOT


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession
    jars = sorted(glob.glob(str(ROOT / ".cache" / "jars" / "delta" / "*.jar")))
    assert jars, "Delta jars missing: run scripts/bootstrap"
    os.environ.setdefault("PYSPARK_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    session = (SparkSession.builder.master("local[1]").appName("mongo2delta-tests")
               .config("spark.jars", ",".join(jars))
               .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
               .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", "1")
               .config("spark.sql.session.timeZone", "UTC")
               # test tables are small: rebuild each table's snapshot in one partition, not 50
               # (a table's first read then takes about a second instead of four)
               .config("spark.databricks.delta.snapshotPartitions", "1")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()

