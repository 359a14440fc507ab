"""The embedded AWS emulator: moto's server with its DynamoDB backend serialized, its SQS
queues no longer losing messages sent while a message is deleted, and its SQS counts fast.

moto runs each request on its own thread. Its TransactWriteItems saves a deep copy of every table
it touches and, when the transaction is cancelled (a condition failed), puts the copies back, so
a write another thread made meanwhile is lost (and the table's stream shard is swapped); and the
copy costs time in proportion to the table, for every transaction. Here:

- one lock is held around every DynamoDB backend call, as DynamoDB's own isolation would;
- TransactWriteItems checks every item's condition first and writes only when all hold (under
  the lock nothing changes in between), so a cancelled transaction writes nothing and nothing
  is copied. Its answer is moto's own: the same cancellation reasons per item, in order.
- TransactWriteItems keeps each ClientRequestToken for 10 minutes, as DynamoDB does (moto
  ignores it): the same token with other TransactItems is refused with
  IdempotentParameterMismatchException, and the same request again after it committed is
  answered as committed without writing again.

SQS: moto deletes a message by rebuilding the queue's message list from a copy and assigning it
back, without the lock its sends take, so a message sent (an SNS delivery) while a delete runs
over a long queue vanished: the 10,000-order soak lost 9 that way. Here a delete holds the
queue's own lock, which every send takes to append.

Dispatch: for every request moto finds the service by listing its own package directory
(`list_of_moto_modules`: a directory read and a stat per module), under the lock every request's
dispatch takes. Profiled (py-spy) while the soak drained, that dispatch was a third of the
emulator's busy time, and requests queued on the lock. The list never changes while the server
runs: here it is read once.

BatchExecuteStatement: moto runs every PartiQL statement by copying every item of every table
into its query engine (time in proportion to the tables, per statement), and its INSERT
overwrites an item with the same key, where DynamoDB refuses it (DuplicateItem). The intake
sends a batch's new orders as `INSERT INTO "table" VALUE {'name': ?, ...}` statements: here such
a statement stores the item when no item has its key and answers DuplicateItem otherwise, as
DynamoDB documents, and a request naming one key twice is refused whole (ValidationException, as
DynamoDB's BatchWriteItem does; undocumented for this call, so the stricter answer); any other
statement still goes to moto's engine.

Contention: DynamoDB cancels a transaction with reason TransactionConflict when another
transaction is in flight on one of its items. Under the lock every transaction here is
instantaneous, so none ever conflicts. With MOTO_TRANSACTION_CONFLICT_MS set (milliseconds; off
when unset or 0), a committed transaction holds its items "in flight" for that long, and a
transaction naming one of them meanwhile is cancelled, nothing written, with TransactionConflict
for that item (None for the others), as DynamoDB answers. The flash-sale run and the soak turn it
on; the demo leaves it off.

SQS receives move a message past maxReceiveCount to the DLQ without that lock either (two
receives racing over one failed with a 500; a delete meanwhile could put it back beside its DLQ
copy): a receive holds the queue's lock too (its long-poll wait releases it).

Speed: moto's SQS walks a queue's messages for every count, reading a slow clock (8 us) per
message, and it counts every queue attribute several times per GetQueueAttributes, on every
SendMessage and once per message a ReceiveMessage returns. On a queue of 5,000 messages a depth
read took 0.7-1.2 s and a receive of 10 messages about 4 s (the soak's intake queue holds
thousands while 10,000 orders are published). Here the clock is time.time(), the three counts
come from one walk, and each call reads the attributes once: 0.8 ms and 5 ms. The counts are
moto's, to the definition. werkzeug's request log (a seventh of the busy time) is off unless
MOTO_REQUEST_LOG is set.

Traces: a Publish's (or PublishBatch's) X-Amzn-Trace-Id header reaches the SQS messages SNS
delivers as their AWSTraceHeader, as SNS with active tracing does (moto drops it).

Port: with `-p 0` the system picks a free port when the server binds it; with MOTO_PORT_FILE
set, the port the server listens on is written to that file (whole, by rename) once it listens.
The runner and the tests start it that way: a port picked by the caller and released before the
server binds it can be taken meanwhile by another emulator (tests start several at once), whose
answers the caller then reads until it stops (CI saw "connection refused" that way).

Usage: python moto_server.py -H HOST -p PORT
"""
import base64
import calendar
import datetime
import functools
import io
import json
import logging
import os
import re
import selectors
import sys
import threading
import time

