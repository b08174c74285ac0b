"""The IATI Datastore input of the `iati` source, on recorded Solr answers served over real HTTP:
paging, the incremental high-water mark, rate limits and backoff, the key kept secret, refusals."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.errors import ConfigError, SourceFormatError
from connectors.sdk import Checkpoint, Record, Refused, load_config, run_source
from connectors.sdk.state import StateStore
from connectors.sources import iati
from connectors.sources.iati.datastore import DatastoreClient, retry_after_s

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "iati"
PAGES = FIXTURES / "datastore"
PROGRAMMES = FIXTURES / "urban_programmes.xml"
KEY = "0123456789abcdef0123456789abcdef"
PUBLISHER = "GB-CHC-1180001"
KAMPALA_UPDATED = "2024-03-30T09:00:00Z"  # the newest activity of the recorded pages
JSON = "application/json"

#: (path, query with every value, headers) -> (status, headers, body)
Route = Callable[[str, dict[str, list[str]], dict[str, str]], tuple[int, dict[str, str], bytes]]


@dataclass
class Seen:
    """Every request the server received: its path with query, and its headers."""

    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def queries(self) -> list[dict[str, list[str]]]:
        return [parse_qs(urlsplit(p).query) for p in self.paths]


@contextmanager
def datastore(route: Route) -> Iterator[tuple[str, Seen]]:
    """A real HTTP server on 127.0.0.1 (like tests/unit/local_http.py, plus request and response
    headers, which the key and Retry-After need); yields (select URL, what it saw)."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.paths.append(self.path)
            seen.headers.append(dict(self.headers.items()))
            parts = urlsplit(self.path)
            status, headers, body = route(parts.path, parse_qs(parts.query), dict(self.headers))
            self.send_response(status)
            for name, value in {"Content-Type": JSON, **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield f"http://127.0.0.1:{port}/datastore/activity/select", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _page(start: int) -> dict[str, Any]:
    return json.loads((PAGES / f"activities_start_{start}.json").read_text(encoding="utf-8"))


def solr(query: dict[str, list[str]]) -> bytes:
    """The recorded activities as Solr would answer `query`: its high-water filter, then its
    start and rows over the recorded order."""
    docs = _page(0)["response"]["docs"] + _page(2)["response"]["docs"]
    for fq in query.get("fq", []):
        if fq.startswith("last_updated_datetime:["):
            since = datetime.fromisoformat(fq.split("[", 1)[1].split(" ", 1)[0])
            docs = [d for d in docs if datetime.fromisoformat(d["last_updated_datetime"]) >= since]
    start, rows = int(query["start"][0]), int(query["rows"][0])
    response = {"numFound": len(docs), "start": start, "docs": docs[start : start + rows]}
    return json.dumps({"responseHeader": {"status": 0}, "response": response}).encode()


def recorded(path: str, query: dict[str, list[str]], headers: dict[str, str]):
    return 200, {}, solr(query)


def _config(url: str, **settings: Any) -> iati.IatiConfig:
    values: dict[str, Any] = {
        "inputs": [f"datastore:{PUBLISHER}"],
        "datastore_url": url,
        "api_key": KEY,
        "rows": 2,
        "backoff_s": 0.01,
    }
    values.update(settings)
    return load_config("iati", iati.IatiConfig, overrides=values)  # type: ignore[return-value]


def _records(items: list[Any]) -> list[tuple]:
    return [
        (r.stream.name, r.key, r.source, r.event_id, r.subject, r.time, r.data)
        for r in items
        if isinstance(r, Record)
    ]


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send_event(self, topic: str, event: dict, *, key: str) -> None:
        self.sent.append((topic, key))

    def send_raw(self, topic: str, value: bytes, *, key: str, headers: list) -> None:
        self.sent.append((topic, key))

    def confirm(self) -> int:
        return len(self.sent)


# ------------------------------------------------------------------------------ paging


def test_datastore_pages_through_every_page_and_sends_the_same_events_as_the_file():
    with datastore(recorded) as (url, seen):
        items = list(iati.SOURCE.read(_config(url), {}))
    from_file = list(iati.SOURCE.read(iati.IatiConfig(inputs=[str(PROGRAMMES)]), {}))
    assert sorted(_records(items), key=repr) == sorted(_records(from_file), key=repr)
    assert len(_records(items)) == 3 + 10 + 15
    queries = seen.queries()
    assert [q["start"] for q in queries] == [["0"], ["2"]]
    assert all(q["rows"] == ["2"] and q["wt"] == ["json"] for q in queries)
    assert queries[0]["fq"] == [f'reporting_org_ref:"{PUBLISHER}"']
    assert "iati_xml" in queries[0]["fl"][0].split(",")


def test_each_page_is_checkpointed_with_the_high_water_mark_it_reached():
    with datastore(recorded) as (url, _):
        items = list(iati.SOURCE.read(_config(url), {}))
    marks = [i.state["datastore"] for i in items if isinstance(i, Checkpoint)]
    assert marks == [
        {f"{PUBLISHER}|*:*": "2024-03-28T14:05:00Z"},
        {f"{PUBLISHER}|*:*": KAMPALA_UPDATED},
    ]


def test_second_run_sends_nothing_and_asks_only_from_the_high_water_mark(tmp_path: Path):
    store = StateStore(tmp_path, "iati")
    with datastore(recorded) as (url, seen):
        first = run_source(iati.SOURCE, _config(url), FakeProducer(), store)
        seen.paths.clear()
        second = run_source(iati.SOURCE, _config(url), FakeProducer(), store)
    assert first.sent == 28 and first.by_stream == {
        "activities": 3,
        "transactions": 10,
        "results": 15,
    }
    assert second.sent == 0 and second.rejected == 0
    (query,) = seen.queries()  # one page: only the activity at the mark comes back
    assert f"last_updated_datetime:[{KAMPALA_UPDATED} TO *]" in query["fq"][1]


def test_a_file_only_run_keeps_the_datastore_high_water_mark():
    state = {"last_updated": {}, "rejected": [], "datastore": {"X|*:*": KAMPALA_UPDATED}}
    items = list(iati.SOURCE.read(iati.IatiConfig(inputs=[str(PROGRAMMES)]), state))
    assert items[-1].state["datastore"] == {"X|*:*": KAMPALA_UPDATED}


# ------------------------------------------------------------------------------ rate limits


def limited(times: int, retry_after: str | None = None) -> Route:
    """429 (the gateway's recorded answer) `times` times, then the recorded pages."""
    calls = {"n": 0}

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]):
        calls["n"] += 1
        if calls["n"] <= times:
            extra = {"Retry-After": retry_after} if retry_after is not None else {}
            return 429, extra, (PAGES / "rate_limited.json").read_bytes()
        return 200, {}, solr(query)

    return route


