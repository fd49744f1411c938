"""Client settings: bad values are refused with a sentence naming the value and the fix; the key never shows."""

from __future__ import annotations

import warnings

import pytest

from openwop_core import AsyncOpenwopClient, ConfigurationError, InsecureTransportWarning, OpenwopClient, RetryPolicy
from openwop_core.settings import API_KEY, CLIENT_SETTINGS, MAX_ATTEMPTS, TIMEOUT, VERIFY, verify_option

KEY = "sk-live-SETTINGS-SECRET-123"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("localhost:3737", "has no scheme"),
        ("ftp://host", "uses 'ftp'"),
        ("", "must be the host's URL"),
        (None, "must be the host's URL"),
        ("http://", "no host name"),
        ("http://host:notaport", "invalid port"),
        ("https://host/?x=1", "query or fragment"),
    ],
)
def test_bad_base_urls(base_url: object, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        OpenwopClient(base_url)  # type: ignore[arg-type]


def test_trailing_v1_and_slashes_are_removed() -> None:
    with OpenwopClient("http://127.0.0.1:1/v1/") as client:
        assert client.base_url == "http://127.0.0.1:1"
    with OpenwopClient("https://gw.example/openwop/") as client:
        assert client.base_url == "https://gw.example/openwop"


@pytest.mark.parametrize(
    ("api_key", "expected"),
    [
        ("", "api_key is empty"),
        ("  ", "api_key is empty"),
        ("a b", "whitespace"),
        ("Bearer abc", "starts with 'Bearer '"),
        (3, "must be a string"),
    ],
)
def test_bad_api_keys(api_key: object, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        OpenwopClient("http://127.0.0.1:1", api_key=api_key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": "10"}, "timeout must be a positive number"),
        ({"timeout": float("nan")}, "timeout must be a positive number of seconds, got nan"),
        ({"connect_timeout": True}, "connect_timeout must be a positive number of seconds, got True"),
        ({"stream_idle_timeout": -1}, "stream_idle_timeout must be a positive number of seconds"),
        ({"verify": "/no/such/ca.pem"}, "verify: no CA bundle at '/no/such/ca.pem' on this machine; pass an existing"),
        ({"verify": 3}, "verify must be True, False"),
        ({"retry": {"max_attempts": 0}}, "not a valid retry policy"),
        ({"headers": {"Authorization": "Bearer x"}}, "api_key="),
        ({"user_agent": "openwop-sdk/1.0"}, "must not impersonate"),
    ],
)
def test_bad_options(kwargs: dict, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        OpenwopClient("http://127.0.0.1:1", **kwargs)


def test_repr_and_settings_never_show_the_key() -> None:
    with OpenwopClient("http://127.0.0.1:1", api_key=KEY) as client:
        for text in (repr(client), str(client), repr(client.settings), repr(client.settings.auth()), client.base_url):
            assert KEY not in text
        assert "api_key=set" in repr(client)


@pytest.mark.parametrize(
    "base_url",
    [
        f"http://user:{KEY}@127.0.0.1:1",
        f"https://{KEY}@openwop.example.com/prefix",
        f"user:{KEY}@127.0.0.1:1",  # no scheme either: the credentials are named first, never echoed
        f"http://user:{KEY}@127.0.0.1:notaport",
    ],
)
def test_credentials_in_the_base_url_are_refused_without_echoing_them(base_url: str) -> None:
    """A password in the URL would travel into parameters, logs and links: refuse it and point to api_key."""
    with pytest.raises(ConfigurationError, match="must not contain a user name or password") as caught:
        OpenwopClient(base_url)
    assert "api_key" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-A": "line\nbreak"}, "the value of 'X-A' is not a valid HTTP header value"),
        ({"X-A": "cr\rlf"}, "the value of 'X-A' is not a valid HTTP header value"),
        ({"X-A": "nul\x00"}, "the value of 'X-A' is not a valid HTTP header value"),
        ({"X-A": "caf\u00e9"}, "the value of 'X-A' is not a valid HTTP header value"),
        ({"X A": "v"}, "'X A' is not a valid HTTP header name"),
        ({"": "v"}, "'' is not a valid HTTP header name"),
        ({"X-Bad:": "v"}, "is not a valid HTTP header name"),
    ],
)
def test_unsendable_headers_are_refused_when_the_client_is_built(headers: dict[str, str], expected: str) -> None:
    """Without the check, httpx accepts them and every request fails at send time, retried as a network error."""
    with pytest.raises(ConfigurationError, match=expected) as caught:
        OpenwopClient("http://127.0.0.1:1", headers=headers)
    for value in headers.values():
        if len(value) > 1:
            assert value not in str(caught.value)  # a header value may be a credential: never echoed


