"""`relay send directus|clay|loops`: one request to a route of the relay, authenticated as its real
sender would (the stack's own tokens, HMAC keys and Loops signing secret), to the deployed API or
the local gateway. Prints the status and the relay's JSON answer (email addresses masked unless
--reveal); exit status 1 unless 2xx.

Without --data each sends a sample with a fresh email address and key, so that it is a new event
(the same request twice is answered `"duplicate": true`). Secrets are never printed.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import requests

from clay_relay import relay_signature, standard_webhooks
from clay_relay.observability import mask_emails_in
from clay_relay.outbound import redirect_reason, session_without_redirects
from relay_cli import CommandError
from relay_cli.output import print_json, read_json_argument
from relay_cli.stack import Stack

TIMEOUT_SECONDS = 30


def register(commands) -> None:
    send = commands.add_parser("send", help="send a test request to a route, authenticated like its real sender")
    sub = send.add_subparsers(dest="send_command", required=True, metavar="ROUTE")

    directus = sub.add_parser("directus", help="POST /directus/<source> as a Directus flow does ({{$trigger}})")
    directus.add_argument("--source", help="relay.json's directus_sources entry (default: the first)")
    directus.add_argument("--event", choices=("create", "update", "delete"), default="create")
    directus.add_argument("--key", help="the item key (default: a new one)")
    directus.add_argument("--data", help="the item's fields: JSON or @file.json (default: a sample lead)")
    directus.add_argument("--reveal", action="store_true", help="print email addresses unmasked")
    directus.set_defaults(run=send_directus)

    clay = sub.add_parser("clay", help="POST /clay/enriched as Clay's HTTP API column does")
    clay.add_argument("--data", help="the enriched lead: JSON or @file.json (default: a sample, ICP 85: outreach)")
    clay.add_argument("--hmac", action="store_true", help="sign the body with the first hmac_secret key instead")
    clay.add_argument("--reveal", action="store_true", help="print email addresses unmasked")
    clay.set_defaults(run=send_clay)

    loops = sub.add_parser("loops", help="POST /loops/webhook (signed as Loops signs) or /loops/contacts|events")
    loops.add_argument("kind", choices=("webhook", "contact", "event"))
    loops.add_argument("--data", help="the request body: JSON or @file.json (default: a sample)")
    loops.add_argument("--reveal", action="store_true", help="print email addresses unmasked")
    loops.set_defaults(run=send_loops)


def _sample_email() -> str:
    return f"relay-test-{uuid.uuid4().hex[:10]}@example.com"


def _token_header(header: str, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if header.lower() == "authorization" else {header: token}


def encode(body: object) -> bytes:
    """The bytes sent (and signed): compact JSON, UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def directus_body(event: str, collection: str, key: object, fields: object) -> dict:
    """What a Directus Flow's `{{$trigger}}` is for an item created, updated or deleted."""
    if event == "create":
        return {"event": f"{collection}.items.create", "collection": collection, "key": key, "payload": fields}
    if event == "update":
        return {"event": f"{collection}.items.update", "collection": collection, "keys": [key], "payload": fields}
    return {"event": f"{collection}.items.delete", "collection": collection, "keys": [key], "payload": [key]}


def _post(stack: Stack, args: argparse.Namespace, path: str, body: object, headers: dict[str, str]) -> int:
    """Posts encode(body), exactly the bytes that were signed; prints the answer; 0 for a 2xx."""
    raw = encode(body)
    headers = {"Content-Type": "application/json", **headers}
    url = stack.api_url.rstrip("/") + path
    try:
        answer = session_without_redirects().post(
            url, data=raw, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
        )
    except requests.RequestException as error:
        raise CommandError(f"POST {url}: {type(error).__name__}: {error}") from None
    if 300 <= answer.status_code < 400:  # the relay's routes never redirect: the signed request goes nowhere else
        raise CommandError(f"POST {url}: {redirect_reason(answer.status_code, answer.headers.get('Location'), url)}")
    try:
        content: object = answer.json()
    except ValueError:
        content = answer.text
    if not args.reveal:
        body, content = mask_emails_in(body), mask_emails_in(content)
    if args.json:
        print_json({"url": url, "status": answer.status_code, "sent": body, "answer": content})
    else:
        print(f"POST {url}")
        print(f"HTTP {answer.status_code}")
        print(json.dumps(content, indent=2, ensure_ascii=False) if not isinstance(content, str) else content)
    return 0 if 200 <= answer.status_code < 300 else 1


