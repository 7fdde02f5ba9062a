"""Pre-flight checks: the API URL's scheme, the output location, outputs that would overwrite inputs."""

from __future__ import annotations

import os

import pytest

from taskbuilder.preflight import (
    TEST_OBJECT_PREFIX,
    PreflightFailed,
    check_api_url,
    check_output_location,
    check_outputs_spare_inputs,
)


@pytest.mark.parametrize("url", ["https://api.prolific.com", "http://127.0.0.1:8765", "http://localhost:1",
                                 "http://[::1]:8765", "http://127.9.9.9"])
def test_https_or_loopback_is_accepted(url):
    check_api_url(url)


@pytest.mark.parametrize("url", ["http://api.prolific.com", "http://10.0.0.5:8765", "http://localhost.evil.example",
                                 "ftp://api.prolific.com", "http://user:pw@api.prolific.com"])
def test_plain_http_to_another_host_is_refused(url):
    with pytest.raises(PreflightFailed) as caught:
        check_api_url(url)
    assert "clear text" in str(caught.value) and "pw" not in str(caught.value)


def test_a_local_output_folder_is_checked_and_nothing_is_left(tmp_path):
    folder = tmp_path / "a" / "b"
    check_output_location(str(folder))
    assert list(tmp_path.iterdir()) == []
    folder.mkdir(parents=True)
    (folder / "keep.txt").write_text("x")
    check_output_location(str(folder))
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_an_output_folder_under_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PreflightFailed) as caught:
        check_output_location(str(tmp_path / "afile" / "out"))
    message = str(caught.value)
    assert "\n" not in message and "afile is a file" in message and "--output-dir" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PreflightFailed, match="cannot be written"):
            check_output_location(str(folder))
    finally:
        folder.chmod(0o700)


class _FakeS3:
    """A stand-in for boto3's client (unit test): records calls, fails as told."""

    def __init__(self, fail=None):
        self.fail, self.calls = fail, []

    def put_object(self, **kw):
        self.calls.append(("put", kw["Bucket"], kw["Key"]))
        if self.fail:
            raise self.fail

    def delete_object(self, **kw):
        self.calls.append(("delete", kw["Bucket"], kw["Key"]))


def test_an_s3_prefix_gets_a_test_write_that_is_removed():
    s3 = _FakeS3()
    check_output_location("s3://bucket/results/run1/", s3_client=lambda: s3)
    (put, bucket, key), delete = s3.calls
    assert (put, bucket) == ("put", "bucket") and key.startswith(f"results/run1/{TEST_OBJECT_PREFIX}")
    assert delete == ("delete", "bucket", key)


def test_s3_without_credentials_or_bucket_says_what_to_do():
    from botocore.exceptions import ClientError, NoCredentialsError

    with pytest.raises(PreflightFailed, match="no AWS credentials"):
        check_output_location("s3://bucket/x", s3_client=lambda: _FakeS3(NoCredentialsError()))
    missing = ClientError({"Error": {"Code": "NoSuchBucket"}, "ResponseMetadata": {"HTTPStatusCode": 404}}, "PutObject")
    with pytest.raises(PreflightFailed, match="NoSuchBucket"):
        check_output_location("s3://nobucket/x", s3_client=lambda: _FakeS3(missing))


def test_s3_unreachable_is_one_line():
    """A real boto3 client pointed at a closed port: the error is mapped, not a traceback."""
    import boto3
    from botocore.config import Config

    def client():
        return boto3.client("s3", endpoint_url="http://127.0.0.1:9", aws_access_key_id="a", aws_secret_access_key="b",
                            region_name="us-east-1", config=Config(retries={"max_attempts": 1}, connect_timeout=1))

    with pytest.raises(PreflightFailed, match="cannot be reached"):
        check_output_location("s3://bucket/x", s3_client=client)


@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink", "hardlink"])
def test_an_output_that_would_overwrite_the_input_is_refused(tmp_path, spelling):
    data = tmp_path / "data"
    data.mkdir()
    source = data / "responses.csv"
    source.write_text("id,text\n1,a\n")
    output = {"same": data, "dotdot": data / ".." / "data"}.get(spelling, tmp_path / "out")
    if spelling == "symlink":
        output.mkdir()
        (output / "labels.csv").symlink_to(source)
    if spelling == "hardlink":
        output.mkdir()
        os.link(source, output / "summary.json")
    with pytest.raises(PreflightFailed, match="would overwrite the input"):
        check_outputs_spare_inputs(str(output), [str(source)])


def test_an_output_beside_a_differently_named_input_is_fine(tmp_path):
    (tmp_path / "data.csv").write_text("id\n1\n")
    check_outputs_spare_inputs(str(tmp_path), [str(tmp_path / "data.csv")])


def test_case_is_compared_when_the_output_does_not_exist_yet(tmp_path):
    with pytest.raises(PreflightFailed):
        check_outputs_spare_inputs(str(tmp_path), [str(tmp_path / "Report.CSV")])


def test_s3_outputs_over_an_s3_input_are_refused():
    with pytest.raises(PreflightFailed):
        check_outputs_spare_inputs("s3://b/jobs/", ["s3://b/jobs/report.csv"])
    check_outputs_spare_inputs("s3://b/jobs/out/", ["s3://b/jobs/report.csv"])
