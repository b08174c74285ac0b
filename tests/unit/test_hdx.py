"""HDX source: CKAN package_show, HXL resources only, incremental on modification time, failures.

Recorded package_show answers (tests/fixtures/hdx) and HXL files (tests/fixtures/hxl) are served by
a real HTTP server on 127.0.0.1, with HDX's host rewritten to it: no network, no mocks.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from local_http import serve

from connectors.errors import ConfigError, SourceFormatError
from connectors.sdk import Checkpoint, Record, Refused, load_config
from connectors.sources import hdx, hxl
from connectors.sources.registry import all_sources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HDX = FIXTURES / "hdx"
HXL = FIXTURES / "hxl"
IOM = "urn:hdx:international-organization-for-migration"
SOMALIA_CSV = "somalia-idp-sites/dtm_som_idp_sites_2024-03.csv"
SOMALIA_XLSX = "somalia-idp-sites/dtm_eth_site_assessment_r35.xlsx"
Route = Callable[[str, dict[str, str]], tuple[int, str, bytes]]


def hdx_route(
    base: str, files: dict[str, bytes] | None = None, answers: dict | None = None
) -> Route:
    """HDX as recorded: package_show from the fixtures (links rewritten to `base`), downloads
    from the HXL fixtures by file name; `files` and `answers` override what is served."""
    files = files or {}
    answers = answers or {}

    def route(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        if path == "/api/3/action/package_show":
            dataset = query.get("id", "")
            if dataset in answers:
                return answers[dataset]
            recorded = HDX / f"package_show_{dataset}.json"
            if not recorded.exists():
                return 404, "application/json", (HDX / "package_show_not_found.json").read_bytes()
            body = recorded.read_bytes().replace(b"https://data.humdata.org", base.encode())
            return 200, "application/json", body
        name = path.rsplit("/", 1)[-1]
        if name in files:
            return 200, "text/csv", files[name]
        if name == "returnees_summary.csv":
            return 200, "text/html", (HDX / "sign_in_page.html").read_bytes()
        if (HXL / name).exists():
            return 200, "application/octet-stream", (HXL / name).read_bytes()
        return 404, "text/plain", b"Not Found"

    return route


def _config(base: str, inputs: list[str], **settings) -> hdx.HdxConfig:
    overrides = {"inputs": inputs, "api_url": f"{base}/api/3/action", **settings}
    return load_config("hdx", hdx.HdxConfig, overrides=overrides)


def _read(base: str, inputs: list[str], state: dict | None = None) -> list:
    return list(hdx.SOURCE.read(_config(base, inputs), state or {}))


def _records(out: list) -> list[Record]:
    return [i for i in out if isinstance(i, Record)]


def _downloads(requests: list[str]) -> list[str]:
    return [r.rsplit("/", 1)[-1] for r in requests if "/download/" in r]


def test_source_is_discovered_and_shares_the_hxl_topic_and_contract():
    source = all_sources()["hdx"]

    assert [(s.topic, s.event_type) for s in source.streams] == [
        ("partner.hxl.record.v1", "org.urbanflow.hxl.record.v2")
    ]
    assert (hdx.TOPIC, hdx.EVENT_TYPE) == (hxl.TOPIC, hxl.EVENT_TYPE)


def test_only_the_resources_marked_is_hxl_are_downloaded_and_read_as_hxl_reads_them():
    with serve(lambda p, q: route(p, q)) as (base, requests):
        route = hdx_route(base)
        out = _read(base, ["somalia-idp-sites"])

    records = _records(out)
    assert requests[0] == "/api/3/action/package_show?id=somalia-idp-sites"
    assert _downloads(requests) == [
        "dtm_som_idp_sites_2024-03.csv",
        "dtm_eth_site_assessment_r35.xlsx",
    ]  # not the PDF (is_hxl false)
    assert {r.data["dataset"]: 0 for r in records} == {SOMALIA_CSV: 0, SOMALIA_XLSX: 0}
    assert sum(r.data["dataset"] == SOMALIA_CSV for r in records) == 40
    assert sum(r.data["dataset"] == SOMALIA_XLSX for r in records) == 23
    assert {r.source for r in records} == {IOM}
    assert {r.key for r in records} == {SOMALIA_CSV, SOMALIA_XLSX}
    girls = next(r.data for r in records if r.data["row"] == 3 and r.data["column"] == 14)
    assert (girls["sex"], girls["age_group"], girls["value"], girls["city_code"]) == (
        "female",
        "children",
        14890,
        "SOMGQ",
    )
    assert not [i for i in out if isinstance(i, Refused)]


def test_a_rerun_downloads_nothing_when_hdx_reports_no_modification():
    with serve(lambda p, q: route(p, q)) as (base, requests):
        route = hdx_route(base)
        first = _read(base, ["somalia-idp-sites"])
        state = first[-1].state
        requests.clear()
        second = _read(base, ["somalia-idp-sites"], state)

    assert isinstance(first[-1], Checkpoint)
    assert state["resources"]["3e5d2b1a-9c8f-4e7d-a6b5-0f1e2d3c4b5a"]["modified"] == (
        "2024-04-08T09:14:50.118202"
    )
    assert second == []
    assert requests == ["/api/3/action/package_show?id=somalia-idp-sites"]


def _modified(base: str, last_modified: str) -> tuple[int, str, bytes]:
    """The recorded Somalia answer with its CSV resource's last_modified changed."""
    answer = orjson.loads((HDX / "package_show_somalia-idp-sites.json").read_bytes())
    answer["result"]["resources"][0]["last_modified"] = last_modified
    body = orjson.dumps(answer).replace(b"https://data.humdata.org", base.encode())
    return 200, "application/json", body


