"""The only module that talks to DynamoDB: one table for deduplication claims, Clay quota and the
lead ledger.

Items (partition key `pk`; hashed ids spread them over partitions):
- `event#<event_id>`: the worker's claim on an event: `job_id`, `dedupe_until`; for destinations
  without an idempotency key also `sending_since` / `delivered_at`. The claim of a job about a lead
  is also its ledger entry (`lead`, `at`, `stage`, ...: see clay_relay.ledger), kept until
  `expires_at` (TTL: the end of the dedupe window or of the ledger's retention, the later).
- `clay-quota#<webhook id>`: submissions `used` of one Clay webhook URL and its `quota`.
- `status#<destination>`: the destination's last failure (`last_error`, `last_error_at`,
  `last_error_kind`: retrying or dead-lettered, `last_error_origin`), for `relay status`. Written
  once per batch and destination that failed, never when every delivery succeeded.
- `trip#`, `link#`, `ledger#`: the ledger's round trips (a trip also keeps which Clay targets the person
  went to, and when: the spend guard's one-row-per-person check), alias links and failure entries.
- `feedback#<email hash>`: per field of the lead's Directus items, the mark (event time) and value of
  the Loops feedback last applied (clay_relay.directus_feedback keeps them in event-time order).
- `clay-budget#<target>` (run-time budget, rows held) and `clay-budget#<target>#<YYYY-MM>` (rows sent,
  skipped and shadowed per day and month): the spend guard's counters (clay_relay.spend).
The index `lead-timeline` (partition `lead`, sort `at`) holds every ledger entry: one Query gives a
lead's timeline, another the round trips that are overdue.

Cost per relayed event (see docs/performance.md): one conditional put (the claim) plus one conditional
update per batch and URL (the quota reservation) and, for Clay rows, one batch write per batch (round
trips and links); the receiver only reads.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.aws_clients import AwsClients

if TYPE_CHECKING:
    from collections.abc import Sequence

QUOTA_RETRIES = 8
STATUS_DAYS = 30  # a destination's last failure is forgotten after this long (TTL)


def _dedupe_until(item: dict[str, Any]) -> int:
    """The end of a claim's dedupe window (a claim from before the ledger: its `expires_at`)."""
    return int((item.get("dedupe_until") or item.get("expires_at") or {"N": "0"})["N"])


