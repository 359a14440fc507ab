"""The embedded AWS emulator: moto's server with its DynamoDB backend serialized.

moto runs each request on its own thread. Its TransactWriteItems saves a copy of every table it
touches and, when the transaction is cancelled (a condition failed), puts the copies back, so a
write another thread made meanwhile is lost (and the table's stream shard is swapped). Holding one
lock around every DynamoDB backend call makes a cancelled transaction restore exactly the state it
started from, as DynamoDB's own isolation would. Usage: python moto_server.py -H HOST -p PORT
"""
import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend

_LOCK = threading.RLock()


def _serialized(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return call


for _name, _value in list(vars(DynamoDBBackend).items()):
    if callable(_value) and not _name.startswith("__"):
        setattr(DynamoDBBackend, _name, _serialized(_value))

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