def test_429_with_retry_after_is_waited_out_as_asked_then_succeeds():
    waits: list[float] = []
    client = DatastoreClient(api_key=KEY, backoff_s=10.0, sleep=waits.append)
    with datastore(limited(2, retry_after="7")) as (url, seen):
        body = client.get(f"{url}?q=*:*&start=0&rows=2&wt=json")
    assert json.loads(body)["response"]["numFound"] == 3
    assert waits == [7.0, 7.0] and len(seen.paths) == 3


def test_429_without_retry_after_backs_off_exponentially_from_backoff_s():
    waits: list[float] = []
    client = DatastoreClient(api_key=KEY, backoff_s=0.5, sleep=waits.append)
    with datastore(limited(3)) as (url, _):
        client.get(f"{url}?q=*:*&start=0&rows=2&wt=json")
    assert waits == [0.5, 1.0, 2.0]


def test_a_run_rate_limited_once_still_sends_everything_without_real_waiting():
    started = time.monotonic()
    with datastore(limited(1)) as (url, seen):
        items = list(iati.SOURCE.read(_config(url), {}))
    assert len(_records(items)) == 28 and len(seen.paths) == 3
    assert time.monotonic() - started < 1.0


def test_a_rate_limit_that_never_lifts_refuses_in_one_line_after_bounded_retries():
    with datastore(limited(99)) as (url, seen), pytest.raises(SourceFormatError) as refused:
        list(iati.SOURCE.read(_config(url, max_retries=2), {}))
    message = str(refused.value)
    assert len(seen.paths) == 3
    assert message.startswith(url) and "\n" not in message
    assert "HTTP 429" in message and "3 attempts" in message and KEY not in message


def test_a_retry_after_longer_than_max_wait_s_refuses_without_waiting():
    waits: list[float] = []
    client = DatastoreClient(api_key=KEY, max_wait_s=60, sleep=waits.append)
    with datastore(limited(1, retry_after="86400")) as (url, _), pytest.raises(SourceFormatError):
        client.get(f"{url}?q=*:*")
    assert waits == []


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("30", now) == 30.0
    assert retry_after_s("Tue, 01 Dec 2026 12:00:45 GMT", now) == 45.0
    assert retry_after_s("soon", now) is None and retry_after_s(None, now) is None


# ------------------------------------------------------------------------------ the key