def test_a_modified_resource_is_downloaded_again_and_sent_only_if_its_content_changed():
    csv = (HXL / "dtm_som_idp_sites_2024-03.csv").read_bytes()
    with serve(lambda p, q: route(p, q)) as (base, requests):
        route = hdx_route(base)
        state = _read(base, ["somalia-idp-sites"])[-1].state
        newer = {"somalia-idp-sites": _modified(base, "2024-05-01T07:00:00Z")}
        route = hdx_route(base, answers=newer)
        requests.clear()
        touched = _read(base, ["somalia-idp-sites"], state)
        touched_downloads = _downloads(requests)
        route = hdx_route(
            base,
            files={"dtm_som_idp_sites_2024-03.csv": csv.replace(b"48210", b"48310")},
            answers={"somalia-idp-sites": _modified(base, "2024-05-02T07:00:00")},
        )
        changed = _read(base, ["somalia-idp-sites"], touched[-1].state)

    assert touched_downloads == ["dtm_som_idp_sites_2024-03.csv"]  # only the modified one
    assert _records(touched) == []  # same bytes: nothing to send
    assert touched[-1].state["resources"]["3e5d2b1a-9c8f-4e7d-a6b5-0f1e2d3c4b5a"] == {
        "modified": "2024-05-01T07:00:00Z",
        "sha256": state["resources"]["3e5d2b1a-9c8f-4e7d-a6b5-0f1e2d3c4b5a"]["sha256"],
    }
    assert len(_records(changed)) == 40  # a changed file is sent whole, as hxl does
    assert {r.data["dataset"] for r in _records(changed)} == {SOMALIA_CSV}


