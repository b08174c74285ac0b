"""Mutations the fuzz tests share: byte-level damage, odd values and JSON-tree surgery.

Every function takes the test's seeded `random.Random`, so a failing case replays from its seed.
Format-aware mutations (IATI XML, SDMX messages, HXL tables) stay in their own tests; what every
format gets lives here once.
"""

from __future__ import annotations

import json
import random
from typing import Any

#: Numbers a parser may choke on: overflowing, not finite, other notations.
HUGE = ["1e999", "-1e999", "9" * 400, "NaN", "inf", "-0", "0x1F", "1_000", "1e-999", "²"]

#: Strings with edge cases of Unicode, size and shape.
ODD_TEXT = [
    "",
    " ",
    "\n",
    "a\nb",
    "\x00",
    "Région",
    "\ufffd",
    "\u202eevil",  # right-to-left override
    "\U0001f600",
    "e\u0301",  # combining accent
    "x" * 5_000,
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2024-02-30",
    "2024-13",
    *HUGE,
]

#: JSON values of every type, including the awkward ones.
ODD_JSON: list[Any] = [
    None,
    True,
    False,
    -1,
    0,
    1.5,
    2**63,
    10**30,
    1e308,
    -1e308,
    [],
    {},
    [None],
    {"x": 1},
    [1, 2],
    *ODD_TEXT,
]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Flip, insert, delete or duplicate a few runs of bytes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        kind = rng.randrange(4)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif kind == 1:
            out[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind == 2:
            del out[at : at + rng.randint(1, 64)]
        else:
            out[at:at] = out[at : at + rng.randint(1, 64)]
    return bytes(out)


def mutate_json_tree(rng: random.Random, tree: Any, values: list[Any] = ODD_JSON) -> Any:
    """Replace or delete a few nodes of a decoded JSON document, in place (wrong types, odd
    values, missing keys); returns the tree."""
    nodes: list[tuple[Any, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        children = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else []
        )
        for key, child in children:
            nodes.append((node, key))
            stack.append(child)
    for _ in range(rng.randint(1, 4) if nodes else 0):
        parent, key = rng.choice(nodes)
        if isinstance(parent, list) and key >= len(parent):
            continue
        if isinstance(parent, dict) and rng.random() < 0.3:
            parent.pop(key, None)
        else:
            parent[key] = rng.choice(values)
    return tree


def mutate_json(rng: random.Random, data: bytes, values: list[Any] = ODD_JSON) -> bytes:
    """`mutate_json_tree` on JSON bytes."""
    return json.dumps(mutate_json_tree(rng, json.loads(data), values)).encode()
