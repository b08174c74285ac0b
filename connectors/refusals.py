"""An input item we refuse, with its reason: the one type the SDK, sources, sink and API share.

Whatever refuses an item (a source reading a file, the sink decoding a Kafka record, the API
checking a partner's event) says what the item was and why in a `Refused`; it is raised where one
item ends a request and yielded where the reader goes on with the rest. Dead letters carry the same
reason in the same headers, built here once.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Kafka header values are bytes; a reason longer than this is cut (a header is not a log).
MAX_REASON_BYTES = 4000
#: The prefix of every header UrbanFlow writes on a dead letter.
HEADER_PREFIX = "uf."
#: What a `Refused` says, in the order its constructor takes it.
FIELDS = (
    "reason",
    "key",
    "payload",
    "error_class",
    "contract",
    "line",
    "event_id",
    "stream",
    "forbidden",
)


class Refused(Exception):
    """One input item refused: why (`reason`, naming the file, line or field), and what it was.

    `key` and `payload` are the item as it should be replayed once fixed; `error_class` groups
    refusals (`contract`, `decode`, `oversize`, `source` ...); `line` is its place in a file;
    `event_id` the CloudEvent id when the item had one; `stream` the source stream it was read
    for; `forbidden` marks a refusal for lack of rights rather than for bad content.
    """

    def __init__(
        self,
        reason: str,
        *,
        key: str | None = None,
        payload: bytes | None = None,
        error_class: str = "source",
        contract: str = "",
        line: int | None = None,
        event_id: str | None = None,
        stream: object = None,
        forbidden: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.key = key
        self.payload = payload
        self.error_class = error_class
        self.contract = contract
        self.line = line
        self.event_id = event_id
        self.stream = stream
        self.forbidden = forbidden

    def replace(self, **changes: object) -> Refused:
        """A copy with some fields changed (e.g. the `stream` a parser could not know)."""
        fields = {name: getattr(self, name) for name in FIELDS}
        fields.update(changes)
        return Refused(**fields)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Refused({self.reason!r}, key={self.key!r}, error_class={self.error_class!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Refused) and vars(self) == vars(other)

    __hash__ = Exception.__hash__


def dead_letter_headers(
    refused: Refused, origin: Mapping[str, object] | None = None
) -> list[tuple[str, bytes]]:
    """Kafka headers of a dead letter: error class, reason, contract, then where it came from.

    `origin` names what the reader knows of the item's place (`original.topic`, `source` ...);
    each becomes a `uf.<name>` header, in the order given.
    """
    headers = [
        (f"{HEADER_PREFIX}error.class", refused.error_class.encode()),
        (f"{HEADER_PREFIX}error.reason", refused.reason.encode()[:MAX_REASON_BYTES]),
        (f"{HEADER_PREFIX}contract", refused.contract.encode()),
    ]
    for name, value in (origin or {}).items():
        headers.append((f"{HEADER_PREFIX}{name}", str(value).encode()))
    return headers