def test_a_latin1_resource_loads_and_a_resource_that_answers_a_web_page_is_dead_lettered():
    with serve(lambda p, q: route(p, q)) as (base, requests):
        route = hdx_route(base)
        first = _read(base, ["https://data.humdata.org/dataset/honduras-returnees"])
        requests.clear()
        second = _read(base, ["honduras-returnees"], first[-1].state)

    records = _records(first)
    (dead,) = [i for i in first if isinstance(i, Refused)]
    assert len(records) == 9
    assert {r.data["admin1"] for r in records} == {"Francisco Morazán", "Cortés", "Atlántida"}
    assert dead.reason == (
        "HDX honduras-returnees/returnees_summary_page.csv (resource "
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d): "
        f"{base}/dataset/e2f1a0b9-8c7d-4e6f-a5b4-3c2d1e0f9a8b/resource/"
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d/download/returnees_summary.csv: "
        "an HTML page, not a data file"
    )
    assert dead.stream.topic == "partner.hxl.record.v1"
    assert orjson.loads(dead.payload)["resource_name"] == "returnees_summary_page.csv"
    assert dead.key == "honduras-returnees/returnees_summary_page.csv"
    # both are checkpointed: neither is read again until HDX says it changed
    assert second == [] and _downloads(requests) == []


def test_a_resource_gone_from_its_server_is_dead_lettered_and_the_rest_loads():
    with serve(lambda p, q: route(p, q)) as (base, _):
        route = hdx_route(base)
        answer = orjson.loads((HDX / "package_show_somalia-idp-sites.json").read_bytes())
        answer["result"]["resources"][0]["url"] += "-gone"
        body = orjson.dumps(answer).replace(b"https://data.humdata.org", base.encode())
        route = hdx_route(base, answers={"somalia-idp-sites": (200, "application/json", body)})
        out = _read(base, ["somalia-idp-sites"])

    (dead,) = [i for i in out if isinstance(i, Refused)]
    assert dead.reason.endswith("dtm_som_idp_sites_2024-03.csv-gone: HTTP 404 Not Found")
    assert {r.data["dataset"] for r in _records(out)} == {SOMALIA_XLSX}


def test_a_server_error_on_a_download_refuses_the_run_before_anything_is_sent():
    def route(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        if path.endswith(".xlsx"):
            return 503, "text/plain", b"Service Unavailable"
        return inner(path, query)

    with serve(route) as (base, _):
        inner = hdx_route(base)
        items: list = []
        with pytest.raises(SourceFormatError, match=r"dtm_eth_site_assessment_r35.xlsx: HTTP 503"):
            for item in hdx.SOURCE.read(_config(base, ["somalia-idp-sites"]), {}):
                items.append(item)

    assert items == []  # the CSV was read, but nothing is sent from a refused run


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (None, "HTTP 404: Not Found Error: Not found"),
        ((200, "text/html", b"<!DOCTYPE html><html></html>"), "not a CKAN API answer (not JSON"),
        (
            (200, "application/json", b'{"success": false, "error": {"message": "Access denied"}}'),
            "package_show did not succeed: Access denied",
        ),
        (
            (200, "application/json", b'{"success": true, "result": []}'),
            "package_show answered no dataset",
        ),
        (
            (500, "application/json", b'{"success": false, "error": {"__type": "Internal"}}'),
            "HTTP 500: Internal",
        ),
    ],
    ids=["unknown dataset", "html", "ckan error", "no dataset", "server error"],
)
def test_a_failing_api_refuses_the_run_in_one_line_naming_the_url(answer, problem):
    with serve(lambda p, q: route(p, q)) as (base, _):
        route = hdx_route(base, answers={} if answer is None else {"somalia-idp-sites": answer})
        name = "no-such-dataset" if answer is None else "somalia-idp-sites"
        with pytest.raises(SourceFormatError) as raised:
            _read(base, [name])

    assert str(raised.value).startswith(f"{base}/api/3/action/package_show?id={name}: {problem}")
    assert "\n" not in str(raised.value)


def test_an_unreachable_api_refuses_the_run_naming_the_url():
    config = _config("http://127.0.0.1:9", ["somalia-idp-sites"], timeout_s=5)

    with pytest.raises(SourceFormatError, match=r"^http://127\.0\.0\.1:9/api/3/action/.*could not"):
        list(hdx.SOURCE.read(config, {}))


