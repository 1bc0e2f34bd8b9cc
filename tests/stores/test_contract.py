"""One contract for every ``Store``: the same cases against ``MemoryStore`` and the real SeaweedFS.

Where SeaweedFS departs from S3 (listing order where keys nest in folders), the case keeps S3's rule and is
marked ``xfail(strict=True)`` for SeaweedFS, with the reason: the day the server changes, the suite says so.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from ingest.devserver import LocalS3
from ingest.errors import StoreDenied, StoreError, StoreUnavailable, Terminal, Transient
from ingest.stores import Listed, ListedObject, ListedPrefix, MemoryStore, S3Store, Store
from ingest.stores.memory import PAGE_SIZE
from tests.conftest import BUCKET, RequestCounter
from tests.stores.conftest import MakeStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SEAWEED_LISTS_BY_FOLDER = (
    "SeaweedFS lists by walking folders: 'a/x' comes before 'a-b' ('-' sorts below '/'), and a start_after "
    "equal to a folder name skips that folder; S3 and MemoryStore list lexically"
)
SEAWEED_PAGES_BY_FOLDER = (
    "SeaweedFS pages a one-level listing by walking folders: the sub-prefix 'a/' comes before 'a-b' ('-' sorts "
    "below '/') when they are on different pages; S3 and MemoryStore list lexically"
)


def md5_etag(body: bytes) -> str:
    return f'"{hashlib.md5(body).hexdigest()}"'


def body_at(store: Store, key: str) -> bytes | None:
    stored = store.get(key)
    return None if stored is None else stored.body


# ------------------------------------------------------------------ reads and plain writes


def test_a_missing_key_reads_as_none_and_does_not_exist(any_store: Store, prefix: str) -> None:
    assert any_store.get(f"{prefix}missing") is None
    assert not any_store.exists(f"{prefix}missing")


def test_put_then_get_round_trips_the_bytes_with_an_md5_etag(any_store: Store, prefix: str) -> None:
    key, body = f"{prefix}obj.bin", b"\x00\xffbytes, not text\r\n"
    any_store.put(key, body, content_type="application/octet-stream")
    stored = any_store.get(key)
    assert stored is not None
    assert stored.body == body
    assert stored.etag == md5_etag(body)  # S3's single-part ETag; the memory store makes the same
    assert any_store.exists(key)
    any_store.put(key, b"second")  # unconditional: overwrites
    again = any_store.get(key)
    assert again is not None and (again.body, again.etag) == (b"second", md5_etag(b"second"))


# ------------------------------------------------------------------ If-None-Match: *


def test_put_file_streams_a_file_and_rewinds_it(any_store: Store, prefix: str) -> None:
    import io

    body = io.BytesIO(b"x" * 100_000 + b"end")
    body.read(10)  # wherever the file stands, the whole of it is written
    any_store.put_file(f"{prefix}big.json", body)
    got = any_store.get(f"{prefix}big.json")
    assert got is not None and got.body == b"x" * 100_000 + b"end"


def test_put_new_creates_once_and_never_overwrites(any_store: Store, prefix: str) -> None:
    key = f"{prefix}v1.json"
    etag = any_store.put_new(key, b'{"n": 1}')
    stored = any_store.get(key)
    assert stored is not None and etag == stored.etag
    assert any_store.put_new(key, b'{"n": 2}') is None
    assert body_at(any_store, key) == b'{"n": 1}'


def test_racing_put_new_has_exactly_one_winner(any_store: Store, prefix: str) -> None:
    key, n = f"{prefix}contended.json", 5
    results: list[str | None] = [None] * n
    start = threading.Barrier(n)

    def write(i: int) -> None:
        start.wait()
        results[i] = any_store.put_new(key, f"writer {i}".encode())

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, etag in enumerate(results) if etag is not None]
    assert len(winners) == 1
    assert body_at(any_store, key) == f"writer {winners[0]}".encode()


# ------------------------------------------------------------------ If-Match


def test_replace_with_the_current_etag_wins_and_a_stale_one_loses(any_store: Store, prefix: str) -> None:
    key = f"{prefix}latest.json"
    first = any_store.put_new(key, b"v1")
    assert first is not None
    second = any_store.replace(key, b"v2", first)
    assert second is not None and second != first
    stored = any_store.get(key)
    assert stored is not None and (stored.body, stored.etag) == (b"v2", second)
    assert any_store.replace(key, b"v3", first) is None  # stale: someone (we) changed it since
    assert body_at(any_store, key) == b"v2"


def test_replace_without_an_etag_only_creates(any_store: Store, prefix: str) -> None:
    key = f"{prefix}lock.json"
    created = any_store.replace(key, b"mine", None)
    assert created is not None and created == md5_etag(b"mine")
    assert any_store.replace(key, b"theirs", None) is None
    assert body_at(any_store, key) == b"mine"


def test_replace_of_a_key_that_is_gone_is_a_lost_condition(any_store: Store, prefix: str) -> None:
    # The object read earlier was deleted since: S3 answers 404, SeaweedFS 412; both are None here.
    key = f"{prefix}gone.json"
    assert any_store.replace(key, b"late", md5_etag(b"earlier")) is None
    assert not any_store.exists(key)


def test_racing_replace_with_one_etag_has_exactly_one_winner(any_store: Store, prefix: str) -> None:
    key, n = f"{prefix}latest.json", 5
    etag = any_store.put_new(key, b"base")
    assert etag is not None
    results: list[str | None] = [None] * n
    start = threading.Barrier(n)

    def write(i: int) -> None:
        start.wait()
        results[i] = any_store.replace(key, f"writer {i}".encode(), etag)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, new in enumerate(results) if new is not None]
    assert len(winners) == 1
    assert body_at(any_store, key) == f"writer {winners[0]}".encode()


# ------------------------------------------------------------------ delete


def test_conditional_delete_removes_only_what_was_read(any_store: Store, prefix: str) -> None:
    key = f"{prefix}inbox/story.txt"
    old = any_store.put_new(key, b"first upload")
    assert old is not None
    any_store.put(key, b"re-upload")  # replaced after we read it
    assert any_store.delete(key, if_match=old) is False
    assert body_at(any_store, key) == b"re-upload"
    current = any_store.get(key)
    assert current is not None
    assert any_store.delete(key, if_match=current.etag) is True
    assert not any_store.exists(key)


def test_deleting_a_missing_key_is_done_unless_a_condition_was_asked(any_store: Store, prefix: str) -> None:
    key = f"{prefix}never-written"
    assert any_store.delete(key) is True
    # A missing object cannot have the ETag asked for (S3 answers 404, SeaweedFS 412): the condition failed.
    assert any_store.delete(key, if_match=md5_etag(b"x")) is False
    any_store.put(key, b"x")
    assert any_store.delete(key) is True
    assert not any_store.exists(key)


# ------------------------------------------------------------------ copy


def test_copy_is_conditional_on_the_source_etag(any_store: Store, prefix: str) -> None:
    source, target = f"{prefix}inbox/a.txt", f"{prefix}inbox/processed/a.txt"
    etag = any_store.put_new(source, b"article")
    assert etag is not None
    assert any_store.copy(source, target, if_match=md5_etag(b"something else")) is False
    assert not any_store.exists(target)
    assert any_store.copy(source, target, if_match=etag) is True
    copied = any_store.get(target)
    assert copied is not None and (copied.body, copied.etag) == (b"article", etag)
    assert body_at(any_store, source) == b"article"  # a copy, not a move


def test_copy_overwrites_the_target_and_needs_no_condition(any_store: Store, prefix: str) -> None:
    source, target = f"{prefix}src", f"{prefix}dst"
    any_store.put(source, b"new")
    any_store.put(target, b"old")
    assert any_store.copy(source, target) is True
    assert body_at(any_store, target) == b"new"


def test_copying_a_missing_source_is_an_error_not_a_lost_condition(any_store: Store, prefix: str) -> None:
    for if_match in (None, md5_etag(b"x")):
        with pytest.raises(StoreError) as err:
            any_store.copy(f"{prefix}nothing-here", f"{prefix}target", if_match=if_match)
        assert err.value.status == 404
        assert "NoSuchKey" in str(err.value)
        assert not isinstance(err.value, Transient | Terminal)  # neither waiting nor a person will fix it
        assert not any_store.exists(f"{prefix}target")


# ------------------------------------------------------------------ listing


def put_all(store: Store, keys: list[str]) -> None:
    for key in keys:
        store.put(key, key.encode())


def test_listing_is_lexical_resumes_after_start_after_and_stays_in_its_prefix(any_store: Store, prefix: str) -> None:
    names = ["b", "a", "a-1", "a.2", "a0", "A", "é", "z"]  # flat: no folder below the listed one
    put_all(any_store, [f"{prefix}feed/{n}" for n in names])
    put_all(any_store, [f"{prefix}feed2/sibling", f"{prefix}fee", f"{prefix}feed-x"])
    feed = f"{prefix}feed/"
    expected = [f"{feed}{n}" for n in ["A", "a", "a-1", "a.2", "a0", "b", "z", "é"]]  # UTF-8 byte order
    assert list(any_store.list_keys(feed)) == expected
    assert list(any_store.list_objects(feed)) == [(k, len(k.encode())) for k in expected]
    assert list(any_store.list_keys(feed, start_after=f"{feed}a")) == expected[2:]
    assert list(any_store.list_keys(feed, start_after=f"{feed}a-0")) == expected[2:]  # need not exist
    assert list(any_store.list_keys(feed, start_after=prefix)) == expected  # before the prefix: all
    assert list(any_store.list_keys(feed, start_after=f"{feed}zz")) == [expected[-1]]
    assert list(any_store.list_keys(feed, start_after=f"{feed}é")) == []
    assert list(any_store.list_keys(f"{prefix}nothing/")) == []
    # A prefix is a plain string prefix, not a folder: "feed" also matches "feed2/" and "feed-x" (order: below).
    siblings = [f"{prefix}feed-x", f"{prefix}feed2/sibling"]
    assert sorted(any_store.list_keys(f"{prefix}feed")) == sorted([*expected, *siblings])


def xfail_on_seaweedfs(request: pytest.FixtureRequest, store: Store, reason: str = SEAWEED_LISTS_BY_FOLDER) -> None:
    if isinstance(store, S3Store):
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def test_listing_is_lexical_across_folders(any_store: Store, prefix: str, request: pytest.FixtureRequest) -> None:
    put_all(any_store, [f"{prefix}d/a0", f"{prefix}d/a/x", f"{prefix}d/a-b"])
    xfail_on_seaweedfs(request, any_store)
    assert list(any_store.list_keys(f"{prefix}d/")) == [f"{prefix}d/a-b", f"{prefix}d/a/x", f"{prefix}d/a0"]


def test_start_after_a_folder_name_keeps_that_folder(
    any_store: Store, prefix: str, request: pytest.FixtureRequest
) -> None:
    put_all(any_store, [f"{prefix}d/a/x", f"{prefix}d/b"])
    xfail_on_seaweedfs(request, any_store)
    assert list(any_store.list_keys(f"{prefix}d/", start_after=f"{prefix}d/a")) == [f"{prefix}d/a/x", f"{prefix}d/b"]


# ------------------------------------------------------------------ one level (Delimiter="/")


def obj(key: str) -> ListedObject:
    """What ``list_level`` lists for a key ``put_all`` wrote (its body is the key)."""
    return ListedObject(key, len(key.encode()))


def by_key(entries: list[Listed]) -> list[Listed]:
    return sorted(entries, key=lambda entry: entry.key)


def test_list_level_lists_objects_at_the_top_and_each_sub_prefix_once(any_store: Store, prefix: str) -> None:
    inbox = f"{prefix}in/"
    top = [f"{inbox}{n}" for n in ["b.txt", "a.txt", "A.txt", "é.txt"]]
    nested = [f"{inbox}{n}" for n in ["processed/2026-01-01/x.txt", "processed/2026-01-02/y.txt", "sub/deep/z.txt"]]
    put_all(any_store, [*top, *nested, f"{inbox}sub/w.txt", f"{prefix}in-x", f"{prefix}in2/sibling"])
    assert list(any_store.list_level(inbox)) == [
        obj(f"{inbox}A.txt"),
        obj(f"{inbox}a.txt"),
        obj(f"{inbox}b.txt"),
        ListedPrefix(f"{inbox}processed/"),  # once, however many keys are below it; none of them listed
        ListedPrefix(f"{inbox}sub/"),
        obj(f"{inbox}é.txt"),
    ]
    assert list(any_store.list_level(f"{inbox}sub/")) == [ListedPrefix(f"{inbox}sub/deep/"), obj(f"{inbox}sub/w.txt")]
    assert list(any_store.list_level(f"{prefix}nothing/")) == []
    # A plain string prefix, as in list_objects: "in" also rolls up "in2/" and matches "in-x" (order: see below).
    expected = [obj(f"{prefix}in-x"), ListedPrefix(inbox), ListedPrefix(f"{prefix}in2/")]
    assert by_key(list(any_store.list_level(f"{prefix}in"))) == expected


def test_list_level_lists_a_folder_marker_as_an_object(any_store: Store, prefix: str) -> None:
    # What the S3 console's "Create folder" writes: an empty object whose key ends in "/".
    for key in (f"{prefix}m/", f"{prefix}m/sub/"):
        any_store.put(key, b"")
    assert list(any_store.list_level(f"{prefix}m/")) == [
        ListedObject(f"{prefix}m/", 0),
        ListedPrefix(f"{prefix}m/sub/"),
    ]


def list_requests(store: Store) -> Callable[[], int]:
    """How many LIST requests ``store`` has sent since this was called."""
    if isinstance(store, MemoryStore):
        store.calls.clear()
        return lambda: store.calls["LIST"]
    assert isinstance(store, S3Store)
    counter = RequestCounter(store)  # every LIST is a GET; nothing else is sent while listing
    return lambda: counter.calls["GET"]


def test_list_level_pages_past_a_page(make_store: MakeStore, prefix: str) -> None:
    store = make_store(2)
    put_all(store, [f"{prefix}{n}" for n in ["a", "c", "e", "g", "i"]])
    put_all(store, [f"{prefix}{d}/{n}" for d in "bdf" for n in ["1", "2", "3/x"]])  # each prefix spans pages
    requests = list_requests(store)
    listing = store.list_level(prefix)
    assert requests() == 0  # lazy: nothing is sent before it is iterated
    assert list(listing) == [
        obj(f"{prefix}a"),
        ListedPrefix(f"{prefix}b/"),
        obj(f"{prefix}c"),
        ListedPrefix(f"{prefix}d/"),
        obj(f"{prefix}e"),
        ListedPrefix(f"{prefix}f/"),
        obj(f"{prefix}g"),
        obj(f"{prefix}i"),
    ]
    assert 4 <= requests() <= 5  # two entries per request (a server may need one more to see the end)


def test_list_level_is_lexical_across_pages(make_store: MakeStore, prefix: str, request: pytest.FixtureRequest) -> None:
    store = make_store(1)
    put_all(store, [f"{prefix}a0", f"{prefix}a/x", f"{prefix}a-b"])
    xfail_on_seaweedfs(request, store, SEAWEED_PAGES_BY_FOLDER)
    assert list(store.list_level(prefix)) == [obj(f"{prefix}a-b"), ListedPrefix(f"{prefix}a/"), obj(f"{prefix}a0")]


# ------------------------------------------------------------------ S3Store's own: botocore errors arrive typed


def s3_client(endpoint_url: str, key: str, secret: str) -> S3Client:
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def test_an_unreachable_server_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    store = S3Store(BUCKET, attempts=2, max_seconds=5, client=s3_client(f"http://127.0.0.1:{port}", "x", "y"))
    with pytest.raises(StoreUnavailable, match="unreachable") as err:
        store.get("k")
    assert isinstance(err.value, Transient)


def test_a_condition_on_a_missing_key_answered_404_is_a_lost_condition() -> None:
    # SeaweedFS answers 412 here (the contract cases above); AWS S3 answers 404 NoSuchKey, which SeaweedFS
    # cannot produce, so this one reply is stubbed.
    client = s3_client("http://127.0.0.1:9", "x", "y")
    store = S3Store(BUCKET, attempts=1, max_seconds=5, client=client)
    with Stubber(client) as stub:
        stub.add_client_error("put_object", "NoSuchKey", http_status_code=404)
        stub.add_client_error("delete_object", "NoSuchKey", http_status_code=404)
        assert store.replace("k", b"late", md5_etag(b"earlier")) is None
        assert store.delete("k", if_match=md5_etag(b"earlier")) is False
        stub.assert_no_pending_responses()


@pytest.mark.s3
def test_wrong_credentials_and_a_missing_bucket_are_terminal(local_s3: LocalS3) -> None:
    wrong = S3Store(BUCKET, attempts=6, max_seconds=30, client=s3_client(local_s3.endpoint_url, "nobody", "wrong"))
    with pytest.raises(StoreDenied, match="access denied") as denied:
        wrong.get("k")
    assert denied.value.status == 403 and not isinstance(denied.value, Transient)
    missing = S3Store("no-such-bucket-here", attempts=6, max_seconds=30)
    with pytest.raises(StoreDenied, match="does not exist") as absent:
        missing.get("k")  # a GET never creates the bucket (SeaweedFS makes one on a PUT)
    assert absent.value.status == 404


# ------------------------------------------------------------------ MemoryStore's own extras


def test_memory_store_counts_requests_by_method() -> None:
    store = MemoryStore()
    calls: list[Callable[[], object]] = [
        lambda: store.put_new("k", b"1"),
        lambda: store.put_new("k", b"2"),  # a lost condition is still a request
        lambda: store.get("k"),
        lambda: store.exists("k"),
        lambda: store.copy("k", "k2"),
        lambda: store.delete("k2", if_match='"stale"'),
        lambda: list(store.list_keys("")),
    ]
    for call in calls:
        call()
    assert store.calls == {"PUT": 2, "GET": 1, "HEAD": 1, "COPY": 1, "DELETE": 1, "LIST": 1}
    assert store.credential_values() == []
    assert store.bucket == "memory"


def test_memory_store_lists_in_pages_as_s3_does() -> None:
    store = MemoryStore()
    keys = [f"k{i:05d}" for i in range(2 * PAGE_SIZE + 1)]
    for key in reversed(keys):
        store.put(key, b"")
    store.calls.clear()
    assert list(store.list_keys("k", start_after="k00000")) == keys[1:]
    assert store.calls == {"LIST": 3}


def test_memory_store_lists_one_level_in_pages_as_s3_does() -> None:
    store = MemoryStore()
    top = [f"in/k{i:05d}" for i in range(PAGE_SIZE + 500)]
    folders = [f"in/f{i:05d}/" for i in range(PAGE_SIZE // 2)]
    for key in [*top, *(f"{folder}{n}" for folder in folders for n in ("a", "b/c"))]:
        store.put(key, b"")
    store.calls.clear()
    listed = list(store.list_level("in/"))
    assert listed == [*map(ListedPrefix, folders), *(ListedObject(key, 0) for key in top)]
    assert store.calls == {"LIST": 2}  # 2000 entries, a thousand a page
    assert store.listings == {("in/", "/"): 2}


def test_memory_store_sees_writes_made_between_pages() -> None:
    store = MemoryStore()
    for i in range(PAGE_SIZE + 1):
        store.put(f"k{i:05d}", b"")
    listing = store.list_keys("k")
    seen = [next(listing) for _ in range(PAGE_SIZE)]
    store.put("k99999", b"late")  # lands after the first page was read
    assert [*seen, *listing] == [f"k{i:05d}" for i in range(PAGE_SIZE + 1)] + ["k99999"]
