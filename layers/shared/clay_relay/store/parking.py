"""Destinations that are down, and the jobs parked while they are (clay_relay.worker.parking).

Items:
- `lane#<lane>`: a lane that is down or still has parked jobs. `down_since` and `reason` while it is
  down; `probe_until`: until when one parked job is the lane's probe (one per `probe_seconds`, whichever
  worker parks first); `release_until`: until when a release under way (or the jobs it let go) has the
  lane; `more`: parked jobs remain after a release. In the index's `lanes` partition (by `at`, when it
  went down) as long as it is down or holds parked jobs, so that one Query lists them.
- `parked#<lane>#<message id>`: a parked job: its message's `receipt` handle (what releases it), in
  the index's `parked#<lane>` partition by `at`, when the job was accepted (released oldest first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from clay_relay.store.access import TableAccess, conditional_failure

INDEX = "lead-timeline"
DOWN_LANES = "lanes"  # the index partition of the lanes that are down or hold parked jobs
KEEP_SECONDS = 86_400  # a parked entry outlives its message's hiding by a day (TTL), then goes by itself


@dataclass(frozen=True)
class ParkedJob:
    message_id: str
    receipt: str  # the receipt handle of the message's receive that parked it
    accepted_at: float


@dataclass(frozen=True)
class LaneState:
    lane: str
    down_since: float | None  # None: back up (a release has begun), or never went down
    reason: str
    releasing_until: float  # 0: no release under way
    more: bool  # parked jobs remain to be released
    probe_until: float = 0.0  # a parked job is due to try the lane by then (0: none)

    def has_parked(self, now: float) -> bool:
        """Jobs may be parked and no release has the lane: a delivery that went well releases them."""
        return (self.down_since is not None or self.more) and self.releasing_until <= now


def _number(item: dict[str, Any], name: str) -> float | None:
    return float(item[name]["N"]) if name in item else None


def _state(item: dict[str, Any]) -> LaneState:
    return LaneState(
        lane=item["pk"]["S"].removeprefix("lane#"),
        down_since=_number(item, "down_since"),
        reason=item.get("reason", {}).get("S", ""),
        releasing_until=_number(item, "release_until") or 0.0,
        more=item.get("more", {}).get("BOOL", False),
        probe_until=_number(item, "probe_until") or 0.0,
    )


class ParkedLanes(TableAccess):
    """Lanes that are down, and their parked jobs."""

    def mark_down(self, lane: str, reason: str, now: float, probe_seconds: int) -> bool:
        """The lane is down (since now, unless it already was). True when the caller is to keep the
        lane's probe: no other parked job is due to try it within `probe_seconds`."""
        names = {"#lead": "lead", "#at": "at"}
        values = {
            ":now": {"N": f"{now:.3f}"},
            ":reason": {"S": reason[:1000] or "unknown"},
            ":lanes": {"S": DOWN_LANES},
        }
        update = (
            "SET down_since = if_not_exists(down_since, :now), reason = :reason, "
            "#lead = :lanes, #at = if_not_exists(#at, :now)"
        )
        try:
            self._db().update_item(
                TableName=self.name,
                Key={"pk": {"S": f"lane#{lane}"}},
                UpdateExpression=update + ", probe_until = :probe",
                ConditionExpression="attribute_not_exists(probe_until) OR probe_until <= :now",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":probe": {"N": f"{now + probe_seconds:.3f}"}},
            )
        except ClientError as error:
            if not conditional_failure(error):
                raise
        else:
            return True
        self._db().update_item(
            TableName=self.name,
            Key={"pk": {"S": f"lane#{lane}"}},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return False

    def park(self, lane: str, jobs: list[ParkedJob], now: float, hidden_seconds: float) -> None:
        """Record the receipt of each job parked (one batch write per 25)."""
        expires = str(int(now + hidden_seconds + KEEP_SECONDS))
        self.write_batch(
            [
                {
                    "pk": {"S": f"parked#{lane}#{job.message_id}"},
                    "lead": {"S": f"parked#{lane}"},
                    "at": {"N": f"{job.accepted_at:.3f}"},
                    "receipt": {"S": job.receipt},
                    "parked_at": {"N": f"{now:.3f}"},
                    "expires_at": {"N": expires},
                }
                for job in jobs
            ]
        )

    def lane_state(self, lane: str) -> LaneState | None:
        item = self._db().get_item(TableName=self.name, Key={"pk": {"S": f"lane#{lane}"}}, ConsistentRead=True)
        return _state(item["Item"]) if "Item" in item else None

    def start_release(self, lane: str, now: float, lease_seconds: float) -> bool:
        """Take the lane's release (for `lease_seconds`): the lane is back. False when there is nothing
        to release, or another worker has it."""
        try:
            self._db().update_item(
                TableName=self.name,
                Key={"pk": {"S": f"lane#{lane}"}},
                UpdateExpression="SET release_until = :lease, more = :true REMOVE down_since, probe_until",
                ConditionExpression="(attribute_exists(down_since) OR more = :true) "
                "AND (attribute_not_exists(release_until) OR release_until <= :now)",
                ExpressionAttributeValues={
                    ":now": {"N": f"{now:.3f}"},
                    ":lease": {"N": f"{now + lease_seconds:.3f}"},
                    ":true": {"BOOL": True},
                },
            )
        except ClientError as error:
            if not conditional_failure(error):
                raise
            return False
        return True

    def parked(self, lane: str, at_most: int) -> list[ParkedJob]:
        """The lane's parked jobs, oldest first, at most `at_most` (the index is eventually
        consistent: a job parked a moment ago may be missing, and is released by the next release)."""
        request = {**self._partition(f"parked#{lane}"), "Limit": at_most}
        jobs: list[ParkedJob] = []
        while len(jobs) < at_most:
            answer = self._db().query(**request)
            jobs += [
                ParkedJob(item["pk"]["S"].rsplit("#", 1)[1], item["receipt"]["S"], float(item["at"]["N"]))
                for item in answer.get("Items", [])
            ]
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
            request["Limit"] = at_most - len(jobs)
        return jobs[:at_most]

    def unpark(self, lane: str, message_ids: list[str]) -> None:
        self.write_batch([], [f"parked#{lane}#{message_id}" for message_id in message_ids])

    def end_release(self, lane: str, until: float, more: bool) -> None:
        """The release let its jobs go: the lane is left to them until `until`. Without `more` parked
        jobs (and unless it went down again meanwhile), the lane leaves the list of down lanes."""
        values: dict[str, Any] = {":until": {"N": f"{until:.3f}"}}
        if more:
            self._db().update_item(
                TableName=self.name,
                Key={"pk": {"S": f"lane#{lane}"}},
                UpdateExpression="SET release_until = :until",
                ExpressionAttributeValues=values,
            )
            return
        try:
            self._db().update_item(
                TableName=self.name,
                Key={"pk": {"S": f"lane#{lane}"}},
                UpdateExpression="SET release_until = :until REMOVE more, #lead, #at",
                ConditionExpression="attribute_not_exists(down_since)",
                ExpressionAttributeNames={"#lead": "lead", "#at": "at"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not conditional_failure(error):
                raise
            self._db().update_item(  # down again: it stays listed, its new parked jobs wait for the next release
                TableName=self.name,
                Key={"pk": {"S": f"lane#{lane}"}},
                UpdateExpression="SET release_until = :until REMOVE more",
                ExpressionAttributeValues=values,
            )

    def down_lanes(self) -> list[LaneState]:
        """The lanes that are down or hold parked jobs (for `relay status` and the console)."""
        return [_state(item) for item in self.query_all(self._partition(DOWN_LANES))]

    def parked_count(self, lane: str) -> int:
        """How many jobs the lane holds parked (a counting Query: read by operators, not the worker)."""
        request = {**self._partition(f"parked#{lane}"), "Select": "COUNT"}
        total = 0
        while True:
            answer = self._db().query(**request)
            total += int(answer.get("Count", 0))
            if "LastEvaluatedKey" not in answer:
                return total
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _partition(self, partition: str) -> dict[str, Any]:
        """A Query of one partition of the index, oldest `at` first."""
        return {
            "TableName": self.name,
            "IndexName": INDEX,
            "KeyConditionExpression": "#lead = :lead",
            "ExpressionAttributeNames": {"#lead": "lead"},
            "ExpressionAttributeValues": {":lead": {"S": partition}},
        }
