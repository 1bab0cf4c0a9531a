"""How the store reaches its table: the DynamoDB client (the `relay` command's, or the runtime's),
batch reads and writes, and what a conditional write that did not hold looks like."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from clay_relay.aws_clients import AwsClients

if TYPE_CHECKING:
    from collections.abc import Sequence

QUOTA_RETRIES = 8  # tries of a conditional update that other workers keep changing under it


def conditional_failure(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class ConditionFailed(Exception):
    """A conditional update's condition did not hold: `item` is the item as it was (None: absent)."""

    def __init__(self, item: dict[str, Any] | None):
        super().__init__("the condition of the update did not hold")
        self.item = item


class TableAccess:
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

    def query_all(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item a Query finds, page after page."""
        items: list[dict[str, Any]] = []
        while True:
            answer = self._db().query(**request)
            items += answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                return items
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
