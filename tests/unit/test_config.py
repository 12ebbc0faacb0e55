"""Unit tests of the settings read from the environment: required values, defaults and refusals."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from chalicelib.config import SettingsError, get_settings
from chalicelib.pagination import pagination_secret
from tests.support.tenants import PAGINATION_SECRET, TABLE_NAME


def test_the_settings_come_from_the_environment(env, jwks_server):
    settings = get_settings()
    assert settings.table_name == TABLE_NAME
    assert settings.issuer == jwks_server.issuer
    assert settings.jwks_url == f"{jwks_server.issuer}/.well-known/jwks.json"
    assert settings.pagination_secret == PAGINATION_SECRET.encode()
    assert settings.resource_server == "tenant-api"
    assert settings.region == "us-east-1"


def test_defaults_apply_when_optional_values_are_unset(env):
    env.set(
        RATE_LIMITER=None,
        RESOURCE_SERVER_ID=None,
        TENANT_CACHE_SECONDS=None,
        JWKS_MIN_REFRESH_SECONDS="",
        JWT_LEEWAY_SECONDS=None,
        AWS_REGION=None,
        AWS_DEFAULT_REGION=None,
    )
    settings = get_settings()
    assert settings.rate_limiter == "usage-plan"
    assert settings.resource_server == "tenant-api"
    assert (settings.tenant_cache_seconds, settings.jwks_min_refresh_seconds, settings.jwt_leeway_seconds) == (
        60.0,
        60.0,
        30.0,
    )
    assert settings.region == "us-east-1"


def test_the_issuer_loses_a_trailing_slash_and_an_explicit_jwks_url_wins(env):
    env.set(
        TOKEN_ISSUER="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/",
        JWKS_URL="http://127.0.0.1:9/keys.json",
        AWS_REGION="eu-west-1",
    )
    settings = get_settings()
    assert settings.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
    assert settings.jwks_url == "http://127.0.0.1:9/keys.json"
    assert settings.region == "eu-west-1"


def test_the_settings_are_read_once(env, monkeypatch):
    first = get_settings()
    monkeypatch.setenv("TABLE_NAME", "another-table")
    assert get_settings() is first
    assert get_settings().table_name == TABLE_NAME


@pytest.mark.parametrize("name", ["TABLE_NAME", "TOKEN_ISSUER", "PAGINATION_SECRET"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_required_values_must_be_set(env, name, value):
    env.set_unread(**{name: value})
    with pytest.raises(SettingsError, match=name):
        get_settings()


def test_a_short_pagination_secret_is_refused(env):
    env.set_unread(PAGINATION_SECRET="x" * 31)
    with pytest.raises(SettingsError, match="at least 32"):
        get_settings()
    env.set(PAGINATION_SECRET="x" * 32)
    assert get_settings().pagination_secret == b"x" * 32


def test_the_pagination_secret_can_come_from_secrets_manager(env):
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="tenant-api-dev/pagination", SecretString="s" * 48
        )["ARN"]
        env.set(PAGINATION_SECRET=None, PAGINATION_SECRET_ARN=arn)
        assert pagination_secret() == b"s" * 48
        # Read once per process: a later change of the secret needs a new process.
        boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(SecretId=arn, SecretString="t" * 48)
        assert pagination_secret() == b"s" * 48


def test_a_short_secret_from_secrets_manager_is_refused(env):
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="tenant-api-dev/pagination", SecretString="short"
        )["ARN"]
        env.set(PAGINATION_SECRET=None, PAGINATION_SECRET_ARN=arn)
        with pytest.raises(SettingsError, match="at least 32"):
            pagination_secret()


def test_the_environment_secret_wins_over_secrets_manager(env):
    env.set(
        PAGINATION_SECRET="e" * 40, PAGINATION_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:unused"
    )
    assert pagination_secret() == b"e" * 40


def test_the_rate_limiter_must_be_a_known_one(env):
    env.set(RATE_LIMITER="in-app")
    assert get_settings().rate_limiter == "in-app"
    env.set_unread(RATE_LIMITER="nginx")
    with pytest.raises(SettingsError, match="RATE_LIMITER"):
        get_settings()


@pytest.mark.parametrize("name", ["TENANT_CACHE_SECONDS", "JWKS_MIN_REFRESH_SECONDS", "JWT_LEEWAY_SECONDS"])
@pytest.mark.parametrize("value", ["-1", "ten", "nan", "inf", "-inf", "1e999"])
def test_durations_must_be_finite_and_not_negative(env, name, value):
    env.set_unread(**{name: value})
    with pytest.raises(SettingsError, match=name):
        get_settings()


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("2.5", 2.5), ("300", 300.0)])
def test_durations_accept_finite_numbers(env, value, expected):
    env.set(JWT_LEEWAY_SECONDS=value)
    assert get_settings().jwt_leeway_seconds == expected