import moto.backends
import moto.core.responses
import moto.sqs.models
from moto.dynamodb.comparisons import get_filter_expression
from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    DynamodbException,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.core.utils import camelcase_to_underscores
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.sqs.exceptions import InvalidAttributeName
from moto.sns.responses import SNSResponse
from moto.sqs.models import Queue, SQSBackend

_LOCK = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return call


# (table, key) -> until when (time.monotonic()) a committed transaction holds the item in flight.
_IN_FLIGHT = {}
_CONFLICT_WINDOW_SECONDS = float(os.environ.get("MOTO_TRANSACTION_CONFLICT_MS") or 0) / 1000.0


def _conflicts(uniques):
    """Per item, whether a committed transaction still holds it in flight (always False when
    contention is off)."""
    if _CONFLICT_WINDOW_SECONDS <= 0:
        return [False] * len(uniques)
    now = time.monotonic()
    if len(_IN_FLIGHT) > 100_000:
        for stale in [k for k, until in _IN_FLIGHT.items() if until <= now]:
            del _IN_FLIGHT[stale]
    return [_IN_FLIGHT.get(unique, 0.0) > now for unique in uniques]


def _hold_in_flight(uniques):
    if _CONFLICT_WINDOW_SECONDS > 0:
        until = time.monotonic() + _CONFLICT_WINDOW_SECONDS
        for unique in uniques:
            _IN_FLIGHT[unique] = until


def _transact_write_items(self, transact_items):
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen = set()
    uniques = []
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
        uniques.append(unique)
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
    conflicts = _conflicts(uniques)
    if any(conflicts):
        raise TransactionCanceledException(
            [
                ("TransactionConflict", "Transaction is ongoing for the item", None)
                if conflict
                else (None, None, None)
                for conflict in conflicts
            ]
        )
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    _hold_in_flight(uniques)
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


class IdempotentParameterMismatchException(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException"

    def __init__(self):
        super().__init__(
            self.error_type,
            message="Request token was used with different parameters within its idempotency window",
        )


# ClientRequestToken -> (the request's TransactItems, whether it committed, when the window ends)
_TOKENS = {}
_TOKEN_WINDOW_SECONDS = 600
_original_transact_handler = DynamoHandler.transact_write_items


def _transact_write_items_with_token(self):
    token = self.body.get("ClientRequestToken")
    if not token:
        return _original_transact_handler(self)
    request = json.dumps(self.body["TransactItems"], sort_keys=True)
    with _LOCK:
        now = time.time()
        seen = _TOKENS.get(token)
        if seen is not None and seen[2] > now:
            if seen[0] != request:
                raise IdempotentParameterMismatchException()
            if seen[1]:
                return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        if len(_TOKENS) > 100_000:
            for stale in [t for t, (_, _, until) in _TOKENS.items() if until <= now]:
                del _TOKENS[stale]
        try:
            result = _original_transact_handler(self)
        except TransactionCanceledException:
            _TOKENS[token] = (request, False, now + _TOKEN_WINDOW_SECONDS)
            raise
        _TOKENS[token] = (request, True, now + _TOKEN_WINDOW_SECONDS)
        return result


DynamoHandler.transact_write_items = _transact_write_items_with_token

_INSERT = re.compile(r'\s*INSERT\s+INTO\s+"([^"]+)"\s+VALUE\s+\{(.*)\}\s*', re.IGNORECASE | re.DOTALL)
_NAME_PARAMETER = re.compile(r"\s*'([^',]+)'\s*:\s*\?\s*")


def _parameter_insert(statement, parameters):
    """(table, item) for `INSERT INTO "table" VALUE {'a': ?, 'b': ?}` with one parameter per
    name; None for any other statement."""
    match = _INSERT.fullmatch(statement)
    if not match:
        return None
    names = []
    for part in match.group(2).split(","):
        name = _NAME_PARAMETER.fullmatch(part)
        if not name:
            return None
        names.append(name.group(1))
    if len(names) != len(parameters) or len(set(names)) != len(names):
        return None
    return match.group(1), dict(zip(names, parameters))


_moto_batch_execute_statement = DynamoDBBackend.batch_execute_statement


def _key_names(self, table_name):
    table = self.tables[table_name]
    return [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])


