"""Static bearer tokens (what Directus can send): accepted when they match an active token,
rejected otherwise, and rejected when the relay cannot tell (fail closed)."""

from __future__ import annotations

import base64
import time

import pytest

from clay_relay import auth
from clay_relay.auth import presented_token, require_token, require_webhook_signature, token_matches
from clay_relay.errors import Unauthorized

SECRET = "directus-tokens"  # TEST_SECRETS: "directus-token-current,directus-token-next"


def headers(value: str | None) -> dict[str, str]:
    return {} if value is None else {"authorization": value}


@pytest.mark.parametrize(
    "value",
    ["Bearer directus-token-current", "bearer directus-token-current", "  Bearer   directus-token-current  "],
)
def test_bearer_token_is_accepted(aws, value):
    require_token(headers(value), SECRET)


def test_both_active_tokens_are_accepted_during_a_rotation(aws):
    require_token(headers("Bearer directus-token-current"), SECRET)
    require_token(headers("Bearer directus-token-next"), SECRET)


def test_token_without_scheme_is_accepted(aws):
    require_token(headers("directus-token-next"), SECRET)


@pytest.mark.parametrize(
    "value",
    [
        "Bearer wrong-token",
        "Bearer directus-token-curren",  # a prefix of a real token
        "Bearer directus-token-current-and-more",
        "Bearer directus-token-current,directus-token-next",  # the secret's raw value is no token
        "Basic directus-token-current",
        "Bearer",
    ],
)
def test_wrong_token_is_unauthorized(aws, value):
    with pytest.raises(Unauthorized):
        require_token(headers(value), SECRET)


@pytest.mark.parametrize("value", [None, "", "   ", "Bearer ", "Bearer    "])
def test_missing_or_empty_token_is_unauthorized(aws, value):
    with pytest.raises(Unauthorized):
        require_token(headers(value), SECRET)


def test_missing_secret_is_unauthorized_whatever_the_token(aws):
    with pytest.raises(Unauthorized) as rejected:
        require_token(headers("Bearer directus-token-current"), "no-such-secret")
    assert rejected.value.status == 401
    assert "not configured" in rejected.value.message


@pytest.mark.parametrize("value", ["[]", "  ,  ,", "[not json"])
def test_secret_without_any_readable_token_is_unauthorized(aws, put_secret, value):
    put_secret(SECRET, value)
    with pytest.raises(Unauthorized):
        require_token(headers("Bearer [not json"), SECRET)
    with pytest.raises(Unauthorized):
        require_token(headers("Bearer directus-token-current"), SECRET)


def test_tokens_secret_may_be_a_json_list(aws, put_secret):
    put_secret(SECRET, '["alpha-token", "beta-token"]')
    require_token(headers("Bearer alpha-token"), SECRET)
    require_token(headers("Bearer beta-token"), SECRET)
    with pytest.raises(Unauthorized):
        require_token(headers("Bearer directus-token-current"), SECRET)


def test_tokens_secret_may_separate_tokens_by_commas_spaces_or_new_lines(aws, put_secret):
    put_secret(SECRET, " alpha-token, beta-token\ngamma-token  delta-token\n")
    for token in ("alpha-token", "beta-token", "gamma-token", "delta-token"):
        require_token(headers(f"Bearer {token}"), SECRET)
    with pytest.raises(Unauthorized):
        require_token(headers("Bearer alpha-token, beta-token"), SECRET)


def test_a_rotated_out_token_stops_working_once_the_secret_changes(aws, put_secret):
    require_token(headers("Bearer directus-token-current"), SECRET)
    put_secret(SECRET, "directus-token-next")  # SECRETS_CACHE_SECONDS=0 in the aws fixture
    with pytest.raises(Unauthorized):
        require_token(headers("Bearer directus-token-current"), SECRET)
    require_token(headers("Bearer directus-token-next"), SECRET)


def test_rejected_token_never_appears_in_the_logs(aws, logs):
    with pytest.raises(Unauthorized):
        require_token(headers("Bearer s3cr3t-guess-8c1f"), SECRET)
    assert "request rejected" in logs.messages("WARNING")
    assert "s3cr3t-guess-8c1f" not in logs.text
    assert "directus-token-current" not in logs.text


def test_presented_token_strips_the_bearer_scheme_only():
    assert presented_token({"authorization": "Bearer abc"}) == "abc"
    assert presented_token({"authorization": "abc"}) == "abc"
    assert presented_token({"authorization": "Token abc"}) == "Token abc"
    assert presented_token({}) == ""


def test_empty_presented_token_never_matches_even_an_empty_active_token():
    assert token_matches("abc", ("xyz", "abc"))
    assert not token_matches("", ("",))
    assert not token_matches("abc", ())


def test_a_loops_webhook_with_a_bad_signature_is_logged_and_counted_like_any_rejection(
    aws, put_secret, logs, monkeypatch
):
    counted = []
    monkeypatch.setattr(auth, "count", lambda name, *args, **kwargs: counted.append(name))
    put_secret("loops-webhook-secret", "whsec_" + base64.b64encode(b"loops-signing-key-0001").decode())
    signed = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,Zm9v"}
    with pytest.raises(Unauthorized):
        require_webhook_signature(signed, b"{}", "loops-webhook-secret", tolerance_seconds=300)
    assert "request rejected" in logs.messages("WARNING")
    assert counted == ["RequestsUnauthorized"]
