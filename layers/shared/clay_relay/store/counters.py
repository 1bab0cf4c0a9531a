"""The table's counters: submissions used per Clay webhook URL (`clay-quota#<webhook id>`), reserved
atomically so that no URL passes its quota under concurrent workers, and each destination's last
failure (`status#<destination>`, for `relay status`). The Clay spend guard's counters build on the
table's conditional `update` (clay_relay.spend.budget)."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from clay_relay.store.access import QUOTA_RETRIES, TableAccess, conditional_failure

STATUS_DAYS = 30  # a destination's last failure is forgotten after this long (TTL)


@dataclass(frozen=True)
class Reservation:
    granted: int
    used_before: int
    used_after: int
    quota: int

    @property
    def exhausted(self) -> bool:
        return self.used_after >= self.quota


@dataclass(frozen=True)
class Failure:
    """The last failure of a destination: `kind` is "retrying" or "dead-lettered"."""

    error: str
    kind: str
    origin: str
    at: float


class Counters(TableAccess):
    """Counters kept in the table, read and moved one conditional update at a time."""

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
                if not conditional_failure(error):
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

    def mark_used_up(self, webhook_id: str, quota: int, target: str) -> None:
        """Count the URL as used up (Clay said it takes no more), whatever was counted before."""
        try:
            self._db().update_item(
                TableName=self.name,
                Key={"pk": {"S": f"clay-quota#{webhook_id}"}},
                UpdateExpression="SET used = :quota, quota = :quota, target = :target",
                ConditionExpression="attribute_not_exists(used) OR used < :quota",
                ExpressionAttributeValues={":quota": {"N": str(quota)}, ":target": {"S": target}},
            )
        except ClientError as error:
            if not conditional_failure(error):
                raise

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
                if not conditional_failure(error):
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