DynamoDBBackend._key_names = _key_names


def _batch_execute_statement(self, statements):
    inserts = [_parameter_insert(s["Statement"], s.get("Parameters", [])) for s in statements]
    if not all(inserts):
        return _moto_batch_execute_statement(self, statements)
    keys = [
        (table_name, str(sorted((k, str(v)) for k, v in item.items() if k in self._key_names(table_name))))
        for table_name, item in inserts
        if table_name in self.tables
    ]
    if len(set(keys)) != len(keys):
        # As DynamoDB refuses a BatchWriteItem naming one key twice (whether it refuses such a
        # BatchExecuteStatement is not documented: the stricter answer, so the intake avoids it).
        raise MockValidationException("Provided list of item keys contains duplicates")
    responses = []
    for table_name, item in inserts:
        if table_name not in self.tables:
            responses.append(
                {"Error": {"Code": "ResourceNotFound", "Message": "Requested resource not found"}}
            )
            continue
        key_names = self._key_names(table_name)
        if any(name not in item for name in key_names):
            responses.append(
                {"Error": {"Code": "ValidationError", "Message": "The item lacks a key attribute"}}
            )
            continue
        if self.get_item(table_name, {name: item[name] for name in key_names}) is not None:
            responses.append(
                {"Error": {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}}
            )
            continue
        self.put_item(table_name, item)
        responses.append({"TableName": table_name})
    return responses


DynamoDBBackend.batch_execute_statement = _batch_execute_statement

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

_sqs_receive_message = SQSBackend.receive_message


def _receive_message(self, queue_name, *args, **kwargs):
    # A receive moves a message past maxReceiveCount to the DLQ by removing it from the queue's
    # list without that lock: two receives racing over it failed one with a ValueError (a 500),
    # and a delete running meanwhile would assign back a copy that still held it (in both
    # queues). The whole receive holds the lock; its long-poll wait releases it (a Condition).
    with self.get_queue(queue_name)._messages_lock:
        return _sqs_receive_message(self, queue_name, *args, **kwargs)


SQSBackend.receive_message = _receive_message

# SQS's clock: moto reads it through `unix_time_millis`, which builds a datetime for "now" and
# another for the epoch and subtracts them (8 us a read here), once per message per walk of a
# queue, and a queue is walked for every ReceiveMessage and several times per GetQueueAttributes.
# time.time() is the same instant in the same unit (0.2 us). A given datetime still goes to moto.
_unix_time = moto.sqs.models.unix_time
_unix_time_millis = moto.sqs.models.unix_time_millis


def _sqs_unix_time(dt=None):
    return time.time() if dt is None else _unix_time(dt)


def _sqs_unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _unix_time_millis(dt)


moto.sqs.models.unix_time = _sqs_unix_time
moto.sqs.models.unix_time_millis = _sqs_unix_time_millis