def test_ordinary_headers_are_kept() -> None:
    headers = {"X-Team": "data platform", "X-Trace_Id": "a\tb", "X-Empty": ""}
    with OpenwopClient("http://127.0.0.1:1", headers=headers) as client:
        assert all(client.settings.default_headers()[name] == value for name, value in headers.items())


async def test_async_repr_never_shows_the_key() -> None:
    async with AsyncOpenwopClient("http://127.0.0.1:1", api_key=KEY) as client:
        assert KEY not in repr(client)


def test_warns_when_a_key_would_cross_the_network_in_clear() -> None:
    with pytest.warns(InsecureTransportWarning, match="unencrypted"):
        OpenwopClient("http://openwop.example.com", api_key=KEY).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OpenwopClient("http://127.0.0.1:3737", api_key=KEY).close()
        OpenwopClient("http://localhost:3737", api_key=KEY).close()
        OpenwopClient("https://openwop.example.com", api_key=KEY).close()
        OpenwopClient("http://openwop.example.com").close()  # no key, nothing to leak


# -- the one description of each setting ----------------------------------------------------------------


def test_the_client_defaults_and_the_retry_policy_come_from_the_description():
    with OpenwopClient("http://127.0.0.1:1") as client:
        assert client.settings.timeout == TIMEOUT.default
        assert client.retry.max_attempts == MAX_ATTEMPTS.default
    field = RetryPolicy.model_fields["max_attempts"]
    assert field.title == MAX_ATTEMPTS.label
    with pytest.raises(ValueError, match="less than or equal to 100"):
        RetryPolicy(max_attempts=101)


@pytest.mark.parametrize(
    ("value", "text", "expected"),
    [(12, False, 12.0), ("12", True, 12.0), (" 0.5 ", True, 0.5), (float("inf"), False, float("inf"))],
)
def test_a_number_setting_reads_numbers_and_with_text_numbers_written_as_text(value, text, expected):
    assert TIMEOUT.check(value, text=text) == expected


@pytest.mark.parametrize("value", [0, -1, "12", True, float("nan"), None, [30]])
def test_a_number_setting_refuses_the_rest_naming_the_field_and_the_rule(value):
    with pytest.raises(ConfigurationError, match=r"^my timeout must be a positive number of seconds, got "):
        TIMEOUT.check(value, shown="my timeout")


def test_switches_bounds_and_secrets_in_messages():
    assert VERIFY.check("off", text=True) is False
    assert MAX_ATTEMPTS.check("7", text=True) == 7
    with pytest.raises(ConfigurationError, match="max_attempts must be a whole number from 1 to 100, got 101"):
        MAX_ATTEMPTS.check(101)
    with pytest.raises(ConfigurationError, match="verify must be true or false, got 'maybe'"):
        VERIFY.check("maybe", text=True)
    with pytest.raises(ConfigurationError) as caught:
        API_KEY.check(3)
    assert "3" not in str(caught.value)  # a secret setting's value is never echoed


def test_every_setting_has_a_label_a_help_text_and_a_json_schema():
    for setting in CLIENT_SETTINGS:
        assert setting.label and setting.help.endswith("."), setting.name
        assert setting.json_schema()["type"][0] in ("string", "number", "integer", "boolean", "object")
    assert TIMEOUT.json_schema() == {"type": ["number", "null"], "exclusiveMinimum": 0}
    assert API_KEY.json_schema()["format"] == "password"


def test_tls_verification_off_with_a_ca_bundle_is_refused_naming_both_fields():
    assert verify_option(True, "/ca.pem") == "/ca.pem"
    assert verify_option(False, None) is False
    with pytest.raises(ConfigurationError) as caught:
        verify_option(False, "/ca.pem", names=("verify_tls", "ca_bundle_path"))
    message = str(caught.value)
    assert "verify_tls is off but ca_bundle_path is set" in message
    assert "keep one: turn verify_tls on" in message and "or clear ca_bundle_path" in message