def test_inputs_are_dataset_names_ids_or_page_urls_and_anything_else_is_refused():
    assert hdx.helpers.dataset_id("https://data.humdata.org/dataset/somalia-idp-sites/") == (
        "somalia-idp-sites"
    )
    assert hdx.helpers.dataset_id(" 7c3f9a2e-51d4-4b8e-9f0a-2d6c1e8b4a17 ") == (
        "7c3f9a2e-51d4-4b8e-9f0a-2d6c1e8b4a17"
    )
    with pytest.raises(SourceFormatError, match="not an HDX dataset name"):
        hdx.helpers.dataset_id("../etc/passwd")


def test_check_reports_each_dataset_it_cannot_read():
    with serve(lambda p, q: route(p, q)) as (base, _):
        route = hdx_route(base)
        problems = hdx.SOURCE.check(_config(base, ["somalia-idp-sites", "gone-dataset"]))

    assert problems == [
        f"{base}/api/3/action/package_show?id=gone-dataset: HTTP 404: Not Found Error: Not found"
    ]


def test_settings_reject_unknown_keys_and_a_non_http_api_url():
    with pytest.raises(ConfigError, match="api_url"):
        load_config("hdx", hdx.HdxConfig, overrides={"inputs": ["x"], "api_url": "file:///etc"})
    with pytest.raises(ConfigError, match="partner"):
        load_config("hdx", hdx.HdxConfig, overrides={"inputs": ["x"], "partner": "iom"})


def test_modification_times_compare_across_spellings_and_unreadable_ones_are_read_again():
    resource = hdx.helpers.HdxResource("d", "o", "r", "n", "u", "2024-05-01T07:00:00Z")

    assert not hdx.helpers.is_newer(resource, "2024-05-01T07:00:00")
    assert not hdx.helpers.is_newer(resource, "2024-05-01T09:00:00+02:00")
    assert hdx.helpers.is_newer(resource, "2024-04-30T23:59:59.999999")
    assert hdx.helpers.is_newer(resource, "yesterday")
    assert hdx.helpers.is_newer(resource, None)
    assert re.fullmatch(r"urn:hdx:o", hdx.source_urn(resource))


def _junk(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 1e308, "true", "", "x" * 400])
    if kind == 2:
        return rng.choice(["2024-05-01T07:00:00", "yesterday", "", "2024-13-45", "http://h/x.csv"])
    if kind == 3:
        return rng.randint(-(10**30), 10**30)
    if kind == 4:
        return "ftp://example.org/f.csv"
    if kind == 5:
        return [_junk(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [
        "success",
        "result",
        "resources",
        "is_hxl",
        "id",
        "name",
        "url",
        "organization",
        "last_modified",
        "metadata_modified",
        "download_url",
        "error",
        "message",
        "__type",
    ]
    return {rng.choice(keys): _junk(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def test_any_json_package_show_answer_gives_resources_or_a_one_line_refusal():
    rng = random.Random(20261201)
    good = orjson.loads((HDX / "package_show_somalia-idp-sites.json").read_bytes())
    outcomes = {"resources": 0, "refused": 0}
    for number in range(2_000):
        if number % 2:
            answer = _junk(rng)
        else:  # the recorded answer with one part replaced by junk
            answer = orjson.loads(orjson.dumps(good))
            node = (
                answer["result"]
                if rng.random() < 0.5
                else rng.choice(answer["result"]["resources"])
            )
            node[rng.choice(sorted(node))] = _junk(rng)
        text = json.dumps(answer).encode()  # json, not orjson: it writes integers past 64 bits
        payload = text if rng.random() < 0.9 else text[:-3]
        try:
            found = hdx.helpers.hxl_resources(payload, "u")
        except SourceFormatError as refusal:
            assert str(refusal).startswith("u: ") and "\n" not in str(refusal)
            outcomes["refused"] += 1
            continue
        for resource in found:
            assert isinstance(resource.url, str) and isinstance(resource.modified, str)
            hdx.helpers.is_newer(resource, "2024-01-01T00:00:00")
            orjson.loads(resource.metadata())
        outcomes["resources"] += 1
    assert min(outcomes.values()) > 100, outcomes