def _counts(queue):
    """The queue's three message counts, by moto's own definitions (visible: now > visible_at;
    delayed: now < delayed_until; ApproximateNumberOfMessages: visible and not delayed), from one
    walk of its messages at one instant."""
    now = time.time() * 1000.0
    visible = hidden = delayed = 0
    for message in list(queue._messages):
        is_visible = now > message.visible_at
        is_delayed = now < message.delayed_until
        visible += is_visible and not is_delayed
        hidden += not is_visible
        delayed += is_delayed
    return {
        "ApproximateNumberOfMessages": visible,
        "ApproximateNumberOfMessagesNotVisible": hidden,
        "ApproximateNumberOfMessagesDelayed": delayed,
    }


def _queue_attributes(self):
    # moto's Queue.attributes, with the counts from one walk instead of three. moto reads this
    # property on every SendMessage (for ContentBasedDeduplication, FIFO or not), so every SNS
    # delivery walked its queue three times.
    counts = _counts(self)
    result = {}
    for attribute in self.BASE_ATTRIBUTES:
        if attribute in counts:
            result[attribute] = counts[attribute]
        else:
            result[attribute] = getattr(self, camelcase_to_underscores(attribute))
    if self.fifo_queue:
        for attribute in self.FIFO_ATTRIBUTES:
            result[attribute] = getattr(self, camelcase_to_underscores(attribute))
    if self.kms_master_key_id:
        for attribute in self.KMS_ATTRIBUTES:
            result[attribute] = getattr(self, camelcase_to_underscores(attribute))
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    for key in result:
        if isinstance(result[key], bool):
            result[key] = str(result[key]).lower()
    return result


Queue.attributes = property(_queue_attributes)


def _get_queue_attributes(self, queue_name, attribute_names):
    # moto's, reading the queue's attributes once: moto read them once to test each requested
    # name and twice more to copy it, so a depth read (two names) walked the queue 15 times.
    queue = self.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid_names = ["All"] + queue.BASE_ATTRIBUTES + queue.FIFO_ATTRIBUTES + queue.KMS_ATTRIBUTES
    invalid_name = next((name for name in attribute_names if name not in valid_names), None)
    if invalid_name or invalid_name == "":
        raise InvalidAttributeName(invalid_name)
    attributes = queue.attributes
    if "All" in attribute_names:
        return attributes
    return {
        name: attributes[name] for name in attribute_names if attributes.get(name) is not None
    }


SQSBackend.get_queue_attributes = _get_queue_attributes


def _is_message_valid_based_on_retention_period(self, queue_name, message):
    # moto read the retention period through GetQueueAttributes (a walk of the queue) for every
    # message a ReceiveMessage returned; it is a plain attribute of the queue.
    retention_period = self.get_queue(queue_name).message_retention_period
    return retention_period + message.sent_timestamp / 1000 > time.time()


SQSBackend.is_message_valid_based_on_retention_period = (
    _is_message_valid_based_on_retention_period
)

# Traces: SNS with active tracing passes the X-Amzn-Trace-Id header of a Publish to every SQS
# subscription as the message's AWSTraceHeader system attribute (moto drops it), and the
# next function's record continues that trace. Here the header of a Publish is kept for the
# thread that fans the message out (moto delivers within the request) and given to each send.
_PUBLISH_TRACE = threading.local()


def _keeping_trace(method):
    """A Publish or PublishBatch whose X-Amzn-Trace-Id header (one for all of a batch's
    entries: order-events publishes so) reaches the SQS sends it makes."""

    @functools.wraps(method)
    def call(self):
        _PUBLISH_TRACE.header = self.headers.get("X-Amzn-Trace-Id")
        try:
            return method(self)
        finally:
            _PUBLISH_TRACE.header = None

    return call


SNSResponse.publish = _keeping_trace(SNSResponse.publish)
SNSResponse.publish_batch = _keeping_trace(SNSResponse.publish_batch)
_sqs_send_message = SQSBackend.send_message


