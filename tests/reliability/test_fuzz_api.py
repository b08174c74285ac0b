"""The push API under thousands of generated requests: every one is answered with a reason, none
with a 5xx, and exactly the events the API said it accepted reach Kafka, each within its contract.

Seeded and capped (`REQUESTS`), against the real server (`urbanflow api serve`) and the real
broker, on a random result topic. The cases cover what partners' systems really send wrong:
broken or truncated JSON, wrong JSON types and odd values in every field, Unicode edge cases,
bodies over the size limit, wrong content types, and CSV/XLSX uploads that are damaged, in other
encodings, not spreadsheets at all, or zip bombs. Schemathesis covers the OpenAPI side
(tests/integration/test_api_schemathesis.py); this adds volume and the file formats.
"""

from __future__ import annotations

import copy
import io
import random
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import openpyxl
import orjson
import pytest
import secrets_registry
from fuzzing import ODD_JSON, ODD_TEXT, mutate_bytes, mutate_json_tree
from integration.test_api import (
    ApiServer,
    api_env,
    delete_topic,
    published,
    result_event,
    result_topic_file,
)

from connectors.api.partners import PartnerStore
from connectors.contracts import get_contract
from connectors.errors import ContractError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20261201
REQUESTS = 5_000
MAX_BODY = 64 * 1024
#: Answers a refused request may get; each must carry a reason.
REFUSALS = {400, 403, 413, 415, 422}
CSV_HEADER = b"activity_id,city_code,theme,indicator,period,value,unit,sex,age_group\n"
CSV_ROW = b"GB-1-101,KENBO,basic_services,people_reached,2025,350,people,total,\n"


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("api-fuzz-volume")
    spec, topics_file = result_topic_file(kafka_bootstrap, folder)
    partner, key = PartnerStore(folder / "partners.sqlite").add(f"vol-{uuid.uuid4().hex[:6]}")
    secrets_registry.register(key, "partner API key")
    env = api_env(
        kafka_bootstrap,
        folder,
        topics_file,
        UF_API_MAX_BODY_BYTES=str(MAX_BODY),
        UF_API_MAX_FILE_BYTES=str(MAX_BODY),
        UF_API_RATE_PER_S="1000000",
        UF_API_RATE_BURST="1000000",
    )
    server = ApiServer(env, folder / "server.log").start()
    try:
        yield {"server": server, "key": key, "source": partner.default_source, "topic": spec.name}
    finally:
        server.stop()
        delete_topic(kafka_bootstrap, spec)


# ------------------------------------------------------------------------------- the cases


def _batch(rng: random.Random, source: str) -> dict[str, Any]:
    events = [result_event(f"fz-{rng.getrandbits(48):x}", source) for _ in range(rng.randint(1, 5))]
    return {"events": events}


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _zip_bomb() -> bytes:
    """An .xlsx-shaped zip under the upload limit whose one sheet inflates to 60 MB of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            chunk = b"\0" * (1 << 20)
            for _ in range(60):
                sheet.write(chunk)
    return out.getvalue()


def cases(source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, httpx request arguments) for REQUESTS seeded requests."""
    rng = random.Random(SEED)
    good_xlsx = _xlsx([CSV_HEADER.decode().strip().split(","), CSV_ROW.decode().split(",")])
    bomb = _zip_bomb()
    for number in range(REQUESTS):
        kind = number % 10
        if kind == 0:  # valid batches: some must get through
            yield "valid", {"json": _batch(rng, source)}
        elif kind in (1, 2):  # wrong types and odd values anywhere in the tree
            yield "mutated", {"json": mutate_json_tree(rng, _batch(rng, source))}
        elif kind == 3:  # Unicode edge cases in the text fields
            batch = _batch(rng, source)
            for event in batch["events"]:
                field = rng.choice(["activity_id", "city_code", "indicator", "period", "unit"])
                event["data"][field] = rng.choice(ODD_TEXT)
            yield "unicode", {"json": batch}
        elif kind == 4:  # broken JSON bytes
            body = orjson.dumps(_batch(rng, source))
            broken = rng.choice([body[: rng.randrange(len(body))], mutate_bytes(rng, body)])
            json_type = {"content-type": "application/json"}
            yield "broken-json", {"content": broken, "headers": json_type}
        elif kind == 5:  # oversize, or not one event nor a batch
            big = {"events": [result_event("big", source, activity_id="x" * (MAX_BODY + 1))]}
            other = rng.choice([None, [], "events", 7, {"events": {}}, {"events": [None]}])
            yield "shape", {"json": big if rng.random() < 0.3 else other}
        elif kind == 6:  # wrong content types and empty bodies on /v1/events
            yield (
                "content-type",
                {
                    "content": rng.choice([b"", b"a,b\n1,2", rng.randbytes(64)]),
                    "headers": {"content-type": rng.choice(["text/csv", "", "application/xml"])},
                },
            )
        elif kind == 7:  # damaged CSV uploads, in any encoding
            body = CSV_HEADER + CSV_ROW * rng.randint(1, 4)
            text = mutate_bytes(rng, body).decode("utf-8", "replace")
            encoding = rng.choice(["utf-8", "utf-16", "cp1252", "latin-1", "utf-8-sig"])
            yield "csv", {"file": ("upload.csv", text.encode(encoding, "replace"))}
        elif kind == 8:  # XLSX: damaged, not a workbook, or a zip bomb
            content = rng.choice(
                [mutate_bytes(rng, good_xlsx), b"PK\x03\x04" + rng.randbytes(200), bomb]
            )
            yield "xlsx", {"file": ("upload.xlsx", content)}
        else:  # an event that is valid but for one field of odd value
            batch = _batch(rng, source)
            event = rng.choice(batch["events"])
            event["data"][rng.choice(list(event["data"]))] = copy.deepcopy(rng.choice(ODD_JSON))
            yield "odd-value", {"json": batch}


