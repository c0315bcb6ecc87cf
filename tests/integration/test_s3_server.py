"""The S3 test servers themselves (scripts/s3-test-server), through boto3: MinIO refuses a second
put-if-absent of a key with 412 and a request signed with the wrong secret with 403, which the S3
store's tests rely on; the --ignore-conditions server overwrites instead. Also the s3_bucket
fixture's name, URLs and clean-up."""
import re

import pytest

from conftest import S3Bucket, S3TestServer, s3_bucket_name

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402


def error_of(call):
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"], exc.value.response["Error"]["Code"]


def test_minio_refuses_a_second_put_if_absent(s3_bucket):
    c = s3_bucket.client
    c.put_object(Bucket=s3_bucket.name, Key="log/0.json", Body=b"first", IfNoneMatch="*")
    assert error_of(lambda: c.put_object(Bucket=s3_bucket.name, Key="log/0.json", Body=b"second",
                                         IfNoneMatch="*")) == (412, "PreconditionFailed")
    assert c.get_object(Bucket=s3_bucket.name, Key="log/0.json")["Body"].read() == b"first"


def test_minio_refuses_a_second_multipart_put_if_absent(s3_bucket):
    c, b, key = s3_bucket.client, s3_bucket.name, "data/big.parquet"
    c.put_object(Bucket=b, Key=key, Body=b"first")
    upload = c.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    etag = c.upload_part(Bucket=b, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 1024)["ETag"]
    assert error_of(lambda: c.complete_multipart_upload(
        Bucket=b, Key=key, UploadId=upload, IfNoneMatch="*",
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})) == (412, "PreconditionFailed")
    c.abort_multipart_upload(Bucket=b, Key=key, UploadId=upload)
    assert c.get_object(Bucket=b, Key=key)["Body"].read() == b"first"


def test_minio_refuses_a_wrong_signature(s3_server, s3_bucket):
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="k", Body=b"v")
    bad = s3_server.client(secret="not-the-secret")
    assert error_of(lambda: bad.get_object(Bucket=s3_bucket.name, Key="k")) == (403, "SignatureDoesNotMatch")
    assert error_of(lambda: bad.put_object(Bucket=s3_bucket.name, Key="k2", Body=b"v"))[0] == 403
    assert s3_bucket.keys() == ["k"]


def test_ignore_conditions_server_overwrites():
    server = S3TestServer(ignore_conditions=True).start()
    try:
        bucket = S3Bucket.create(server, "unsafe")
        c = bucket.client
        c.put_object(Bucket="unsafe", Key="log/0.json", Body=b"first", IfNoneMatch="*")
        c.put_object(Bucket="unsafe", Key="log/0.json", Body=b"second", IfNoneMatch="*")
        assert c.get_object(Bucket="unsafe", Key="log/0.json")["Body"].read() == b"second"
        bucket.delete()
    finally:
        assert server.stop() == 0


def test_minio_keeps_objects_in_data_dir_across_restarts(tmp_path):
    server = S3TestServer(data=tmp_path / "s3").start()
    try:
        bucket = S3Bucket.create(server, "kept")
        bucket.client.put_object(Bucket="kept", Key="a/b", Body=b"v")
    finally:
        assert server.stop() == 0
    server = S3TestServer(data=tmp_path / "s3").start()
    try:
        assert S3Bucket(server, "kept").keys() == ["a/b"]
    finally:
        assert server.stop() == 0


def test_bucket_fixture(s3_server, s3_bucket):
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", s3_bucket.name)
    assert s3_bucket.name.startswith("t-test-bucket-fixture-")
    assert s3_bucket.url("lake/t") == f"s3://{s3_bucket.name}/lake/t"
    assert s3_bucket.env == {"AWS_ACCESS_KEY_ID": "m2d-test", "AWS_SECRET_ACCESS_KEY": "m2d-test-secret",
                             "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server.endpoint}
    assert s3_bucket.storage_options == dict(s3_bucket.env, AWS_ALLOW_HTTP="true")
    c = s3_bucket.client
    for k in ["b/2", "a/1", "b/1"]:
        c.put_object(Bucket=s3_bucket.name, Key=k, Body=b"")
    c.create_multipart_upload(Bucket=s3_bucket.name, Key="b/unfinished")  # delete() aborts it
    assert s3_bucket.keys() == ["a/1", "b/1", "b/2"]
    assert s3_bucket.keys("b/") == ["b/1", "b/2"]


def test_bucket_delete_takes_objects_and_unfinished_uploads(s3_server):
    bucket = S3Bucket.create(s3_server, s3_bucket_name("delete"))
    c = bucket.client
    for i in range(1005):  # more than one DeleteObjects batch
        c.put_object(Bucket=bucket.name, Key=f"k/{i:04d}", Body=b"")
    c.create_multipart_upload(Bucket=bucket.name, Key="k/unfinished")
    bucket.delete()
    assert error_of(lambda: c.head_bucket(Bucket=bucket.name))[0] == 404
