"""Request authentication: static tokens for senders that can only send static headers (Directus,
Clay), the relay's timestamped HMAC signature for senders that can sign (clay_relay.relay_signature),
and Standard Webhooks (Loops).

Fails closed: no header, no configured token or an unreadable secret is a 401. Every active token
or key is compared in constant time, and all of them are always compared, so timing reveals nothing.
A secret that gives no token (missing, empty, the template's placeholder, only separators such as
",,,") is logged as an error naming the secret and why, for the operator; the caller only learns
that authentication is not configured.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import NoReturn

from clay_relay import relay_signature, standard_webhooks
from clay_relay.errors import Unauthorized
from clay_relay.observability import count, logger
from clay_relay.secrets import SecretUnavailable, read_tokens


def presented_token(headers: Mapping[str, str], header: str = "authorization") -> str:
    """The token in `Authorization: Bearer <token>` (the scheme may be omitted)."""
    value = (headers.get(header.lower()) or "").strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        value = rest.strip()
    return value


def _utf8(text: str) -> bytes:
    # Header values and secrets may hold unpaired surrogates (a JSON event's "\ud800"): they match
    # only themselves and are never an error.
    return text.encode("utf-8", "surrogatepass")


def token_matches(presented: str, active: tuple[str, ...]) -> bool:
    candidate = _utf8(presented)
    matched = False
    for token in active:
        matched |= hmac.compare_digest(candidate, _utf8(token))
    return matched and bool(presented)


def require_token(headers: Mapping[str, str], tokens_secret: str, *, header: str = "authorization") -> None:
    presented = presented_token(headers, header)
    if not presented:
        _reject(f"missing {header} header")
    active = _active_tokens(tokens_secret)
    if not active:
        _reject("authentication is not configured")
    if not token_matches(presented, active):
        _reject("invalid token")


def require_token_or_signature(
    headers: Mapping[str, str],
    body: bytes,
    *,
    tokens_secret: str,
    token_header: str,
    hmac_secret: str | None,
    hmac_header: str,
    accept_body_only: bool = False,
) -> None:
    """A valid signature (when the route has signing keys and the header is present: see
    clay_relay.relay_signature) or a valid static token."""
    signature = (headers.get(hmac_header.lower()) or "").strip()
    if signature and hmac_secret:
        secret = hmac_secret

        def keys() -> tuple[str, ...]:
            active = _active_tokens(secret)
            if not active:
                raise Unauthorized("signature verification is not configured")
            return active

        try:
            body_only = relay_signature.verify(signature, body, keys, accept_body_only=accept_body_only)
        except Unauthorized as error:
            _reject(str(error))
        if body_only:
            # Replayable: counted, so that an operator sees when no sender uses it any more.
            count("SignaturesBodyOnly")
            logger.warning("a body-only signature was accepted (clay_callback.hmac_accept_body_only)")
        return
    require_token(headers, tokens_secret, header=token_header)


def require_webhook_signature(
    headers: Mapping[str, str], body: bytes, signing_secret: str, *, tolerance_seconds: int
) -> str:
    """The message's `webhook-id` when a Standard Webhooks signature of an active secret matches;
    the secret is read only for a message with complete, fresh headers."""

    def secrets() -> tuple[str, ...]:
        return _active_tokens(signing_secret)  # none: fails closed, no key matches

    try:
        return standard_webhooks.verify(headers, body, secrets, tolerance_seconds=tolerance_seconds)
    except Unauthorized as error:
        _reject(str(error))


def _active_tokens(secret: str) -> tuple[str, ...]:
    """The secret's tokens; none (logged as an error, with the reason) when it gives none."""
    try:
        return read_tokens(secret)
    except SecretUnavailable as error:
        logger.error("authentication is not configured", extra={"secret": secret, "reason": str(error)})
        return ()


def _reject(reason: str) -> NoReturn:
    count("RequestsUnauthorized")
    logger.warning("request rejected", extra={"reason": reason})
    raise Unauthorized(reason)