def _send(client: httpx.Client, key: str, case: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **case.get("headers", {})}
    if "file" in case:
        return client.post("/v1/files", files={"file": case["file"]}, headers=headers)
    if "json" in case:
        return client.post("/v1/events", json=case["json"], headers=headers)
    return client.post("/v1/events", content=case["content"], headers=headers)


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail") or body.get("errors") or body.get("title")
    return str(detail) if detail else ""


# ------------------------------------------------------------------------------ the test


def test_thousands_of_generated_requests_get_reasons_never_a_5xx_and_only_accepted_publish(
    api, kafka_bootstrap
):
    started = time.monotonic()
    answers: Counter[tuple[str, int]] = Counter()
    accepted = 0
    with httpx.Client(base_url=api["server"].url, timeout=120.0) as client:
        for kind, case in cases(api["source"]):
            response = _send(client, api["key"], case)
            answers[kind, response.status_code] += 1
            assert response.status_code < 500, f"{kind}: {response.status_code} {response.text}"
            if response.status_code == 202:
                accepted += response.json()["accepted"]
            else:
                assert response.status_code in REFUSALS, f"{kind}: {response.status_code}"
                assert _reason(response), f"{kind}: {response.status_code} without a reason"

    events = published(kafka_bootstrap, api["topic"])
    assert len(events) == accepted > 0
    for event in events:  # the reference validator, not the API's own path
        try:
            get_contract(event["type"]).validate_event(event)
        except ContractError as exc:
            pytest.fail(f"published event {event.get('id')} breaks its contract: {exc}")
    kinds = Counter(kind for kind, _ in answers.elements())
    assert sum(kinds.values()) == REQUESTS
    assert answers["valid", 202] == kinds["valid"]  # every valid batch got through
    print(
        f"\napi fuzz: {REQUESTS:,} requests in {time.monotonic() - started:.0f} s, "
        f"{accepted:,} events accepted and published; answers "
        + ", ".join(f"{k}/{s}: {n}" for (k, s), n in sorted(answers.items()))
    )


def test_invalid_utf8_inside_an_event_is_a_400_naming_the_byte_not_a_500(api):
    """What the fuzz first found: msgspec checks UTF-8 only where it decodes strings, and raised
    UnicodeDecodeError from inside an event of a batch."""
    body = orjson.dumps(_batch(random.Random(1), api["source"])).replace(b'"fz-', b'"\xe1fz-', 1)
    response = httpx.post(
        f"{api['server'].url}/v1/events",
        content=body,
        headers={"Authorization": f"Bearer {api['key']}", "content-type": "application/json"},
        timeout=120.0,
    )
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["detail"] and "at byte" in response.json()["detail"]
