"""Storage: the ``Store`` protocol and its backends (commit, archive, runner and sources see only ``Store``).

- ``base``: ``Store`` (a ``typing.Protocol``: S3's conditional writes, documented method by method), ``Stored``,
  and what a one-level listing yields (``ListedObject``, ``ListedPrefix``).
- ``s3``: ``S3Store``, the only module that talks to boto3/botocore; translates their errors once.
- ``memory``: ``MemoryStore``, in-process, the same conditions and ETags, with a request counter.
- ``faults``: ``FaultyStore``, wraps any store and fails on purpose (by chance, or at the N-th write).
- ``leases``: ``Leases``, per-file leases kept in a store, so overlapping runs never take one file twice.

The fakes ship in the package (as httpx ships ``MockTransport``) so every layer above can be tested fast;
``tests/stores/test_contract.py`` holds both real and fake to one contract.
"""

from ingest.stores.base import Listed, ListedObject, ListedPrefix, Store, Stored
from ingest.stores.faults import FaultyStore
from ingest.stores.memory import MemoryStore
from ingest.stores.s3 import S3Store

__all__ = ["FaultyStore", "Listed", "ListedObject", "ListedPrefix", "MemoryStore", "S3Store", "Store", "Stored"]