def _send_message_with_trace(self, *args, **kwargs):
    header = getattr(_PUBLISH_TRACE, "header", None)
    if header and not kwargs.get("system_attributes"):
        kwargs["system_attributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": header}
        }
    return _sqs_send_message(self, *args, **kwargs)


SQSBackend.send_message = _send_message_with_trace

# Every call looked its action up among the handler class's methods by listing them
# (`inspect.getmembers`): 6% of the emulator's busy time on a stream of GetItems. The classes do
# not change while the server runs: listed once per class, as a set (the caller only tests
# membership).
_METHOD_NAMES = {}


def _method_names_from_class(clazz):
    names = _METHOD_NAMES.get(clazz)
    if names is None:
        names = _METHOD_NAMES[clazz] = frozenset(_list_method_names(clazz))
    return names


_list_method_names = moto.core.responses.method_names_from_class
moto.core.responses.method_names_from_class = _method_names_from_class

# moto serializes every answer by walking the operation's output shape value by value
# (`moto.core.serialize`). A DynamoDB answer is already its wire JSON (moto's `DynamoResult`
# holds `dynamo_to_dict` output), so the walk only copies it: in the end-to-end run's emulator
# it was about two fifths of the CPU of GetItem, UpdateItem and BatchGetItem, and nearly all of
# Streams' GetRecords (about 450 ms for 1,000 records). For the item operations below a
# successful answer is written with `json.dumps` (`_wire`: a stream record's creation time as the
# epoch seconds the shape's timestamp format gives, binary values in base64, None left out, as the
# walk writes them); errors and
# every other operation still take moto's path. MOTO_VERIFY_FAST_JSON=1 also runs moto's path
# and exits the server on the first answer that differs (a check for moto upgrades).
_FAST_JSON_ACTIONS = {
    "DynamoHandler": frozenset(
        {
            "GetItem",
            "BatchGetItem",
            "Query",
            "Scan",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactGetItems",
            "TransactWriteItems",
            "ExecuteStatement",
            "BatchExecuteStatement",
        }
    ),
    "DynamoDBStreamsHandler": frozenset({"GetRecords"}),
}
_VERIFY_FAST_JSON = bool(os.environ.get("MOTO_VERIFY_FAST_JSON"))


