"""Clay's 50,000-submissions-per-URL limit, scaled down to 5: never exceeded, the next URL of the
pool takes over, and rows wait (never dropped) when the whole pool is used up."""

from __future__ import annotations

import json
import uuid
from collections import Counter


def test_quota_is_never_exceeded_the_pool_rotates_and_held_rows_resume(small_quota_stack):
    stack = small_quota_stack
    tag = uuid.uuid4().hex[:8]
    for key in range(12):
        answer = stack.post_directus(
            {
                "event": "leads.items.create",
                "collection": "leads",
                "key": key,
                "payload": {"email": f"q{key}-{tag}@example.com"},
            },
            source="quota",
        )
        assert answer.status_code == 202

    def quota_rows():
        """Rows Clay took: a request its rate limit refused (429) is no submission, and comes again."""
        return [
            d
            for d in stack.deliveries(destination="clay")
            if d["path"].startswith("/clay/webhooks/quota-") and 200 <= d["status"] < 300
        ]

    stack.wait_for(lambda: len(quota_rows()) >= 10, timeout=30)
    stack.wait_for(lambda: False, timeout=3)  # held rows must not sneak through
    per_url = Counter(d["path"] for d in quota_rows())
    assert per_url == {"/clay/webhooks/quota-1": 5, "/clay/webhooks/quota-2": 5}
    assert all(d["row_created"] for d in quota_rows()), "no submission went past a URL's limit"

    # The operator adds a URL to the pool: the two held rows go there, none is lost or doubled.
    secrets = stack.aws("secretsmanager")
    name = "clay-relay-local/clay-webhooks-quota"
    pool = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
    pool.append({"url": pool[0]["url"].replace("quota-1", "quota-3")})
    secrets.put_secret_value(SecretId=name, SecretString=json.dumps(pool))

    stack.wait_for(lambda: len(quota_rows()) >= 12, timeout=30)
    per_url = Counter(d["path"] for d in quota_rows())
    assert per_url["/clay/webhooks/quota-3"] == 2
    emails = [d["body"]["email"] for d in quota_rows()]
    assert sorted(emails) == sorted(f"q{key}-{tag}@example.com" for key in range(12))
