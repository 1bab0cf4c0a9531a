"""The relay's table: the worker's claims on events (deduplication, and the claim's ledger entry),
the receiver's advisory duplicate check, and items read and written by key (the ledger, the spend
guard's counters). Clay quota and destination status are its `Counters`."""

from __future__ import annotations

import enum
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.store.access import ConditionFailed, conditional_failure
from clay_relay.store.counters import Counters
from clay_relay.store.parking import ParkedLanes


def _dedupe_until(item: dict[str, Any]) -> int:
    """The end of a claim's dedupe window (a claim from before the ledger: its `expires_at`)."""
    return int((item.get("dedupe_until") or item.get("expires_at") or {"N": "0"})["N"])


class Claim(enum.Enum):
    OWNED = "owned"  # this job delivers the event
    DUPLICATE = "duplicate"  # another job of the same event has it
    DELIVERED = "delivered"  # this job already delivered it (a repeat of its message)
    UNCONFIRMED = "unconfirmed"  # this job was sending it when its worker stopped: outcome unknown


class RelayTable(Counters, ParkedLanes):
    """The table (see clay_relay.store for its items)."""

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
            if not conditional_failure(error):
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

    # --- items by key, and the lead-timeline index (the ledger's) -----------------------------------
    def get(self, pk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = (
            self._db().get_item(TableName=self.name, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
        )
        return item

    def get_many(self, pks: list[str]) -> list[dict[str, Any]]:
        return self._batch_get([{"pk": {"S": pk}} for pk in dict.fromkeys(pks)])

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
            if not conditional_failure(error):
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
            if not conditional_failure(error):
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
        return self.query_all(request)

    def delete(self, pks: list[str]) -> None:
        self.write_batch([], pks)