def _wire(value):
    """A DynamoDB answer as its JSON: None left out, bytes (a B or BS value) in base64, times in
    epoch seconds, as moto's JSON serializer writes them."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.datetime):
        # moto's JSON timestamp format (unixtimestamp), to the millisecond.
        seconds = calendar.timegm(value.timetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    return value


_moto_serialized = moto.core.responses.BaseResponse.serialized


def _serialized_fast(self, action_result):
    actions = _FAST_JSON_ACTIONS.get(type(self).__name__)
    result = action_result.result
    if (
        actions is None
        or not isinstance(result, dict)
        or type(action_result) not in (ActionResult, DynamoResult)
        or self._get_action() not in actions
    ):
        return _moto_serialized(self, action_result)
    body = json.dumps(_wire(result), separators=(",", ":"))
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    headers.update(self.response_headers)
    if _VERIFY_FAST_JSON:
        status, moto_headers, moto_body = _moto_serialized(self, action_result)
        if status != 200 or moto_headers != headers or json.loads(moto_body) != json.loads(body):
            sys.stderr.write(
                f"MOTO_VERIFY_FAST_JSON: {type(self).__name__} {self._get_action()} differs:\n"
                f"moto: {status} {moto_headers} {moto_body[:2000]}\nfast: {headers} {body[:2000]}\n"
            )
            sys.stderr.flush()
            os._exit(70)
    return 200, headers, body


moto.core.responses.BaseResponse.serialized = _serialized_fast

# A tuple: the dispatcher only tests membership (`host in list_of_moto_modules()`).
_MOTO_MODULES = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MOTO_MODULES

# werkzeug's line per request was a seventh of the emulator's busy time in the same profile, and
# nobody reads it (the runner logs each function's calls): warnings and errors only, unless
# MOTO_REQUEST_LOG is set.
if not os.environ.get("MOTO_REQUEST_LOG"):
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


class _KeepAliveRequestHandler(MotoRequestHandler):
    """moto's request handler, keeping connections open between requests.

    werkzeug's development server answers every request with `Connection: close` and then reads
    whatever is left on the socket for 10 ms, since http.server cannot drain a body the
    application left unread before the next request line. So every call of every client was a
    new TCP connection and a new server thread: in a profile of the 1,000-order end-to-end run,
    accepting connections, starting threads and that wait were about a fifth of the emulator's
    busy time, and the clients paid a connect per call too. Here a request's body
    (Content-Length, not chunked) is read whole before the application runs, so the next request
    line is always where the connection is; the connection then stays open (HTTP/1.1) unless the
    client asks to close it, and the drain is skipped (`_DrainOnlyClosing`). Chunked or
    length-less bodies are answered as before, with `Connection: close` and the drain. Responses
    go out without Nagle's delay (TCP_NODELAY): on a kept connection the body's small write would
    otherwise wait for the client's ACK of the headers.
    """

    disable_nagle_algorithm = True

    def make_environ(self):
        environ = super().make_environ()
        length = self.headers.get("Content-Length")
        keep_alive = (
            length is not None
            and length.strip().isdigit()
            and "Transfer-Encoding" not in self.headers
        )
        _REQUEST.keep_alive = keep_alive
        if keep_alive:
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length)))
        return environ

    def send_header(self, keyword, value):
        if (
            keyword.lower() == "connection"
            and value.lower() == "close"
            and getattr(_REQUEST, "keep_alive", False)
        ):
            return
        super().send_header(keyword, value)


# Whether the request the current thread serves (one thread per connection) keeps its connection.
_REQUEST = threading.local()


class _NothingToDrain:
    def register(self, *args):
        pass

    def select(self, timeout=None):
        return []

    def close(self):
        pass


class _DrainOnlyClosing:
    """werkzeug.serving's `selectors`, as its after-response drain uses it: a kept connection's
    body was read whole already, and the next bytes are the next request, not leftovers."""

    EVENT_READ = selectors.EVENT_READ

    @staticmethod
    def DefaultSelector():
        if getattr(_REQUEST, "keep_alive", False):
            return _NothingToDrain()
        return selectors.DefaultSelector()


def _reporting_port(make_server):
    """werkzeug's make_server, which binds and listens, then tells the port it listens on: in
    MOTO_PORT (moto builds its own URLs from it) and in the file MOTO_PORT_FILE names."""

    @functools.wraps(make_server)
    def make_and_report(*args, **kwargs):
        server = make_server(*args, **kwargs)
        port = str(server.socket.getsockname()[1])
        os.environ["MOTO_PORT"] = port
        path = os.environ.get("MOTO_PORT_FILE")
        if path:
            with open(path + ".tmp", "w") as f:
                f.write(port)
            os.replace(path + ".tmp", path)
        return server

    return make_and_report


def _exit_with_parent():
    """With MOTO_PARENT_PID set (by the runner, to its own pid), the server exits when that
    process is no longer its parent (the runner was killed with SIGKILL, or crashed, even while
    this server was still importing): no orphan keeps the port and answers a producer as if a
    pipeline were running behind it."""
    expected = os.environ.get("MOTO_PARENT_PID")
    if not expected:
        return

    def watch():
        while os.getppid() == int(expected):
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


if __name__ == "__main__":
    _exit_with_parent()
    import moto.server
    import werkzeug.serving
    from moto.server import main

    moto.server.MotoRequestHandler = _KeepAliveRequestHandler
    werkzeug.serving.selectors = _DrainOnlyClosing
    werkzeug.serving.make_server = _reporting_port(werkzeug.serving.make_server)
    main(sys.argv[1:])