def test_the_key_is_sent_as_the_subscription_header_and_never_in_a_url():
    with datastore(recorded) as (url, seen):
        list(iati.SOURCE.read(_config(url), {}))
    assert all(h.get("Ocp-Apim-Subscription-Key") == KEY for h in seen.headers)
    assert not any(KEY in path for path in seen.paths)


def echoing_key(status: int) -> Route:
    """A server that answers `status` and, at worst, echoes the key it was sent."""

    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]):
        echoed = headers.get("Ocp-Apim-Subscription-Key", "")
        body = {"statusCode": status, "message": f"Access denied for key {echoed}."}
        return status, {}, json.dumps(body).encode()

    return route


@pytest.mark.parametrize("status", [401, 403, 404, 500, 429])
def test_the_key_is_absent_from_every_error_message(status: int):
    with datastore(echoing_key(status)) as (url, _), pytest.raises(SourceFormatError) as refused:
        list(iati.SOURCE.read(_config(url, max_retries=1, backoff_s=0), {}))
    message = str(refused.value)
    assert KEY not in message and message.startswith(url) and f"HTTP {status}" in message
    assert "\n" not in message


def test_an_unreachable_datastore_refuses_in_one_line_without_the_key():
    with datastore(recorded) as (url, _):
        pass  # the server is gone now
    with pytest.raises(SourceFormatError) as refused:
        list(iati.SOURCE.read(_config(url), {}))
    assert "could not fetch" in str(refused.value) and KEY not in str(refused.value)


def test_the_key_from_the_environment_is_a_secret_that_never_prints(monkeypatch):
    monkeypatch.setenv("UF_SOURCE_IATI_API_KEY", KEY)
    config = load_config("iati", iati.IatiConfig, overrides={"inputs": [f"datastore:{PUBLISHER}"]})
    assert config.api_key.reveal() == KEY  # type: ignore[attr-defined]
    assert KEY not in repr(config)


def test_check_names_a_missing_key():
    config = iati.IatiConfig(
        inputs=[f"datastore:{PUBLISHER}"], datastore_url="http://127.0.0.1:9/", max_retries=0
    )
    assert iati.SOURCE.check(config)[0].startswith("datastore: no api_key")


def test_a_bare_datastore_input_without_publisher_or_query_is_refused_before_any_request():
    with datastore(recorded) as (url, seen), pytest.raises(ConfigError, match="whole IATI"):
        list(iati.SOURCE.read(_config(url, inputs=["datastore:"]), {}))
    assert seen.paths == []
    with datastore(recorded) as (url, seen):
        config = _config(url, inputs=["datastore:"], reporting_org_ref=PUBLISHER)
        assert len(_records(list(iati.SOURCE.read(config, {})))) == 28


# ------------------------------------------------------------------------------ refusals


def test_a_page_that_is_not_json_is_refused_in_one_line_and_nothing_is_sent():
    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]):
        return 200, {}, (PAGES / "truncated_page.json").read_bytes()

    items: list[Any] = []
    with datastore(route) as (url, _), pytest.raises(SourceFormatError) as refused:
        items.extend(iati.SOURCE.read(_config(url), {}))
    message = str(refused.value)
    assert items == []
    assert message.startswith(url) and "not JSON" in message and "\n" not in message
    assert KEY not in message


def test_a_json_answer_that_is_not_solr_is_refused():
    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]):
        return 200, {}, b'{"activities": []}'

    with datastore(route) as (url, _), pytest.raises(SourceFormatError, match="not a Solr answer"):
        list(iati.SOURCE.read(_config(url), {}))


def test_documents_without_usable_xml_go_to_the_dead_letters_naming_them():
    def route(path: str, query: dict[str, list[str]], headers: dict[str, str]):
        return 200, {}, (PAGES / "broken_documents.json").read_bytes()

    with datastore(route) as (url, _):
        items = list(iati.SOURCE.read(_config(url), {}))
    refused = [i for i in items if isinstance(i, Refused)]
    assert [r.stream for r in refused] == [iati.ACTIVITIES, iati.ACTIVITIES]
    assert "docs[0] (GB-CHC-1180001-NBO-WASH-09): no iati_xml" in refused[0].reason
    assert "docs[1] (GB-CHC-1180001-KLA-MKT-09)" in refused[1].reason
    assert "malformed XML" in refused[1].reason
    assert _records(items) == [] and isinstance(items[-1], Checkpoint)
    # dead letters are remembered: a re-run of the same page does not send them again
    with datastore(route) as (url, _):
        again = list(iati.SOURCE.read(_config(url), items[-1].state))
    assert not any(isinstance(i, Refused) for i in again)
