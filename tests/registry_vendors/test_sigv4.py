"""``shared.aws.sigv4`` against AWS's published Signature Version 4 test suite and botocore.

The vectors are from AWS's "Signature Version 4 test suite" (aws-sig-v4-test-suite, also shipped in
the AWS General Reference): credentials ``AKIDEXAMPLE`` / ``wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY``,
region ``us-east-1``, service ``service``, time ``20150830T123600Z``. botocore, when installed, is a
second oracle for the requests the agent actually sends (STS query form, ECR JSON 1.1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest

from shared.aws.sigv4 import AwsCredentials, sign

EXAMPLE = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
WHEN = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)
SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


@pytest.mark.parametrize(
    ("name", "method", "url", "headers", "body", "signed", "signature"),
    [
        (
            "get-vanilla",
            "GET",
            "https://example.amazonaws.com/",
            {},
            b"",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            {},
            b"",
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "post-x-www-form-urlencoded",
            "POST",
            "https://example.amazonaws.com/",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"Param1=value1",
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
    ],
)
def test_published_vectors(
    name: str, method: str, url: str, headers: dict[str, str], body: bytes, signed: str, signature: str
) -> None:
    result = sign(method, url, headers, body, EXAMPLE, "us-east-1", "service", WHEN)
    assert result["X-Amz-Date"] == "20150830T123600Z"
    assert result["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, Signature={signature}"
    ), name


def test_session_token_is_signed_and_sent() -> None:
    result = sign(
        "POST",
        "https://sts.eu-west-1.amazonaws.com/",
        {},
        b"",
        AwsCredentials("A", "S", "TOKEN"),
        "eu-west-1",
        "sts",
        WHEN,
    )
    assert result["X-Amz-Security-Token"] == "TOKEN"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in result["Authorization"]


def test_credentials_repr_hides_the_secret() -> None:
    credentials = AwsCredentials("AKIDEXAMPLE", "very-secret-key", "session-token")
    assert "very-secret-key" not in repr(credentials) and "session-token" not in repr(credentials)


@pytest.mark.parametrize(
    ("url", "headers", "body", "service", "token"),
    [
        (
            "https://sts.eu-west-1.amazonaws.com/",
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=s",
            "sts",
            None,
        ),
        (
            "https://api.ecr.eu-west-1.amazonaws.com/",
            {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
            },
            b'{"repositoryName":"a/b","maxResults":1000}',
            "ecr",
            "FwoGZXIvYXdzEJr//////////wEaDH",
        ),
        (
            "https://example.amazonaws.com/a%20b/c?x=1&a=%2F&b=",
            {"X-Amz-Meta": "  two   spaces  "},
            b"",
            "service",
            None,
        ),
    ],
)
def test_agrees_with_botocore(
    url: str, headers: dict[str, str], body: bytes, service: str, token: str | None
) -> None:
    botocore_auth = pytest.importorskip("botocore.auth")
    import botocore.awsrequest
    import botocore.credentials

    ours = sign(
        "POST",
        url,
        headers,
        body,
        AwsCredentials("AKIDEXAMPLE", EXAMPLE.secret_access_key, token),
        "eu-west-1",
        service,
        WHEN,
    )
    theirs = botocore.awsrequest.AWSRequest(method="POST", url=url, headers=dict(headers), data=body)
    signer = botocore_auth.SigV4Auth(
        botocore.credentials.Credentials("AKIDEXAMPLE", EXAMPLE.secret_access_key, token),
        service,
        "eu-west-1",
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        signer.add_auth(theirs)
    assert ours["Authorization"] == theirs.headers["Authorization"]
