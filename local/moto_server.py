"""The embedded AWS emulator: moto's server with its DynamoDB backend serialized, and its SQS
queues no longer losing messages sent while a message is deleted.

moto runs each request on its own thread. Its TransactWriteItems saves a deep copy of every table
it touches and, when the transaction is cancelled (a condition failed), puts the copies back, so
a write another thread made meanwhile is lost (and the table's stream shard is swapped); and the
copy costs time in proportion to the table, for every transaction. Here:

- one lock is held around every DynamoDB backend call, as DynamoDB's own isolation would;
- TransactWriteItems checks every item's condition first and writes only when all hold (under
  the lock nothing changes in between), so a cancelled transaction writes nothing and nothing
  is copied. Its answer is moto's own: the same cancellation reasons per item, in order.

SQS: moto deletes a message by rebuilding the queue's message list from a copy and assigning it
back, without the lock its sends take, so a message sent (an SNS delivery) while a delete runs
over a long queue vanished: the 10,000-order soak lost 9 that way. Here a delete holds the
queue's own lock, which every send takes to append.

Dispatch: for every request moto finds the service by listing its own package directory
(`list_of_moto_modules`: a directory read and a stat per module), under the lock every request's
dispatch takes. Profiled (py-spy) while the soak drained, that dispatch was a third of the
emulator's busy time, and requests queued on the lock. The list never changes while the server
runs: here it is read once.

Usage: python moto_server.py -H HOST -p PORT
"""
import functools
import sys
import threading

import moto.backends
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.sqs.models import Queue

_LOCK = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return call


def _transact_write_items(self, transact_items):
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen = set()
    checked = []
    reasons = []
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        table = self.get_table(op["TableName"])
        if op_type == "Put":
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        unique = (op["TableName"], str(dict(sorted(key.items()))))
        if unique in seen:
            raise MultipleTransactionsException()
        seen.add(unique)
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None and not get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current):
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
        else:
            reasons.append((None, None, None))
        checked.append((op_type, op, key))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    for op_type, op, key in checked:
        common = dict(
            condition_expression=op.get("ConditionExpression"),
            expression_attribute_names=op.get("ExpressionAttributeNames"),
            expression_attribute_values=op.get("ExpressionAttributeValues"),
        )
        if op_type == "Put":
            self.put_item(op["TableName"], op["Item"], **common)
        elif op_type == "Delete":
            self.delete_item(op["TableName"], key, **common)
        elif op_type == "Update":
            self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"], **common)


DynamoDBBackend.transact_write_items = _transact_write_items

for _name, _value in list(vars(DynamoDBBackend).items()):
    if callable(_value) and not _name.startswith("__"):
        setattr(DynamoDBBackend, _name, _serialized(_value))

_queue_delete_message = Queue.delete_message


def _delete_message(self, receipt_handle):
    # add_message appends under this lock (a Condition over an RLock), so nothing is appended
    # between the copy and the assignment.
    with self._messages_lock:
        return _queue_delete_message(self, receipt_handle)


Queue.delete_message = _delete_message

# A tuple: the dispatcher only tests membership (`host in list_of_moto_modules()`).
_MOTO_MODULES = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MOTO_MODULES

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