def _conditional_failure(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


@dataclass(frozen=True)
class Reservation:
    granted: int
    used_before: int
    used_after: int
    quota: int

    @property
    def exhausted(self) -> bool:
        return self.used_after >= self.quota


class ConditionFailed(Exception):
    """A conditional update's condition did not hold: `item` is the item as it was (None: absent)."""

    def __init__(self, item: dict[str, Any] | None):
        super().__init__("the condition of the update did not hold")
        self.item = item


class Claim(enum.Enum):
    OWNED = "owned"  # this job delivers the event
    DUPLICATE = "duplicate"  # another job of the same event has it
    DELIVERED = "delivered"  # this job already delivered it (a repeat of its message)
    UNCONFIRMED = "unconfirmed"  # this job was sending it when its worker stopped: outcome unknown


@dataclass(frozen=True)
class Failure:
    """The last failure of a destination: `kind` is "retrying" or "dead-lettered"."""

    error: str
    kind: str
    origin: str
    at: float


class RelayTable:
    """The table, through `client` (the `relay` command's) or the DynamoDB client of `clients`;
    without either, of the current runtime (clay_relay.runtime)."""

    def __init__(self, table_name: str | None = None, client: Any = None, *, clients: AwsClients | None = None):
        if table_name is None or (client is None and clients is None):
            from clay_relay.runtime import get_runtime

            runtime = get_runtime()
            table_name = table_name or runtime.settings.table_name
            clients = clients or runtime.aws
        self.name = table_name
        self._client = client
        self._clients = clients

    def _db(self) -> Any:
        if self._client is not None:
            return self._client
        if self._clients is None:  # unreachable: __init__ always sets one of the two
            raise RuntimeError("RelayTable has neither a DynamoDB client nor AWS clients")
        return self._clients.client("dynamodb")

    # --- deduplication -------------------------------------------------------------------------
    def already_seen(self, event_ids: list[str]) -> set[str]:
        """Which events have a live claim. Advisory only (the worker's claim is the real
        dedupe), so a failing read is treated as 'none seen' and never rejects an event."""
        if not event_ids:
            return set()
        now = int(time.time())
        keys = [{"pk": {"S": f"event#{e}"}} for e in dict.fromkeys(event_ids)]
        try:
            items = self._batch_get(keys, "pk, dedupe_until, expires_at", consistent=False)
        except (BotoCoreError, ClientError):
            return set()
        return {item["pk"]["S"].removeprefix("event#") for item in items if _dedupe_until(item) > now}

    def claim(
        self,
        event_id: str,
        job_id: str,
        window_seconds: int,
        *,
        sending: bool = False,
        replayed: bool = False,
        ledger: dict[str, Any] | None = None,
    ) -> Claim:
        """Claim the event for this job: OWNED the first time, and for a redelivery or replay of
        the same job; DUPLICATE when another job has it. With `sending` (destinations without an
        idempotency key, claimed just before the request) the claim also says a request is under
        way, so that a redelivery learns whether it went out: DELIVERED once `mark_delivered`
        ran, UNCONFIRMED when the worker stopped between the claim and the outcome. A job
        `replayed` by an operator from the dead-letter queue takes over its unconfirmed claim.
        `ledger`: the claim's ledger entry (clay_relay.ledger), stored with it at no extra write."""
        now = int(time.time())
        item = {
            **(ledger or {}),
            "pk": {"S": f"event#{event_id}"},
            "job_id": {"S": job_id},
            "dedupe_until": {"N": str(now + window_seconds)},
        }
        retained = int(item.get("expires_at", {"N": "0"})["N"])
        item["expires_at"] = {"N": str(max(now + window_seconds, retained))}
        if sending:
            item["sending_since"] = {"N": str(now)}
        same_job = "job_id = :job AND attribute_not_exists(delivered_at)"
        if not replayed:
            same_job += " AND attribute_not_exists(sending_since)"
        # Claims written before the ledger have no `dedupe_until`: their `expires_at` is the window's end.
        expired = "dedupe_until < :now OR (attribute_not_exists(dedupe_until) AND expires_at < :now)"
        try:
            self._db().put_item(
                TableName=self.name,
                Item=item,
                ConditionExpression=f"attribute_not_exists(pk) OR {expired} OR ({same_job})",
                ExpressionAttributeValues={":job": {"S": job_id}, ":now": {"N": str(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _conditional_failure(error):
                raise
            old = error.response.get("Item") or {}
            if old.get("job_id", {}).get("S") != job_id:
                return Claim.DUPLICATE
            return Claim.DELIVERED if "delivered_at" in old else Claim.UNCONFIRMED
        return Claim.OWNED

    def mark_delivered(self, event_id: str) -> None:
        """The request of a `sending` claim succeeded: a redelivery of the job is settled."""
        self._db().update_item(
            TableName=self.name,
            Key={"pk": {"S": f"event#{event_id}"}},
            UpdateExpression="SET delivered_at = :now REMOVE sending_since",
            ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
        )

    def release(self, event_id: str) -> None:
        """The request of a `sending` claim certainly failed: the job may claim it again."""
        self._db().update_item(
            TableName=self.name,
            Key={"pk": {"S": f"event#{event_id}"}},
            UpdateExpression="REMOVE sending_since",
        )

    # --- Clay quota ------------------------------------------------------------------------------
    def reserve_submissions(self, webhook_id: str, wanted: int, quota: int, target: str) -> Reservation:
        """Atomically take up to `wanted` submissions of a webhook URL without ever passing
        `quota`, whatever other workers do at the same time (a conditional update each try)."""
        ask, used = min(wanted, quota), None
        if ask <= 0:
            return Reservation(granted=0, used_before=quota, used_after=quota, quota=quota)
        for _ in range(QUOTA_RETRIES):
            try:
                answer = self._db().update_item(
                    TableName=self.name,
                    Key={"pk": {"S": f"clay-quota#{webhook_id}"}},
                    UpdateExpression="ADD used :n SET quota = :quota, target = :target",
                    ConditionExpression="attribute_not_exists(used) OR used <= :most",
                    ExpressionAttributeValues={
                        ":n": {"N": str(ask)},
                        ":most": {"N": str(quota - ask)},
                        ":quota": {"N": str(quota)},
                        ":target": {"S": target},
                    },
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if not _conditional_failure(error):
                    raise
                item = error.response.get("Item")
                used = int(item["used"]["N"]) if item else self.submissions_used(webhook_id)
                ask = min(wanted, quota - used)
                if ask <= 0:
                    return Reservation(granted=0, used_before=used, used_after=used, quota=quota)
                continue
            used_after = int(answer["Attributes"]["used"]["N"])
            return Reservation(granted=ask, used_before=used_after - ask, used_after=used_after, quota=quota)
        # Lost every race to other workers: take nothing now (the rows wait), but do not call the URL used up.
        used = used if used is not None else self.submissions_used(webhook_id)
        return Reservation(granted=0, used_before=used, used_after=used, quota=quota)

    def release_submissions(self, webhook_id: str, count: int) -> None:
        """Give back submissions reserved for requests that never reached Clay."""
        if count > 0:
            self._db().update_item(
                TableName=self.name,
                Key={"pk": {"S": f"clay-quota#{webhook_id}"}},
                UpdateExpression="ADD used :minus",
                ExpressionAttributeValues={":minus": {"N": str(-count)}},
            )

    def submissions_used(self, webhook_id: str) -> int:
        item = (
            self._db()
            .get_item(TableName=self.name, Key={"pk": {"S": f"clay-quota#{webhook_id}"}}, ConsistentRead=True)
            .get("Item")
        )
        return int(item["used"]["N"]) if item else 0

    def submissions(self, webhook_ids: list[str]) -> dict[str, int]:
        """Submissions used per webhook id (0 for a URL never used), in one batch read per 100."""
        used = dict.fromkeys(webhook_ids, 0)
        keys = [{"pk": {"S": f"clay-quota#{webhook_id}"}} for webhook_id in used]
        for item in self._batch_get(keys, "pk, used"):
            used[item["pk"]["S"].removeprefix("clay-quota#")] = int(item.get("used", {"N": "0"})["N"])
        return used

    # --- destination status ----------------------------------------------------------------------
    def note_failures(self, failures: dict[str, Failure]) -> None:
        """Remember each destination's last failure (one write per destination; an older failure
        reported late never replaces a newer one)."""
        for destination, failure in failures.items():
            try:
                self._db().update_item(
                    TableName=self.name,
                    Key={"pk": {"S": f"status#{destination}"}},
                    UpdateExpression=(
                        "SET last_error = :error, last_error_at = :at, last_error_kind = :kind, "
                        "last_error_origin = :origin, expires_at = :expires"
                    ),
                    ConditionExpression="attribute_not_exists(last_error_at) OR last_error_at <= :at",
                    ExpressionAttributeValues={
                        ":error": {"S": failure.error[:1000] or "unknown"},
                        ":at": {"N": f"{failure.at:.3f}"},
                        ":kind": {"S": failure.kind},
                        ":origin": {"S": failure.origin or "unknown"},
                        ":expires": {"N": str(int(failure.at) + STATUS_DAYS * 86_400)},
                    },
                )
            except ClientError as error:
                if not _conditional_failure(error):
                    raise

    def last_failures(self, destinations: list[str]) -> dict[str, Failure]:
        """The last failure noted for each destination that has one."""
        keys = [{"pk": {"S": f"status#{destination}"}} for destination in dict.fromkeys(destinations)]
        return {
            item["pk"]["S"].removeprefix("status#"): Failure(
                error=item["last_error"]["S"],
                kind=item.get("last_error_kind", {}).get("S", "unknown"),
                origin=item.get("last_error_origin", {}).get("S", "unknown"),
                at=float(item["last_error_at"]["N"]),
            )
            for item in self._batch_get(keys)
            if "last_error" in item
        }

    # --- items by key, and the lead-timeline index (the ledger's) -----------------------------------
    def get(self, pk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = (
            self._db().get_item(TableName=self.name, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
        )
        return item

    def get_many(self, pks: list[str]) -> list[dict[str, Any]]:
        return self._batch_get([{"pk": {"S": pk}} for pk in dict.fromkeys(pks)])

    def write_batch(self, puts: list[dict[str, Any]], deletes: Sequence[str] = ()) -> None:
        """Unconditional puts and deletes, 25 per request, retrying what DynamoDB leaves unprocessed. A
        key is written once (DynamoDB refuses a request that names a key twice): its last put wins, and a
        key both put and deleted is put."""
        latest = {item["pk"]["S"]: item for item in puts}
        requests: list[dict[str, Any]] = [{"PutRequest": {"Item": item}} for item in latest.values()]
        requests += [{"DeleteRequest": {"Key": {"pk": {"S": pk}}}} for pk in dict.fromkeys(deletes) if pk not in latest]
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] | None = {self.name: requests[start : start + 25]}
            for _ in range(QUOTA_RETRIES):
                if not pending:
                    break
                answer = self._db().batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or None
            if pending:
                raise RuntimeError(f"DynamoDB left {len(pending[self.name])} ledger writes unprocessed")

    def put(self, item: dict[str, Any]) -> None:
        self._db().put_item(TableName=self.name, Item=item)

    def update_if(self, pk: str, update: str, condition: str, names: dict[str, str], values: dict[str, Any]) -> bool:
        """One conditional update of item `pk`; False when the condition does not hold."""
        try:
            self._db().update_item(
                TableName=self.name,
                Key={"pk": {"S": pk}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not _conditional_failure(error):
                raise
            return False
        return True

    def update(
        self,
        pk: str,
        expression: str,
        values: dict[str, Any] | None = None,
        *,
        names: dict[str, str] | None = None,
        condition: str | None = None,
    ) -> dict[str, Any]:
        """One UpdateItem of the item `pk`; its attributes after the update. ConditionFailed (with
        the item as it was) when `condition` did not hold: nothing was changed."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": {"pk": {"S": pk}},
            "UpdateExpression": expression,
            "ReturnValues": "ALL_NEW",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        if names:
            request["ExpressionAttributeNames"] = names
        if condition:
            request["ConditionExpression"] = condition
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            attributes: dict[str, Any] = self._db().update_item(**request).get("Attributes", {})
        except ClientError as error:
            if not _conditional_failure(error):
                raise
            raise ConditionFailed(error.response.get("Item")) from None
        return attributes

    def query_index(self, index: str, partition: str, *, at_most: float | None = None) -> list[dict[str, Any]]:
        """Every item of one partition of `index` (its `lead`), oldest `at` first, page by page;
        `at_most`: only those at or before that time."""
        condition, values = "#lead = :lead", {":lead": {"S": partition}}
        names = {"#lead": "lead"}
        if at_most is not None:
            condition += " AND #at <= :at"
            values[":at"] = {"N": f"{at_most:.3f}"}
            names["#at"] = "at"
        request: dict[str, Any] = {
            "TableName": self.name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        items: list[dict[str, Any]] = []
        while True:
            answer = self._db().query(**request)
            items += answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                return items
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def delete(self, pks: list[str]) -> None:
        self.write_batch([], pks)

    def _batch_get(
        self, keys: list[dict[str, Any]], projection: str | None = None, *, consistent: bool = True
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            entry: dict[str, Any] = {"Keys": keys[start : start + 100], "ConsistentRead": consistent}
            if projection:
                entry["ProjectionExpression"] = projection
            request: dict[str, Any] | None = {self.name: entry}
            while request:
                answer = self._db().batch_get_item(RequestItems=request)
                items += answer["Responses"].get(self.name, [])
                request = answer.get("UnprocessedKeys") or None
        return items
