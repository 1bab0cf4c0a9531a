"""Where the items come from and which relay route they take: the directus_sources entry, and
Directus' URL and token."""

from __future__ import annotations

import argparse
import json

from clay_relay.config import DirectusSource, RelayConfig
from clay_relay.secrets import PLACEHOLDER
from relay_cli import CommandError
from relay_cli.stack import Stack, StackError


def choose_source(config: RelayConfig, collection: str, target: str, wanted: str | None) -> tuple[str, DirectusSource]:
    """The directus_sources entry that sends COLLECTION to TARGET (one for COLLECTION before one for any)."""
    if target not in config.clay_targets:
        raise CommandError(
            f"no Clay target {target!r} in relay.json; its targets: {', '.join(sorted(config.clay_targets)) or 'none'}"
        )
    sources = config.directus_sources
    fitting = [n for n, s in sources.items() if s.clay_target == target and s.collection in (None, collection)]
    described = ", ".join(f"{n} ({s.collection or 'any collection'} → {s.clay_target})" for n, s in sources.items())
    if wanted is not None:
        if wanted not in fitting:
            raise CommandError(
                f"source {wanted!r} does not send collection {collection!r} to target {target!r}; "
                f"the sources: {described or 'none'}"
            )
        candidates = [wanted]
    else:
        candidates = [n for n in fitting if sources[n].collection == collection] or fitting
    if not candidates:
        raise CommandError(
            f"no Directus source sends collection {collection!r} to target {target!r}; "
            f"the sources: {described or 'none'} (add one to relay.json, or pick with --source)"
        )
    if len(candidates) > 1:
        raise CommandError(
            f"several sources send {collection!r} to {target!r} ({', '.join(candidates)}): pick one with --source"
        )
    [name] = candidates
    if sources[name].on_create != "send":
        raise CommandError(
            f"source {name!r} skips create events (on_create: skip); the backfill sends items as creates"
        )
    return name, sources[name]


def directus_access(stack: Stack, args: argparse.Namespace) -> tuple[str, str]:
    """Directus' URL and a token: the options (or DIRECTUS_URL/DIRECTUS_TOKEN), else the relay's write-back secret."""
    url, token = args.directus_url, args.directus_token
    if not (url and token):
        write_back = stack.config.clay_callback.directus_writeback if stack.config.clay_callback else None
        name = write_back.api_secret if write_back else "directus-api"
        try:
            api = json.loads(stack.read_secret(name))
            url, token = url or str(api["url"]), token or str(api["token"])
        except (StackError, ValueError, KeyError, TypeError) as error:
            reason = str(error) if isinstance(error, StackError) else 'it is not {"url": …, "token": …}'
            raise CommandError(
                f"which Directus? give --directus-url and --directus-token (or DIRECTUS_URL, DIRECTUS_TOKEN): "
                f"the secret {stack.secret_id(name)!r} cannot tell ({reason})"
            ) from None
        if token.startswith(PLACEHOLDER) or url.startswith(PLACEHOLDER):
            raise CommandError(
                f"the secret {stack.secret_id(name)!r} still holds the template's placeholder: "
                f"give --directus-url and --directus-token (or DIRECTUS_URL, DIRECTUS_TOKEN)"
            )
    if not url.startswith(("https://", "http://")):
        raise CommandError(f"the Directus URL must start with https:// (got {url!r})")
    return url.rstrip("/"), token
