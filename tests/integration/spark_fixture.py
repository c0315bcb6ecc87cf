"""One Spark session with Delta for the whole test run (it takes seconds to start). The Delta
jars come from the project's Maven cache (.cache/jars/delta), handed over with spark.jars, so
Spark resolves nothing itself. So do the Hadoop S3A connector and the AWS SDK v2 modules it
loads (.cache/jars/s3a), for tables on an S3 test server: spark_s3_conf points the session at
one.

conftest imports the fixture, so every test here can take `spark` without importing it."""
import glob
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]  # as conftest's (not imported: conftest imports this)

S3A_FS = "org.apache.hadoop.fs.s3a.S3AFileSystem"


def _jars(profile):
    jars = sorted(glob.glob(str(ROOT / ".cache" / "jars" / profile / "*.jar")))
    assert jars, f"{profile} jars missing (.cache/jars/{profile}): run scripts/bootstrap"
    return jars


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession
    jars = _jars("delta") + _jars("s3a")
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
               # s3a:// and s3:// (what Databricks users write) both through S3A; the endpoint
               # and credentials are set per server by spark_s3_conf
               .config("spark.hadoop.fs.s3a.impl", S3A_FS)
               .config("spark.hadoop.fs.s3.impl", S3A_FS)
               # Delta's log store for both schemes (its default for them already; said here so
               # it is not a surprise): single-driver, which is all a test session is
               .config("spark.delta.logStore.s3a.impl", "io.delta.storage.S3SingleDriverLogStore")
               .config("spark.delta.logStore.s3.impl", "io.delta.storage.S3SingleDriverLogStore")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def spark_s3_conf(spark, endpoint, access_key, secret, region="us-east-1"):
    """Points the session's S3A (s3a:// and s3:// paths) at the S3-compatible server at endpoint
    (e.g. "http://127.0.0.1:45200"): path-style requests, plain http when the endpoint is http,
    these static credentials only (never the environment, ~/.aws or instance metadata), region.
    Can be called again for another server: the S3A file systems Hadoop has cached (one per
    bucket, built with the old settings) are closed, and Delta's table cache is cleared."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    settings = {
        "fs.s3a.impl": S3A_FS,
        "fs.s3.impl": S3A_FS,
        "fs.AbstractFileSystem.s3a.impl": "org.apache.hadoop.fs.s3a.S3A",
        "fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        "fs.s3a.endpoint": endpoint,
        "fs.s3a.endpoint.region": region,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false" if endpoint.startswith("http://") else "true",
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.access.key": access_key,
        "fs.s3a.secret.key": secret,
        # a test server that is gone fails a read in seconds, not after minutes of retries
        "fs.s3a.connection.establish.timeout": "5s",
        "fs.s3a.attempts.maximum": "2",
        "fs.s3a.retry.limit": "2",
        "fs.s3a.retry.interval": "100ms",
    }
    for key, value in settings.items():
        conf.set(key, value)
    # Hadoop caches a FileSystem per (scheme, bucket, user) and never looks at the
    # configuration again; close (and so uncache) the S3A ones so the next use takes the above.
    file_system = jvm.java.lang.Class.forName("org.apache.hadoop.fs.FileSystem")
    cache_field = file_system.getDeclaredField("CACHE")
    cache_field.setAccessible(True)
    cache = cache_field.get(None)
    map_field = cache.getClass().getDeclaredField("map")
    map_field.setAccessible(True)
    for fs in list(jvm.java.util.ArrayList(map_field.get(cache).values())):
        if fs.getUri().getScheme() in ("s3a", "s3"):
            fs.close()
    jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