def _data(args: argparse.Namespace) -> object | None:
    return read_json_argument(args.data, "--data") if args.data else None


def send_directus(stack: Stack, args: argparse.Namespace) -> int:
    sources = stack.config.directus_sources
    name = args.source or next(iter(sources), None)
    if name not in sources:
        raise CommandError(f"no directus source {name!r} in {stack.config_path} (sources: {', '.join(sources)})")
    source = sources[name]
    collection = source.collection or name
    key = args.key or f"relay-test-{uuid.uuid4().hex[:8]}"
    fields = _data(args)
    if fields is None:
        fields = {"email": _sample_email(), "first_name": "Ada", "last_name": "Lovelace", "company": "Example Ltd"}
    body = directus_body(args.event, collection, key, fields)
    token = stack.first_token(source.tokens_secret)
    return _post(stack, args, f"/directus/{name}", body, _token_header("authorization", token))


def send_clay(stack: Stack, args: argparse.Namespace) -> int:
    callback = stack.config.clay_callback
    if callback is None:
        raise CommandError(f"{stack.config_path} has no clay_callback: /clay/enriched answers 404")
    lead = _data(args)
    if lead is None:
        lead = {
            "email": _sample_email(),
            "first_name": "Grace",
            "last_name": "Hopper",
            "company_name": "Example Co",
            "job_title": "VP Engineering",
            "employee_count": "1,200",
            "industry": "Software",
            "icp_score": "85",
            "personalized_opener": "Loved your talk on compilers.",
        }
    if not args.hmac:
        token = stack.first_token(callback.tokens_secret)
        return _post(stack, args, "/clay/enriched", lead, _token_header(callback.token_header, token))
    if not callback.hmac_secret:
        raise CommandError(f"{stack.config_path} sets no clay_callback.hmac_secret: send without --hmac")
    key = stack.first_token(callback.hmac_secret)
    signature = relay_signature.sign(key, encode(lead))
    return _post(stack, args, "/clay/enriched", lead, {callback.hmac_header: signature})


def send_loops(stack: Stack, args: argparse.Namespace) -> int:
    body = _data(args)
    if args.kind == "webhook":
        settings = stack.config.loops_webhook
        if settings is None:
            raise CommandError(f"{stack.config_path} has no loops_webhook: /loops/webhook answers 404")
        if body is None:
            email, contact_id = _sample_email(), f"relay-test-{uuid.uuid4().hex[:8]}"
            body = {
                "eventName": "contact.created",
                "eventTime": int(time.time()),
                "webhookSchemaVersion": "1.0.0",
                "contactIdentity": {"id": contact_id, "email": email, "userId": None},
                "contact": {
                    "id": contact_id,
                    "email": email,
                    "firstName": "Katherine",
                    "lastName": "Johnson",
                    "source": "API",
                    "subscribed": True,
                    "userGroup": "",
                    "userId": None,
                },
            }
        webhook_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
        secret = stack.first_token(settings.signing_secret)
        try:
            signature = standard_webhooks.sign(secret, webhook_id, timestamp, encode(body))
        except ValueError as error:
            raise CommandError(f"secret {stack.secret_id(settings.signing_secret)!r}: {error}") from None
        headers = {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
        return _post(stack, args, "/loops/webhook", body, headers)
    forwarding = stack.config.loops_forwarding
    if forwarding is None:
        raise CommandError(f"{stack.config_path} has no loops_forwarding: /loops/{args.kind}s answers 404")
    if body is None and args.kind == "contact":
        body = {"email": _sample_email(), "firstName": "Alan", "lastName": "Turing", "companyName": "Example Labs"}
    elif body is None:
        body = {"email": _sample_email(), "eventName": "relay_test", "eventProperties": {"plan": "test"}}
    token = stack.first_token(forwarding.tokens_secret)
    return _post(stack, args, f"/loops/{args.kind}s", body, _token_header(forwarding.token_header, token))
