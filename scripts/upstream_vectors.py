"""Regenerate what upstream wrote in the golden vectors of `tests/vectors/upstream/`.

On request only: it needs the upstream shim (`/work/shared/upstream-shim/README.md`:
`awaken-store-shim`, upstream awaken's real stores and serde models behind the kit's
wire protocol). Each vector holds the calls that make it: `write`, store calls that
send a value (`save_thread`, `save_messages`, `create_run`, `save_thread_state`,
`checkpoint`), and `read`, the call that reads it back (`load_thread`,
`load_message_records`, `load_run`, ...). This script replays them against upstream's
`FileStore` and rewrites the two texts upstream wrote:

- `answer`: the read call's `result` as the shim sent it: `serde_json::to_value` of
  upstream's model, then `to_string`, so every object's keys come sorted
  (serde_json's `Map` is a `BTreeMap`);
- `serde`: what the `FileStore` wrote for the same value (`serde_json::to_string_pretty`
  of the struct, here with the whitespace outside strings removed, which is
  `serde_json::to_string`): struct fields in declaration order. `null` when no file
  holds the value read (a read view, a `CheckpointSnapshot`).

To add a vector, write its `model`, `covers`, `write` and `read` into a file there and
run the script. A value sent is one upstream's types hold, in the form serde writes it
(every field it writes, in its order), except in free JSON (`serde_json::Value` and
`HashMap` fields: `custom`, `arguments`, `extensions`, ...), whose keys may come in any
order, and where the vector's `note` says otherwise; a `HashMap` holds at most one key
(serde writes several in no fixed order). `tests/test_upstream_vectors.py` checks them.
From the repository root:

    python scripts/upstream_vectors.py [--shim PATH]

The shim's path defaults to `$SHIM`, else `${TMPDIR:-/tmp}/upstream-shim/target/debug/awaken-store-shim`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "upstream"
#: Where upstream's `FileStore` keeps what each read call reads (None: no file holds it).
FILES = {
    "load_thread": ("threads/{thread_id}.json",),
    "load_run": ("runs/{run_id}.json",),
    "load_thread_state": ("thread_states/{thread_id}.json",),
    "load_message_records": ("message_records/{thread_id}", "*.json"),
    "load_messages": None,
    "load_checkpoint": None,
}


class Shim:
    """One `awaken-store-shim file` process with one store open at a fresh directory."""

    def __init__(self, command: str) -> None:
        self.location = Path(tempfile.mkdtemp(prefix="upstream-vectors-"))
        self.process = subprocess.Popen(
            [command, "file"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
        )
        self.next_id = 0
        self.result("initialize", {"protocol_version": "1.0", "client": "upstream_vectors.py"})
        self.result("open", {"location": str(self.location)})

    def result(self, method: str, params: Any) -> str:
        """The text of the `result` of one call, exactly as the shim wrote it; exits on an error."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.process.stdin.write(json.dumps(request, ensure_ascii=False) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline().rstrip("\n")
        head = f'{{"id":{self.next_id},"jsonrpc":"2.0","result":'
        if not line.startswith(head) or not line.endswith("}"):
            sys.exit(f"{method} failed: {line}")
        return line[len(head) : -1]

    def serde(self, read: dict[str, Any]) -> str | None:
        """The compact text of the file(s) upstream wrote for what `read` reads (a list of records: an array)."""
        where = FILES[read["method"]]
        if where is None:
            return None
        path = self.location / where[0].format(**read["params"])
        if len(where) == 1:
            return compact(path.read_text(encoding="utf-8"))
        return "[" + ",".join(compact(file.read_text(encoding="utf-8")) for file in sorted(path.glob(where[1]))) + "]"

    def close(self) -> None:
        assert self.process.stdin is not None
        self.result("shutdown", {})
        self.process.stdin.close()
        self.process.wait(timeout=10)
        shutil.rmtree(self.location)


def compact(pretty: str) -> str:
    """serde_json's compact text of a text its pretty printer wrote: whitespace outside strings removed."""
    out: list[str] = []
    in_string = escaped = False
    for char in pretty:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char not in " \n":
            out.append(char)
    return "".join(out)


def layout(value: Any, indent: str = "") -> str:
    """JSON text for people: a value that fits in 100 columns on one line, else one item a line."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= 100 or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(key, ensure_ascii=False)}: {layout(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    return "[\n" + ",\n".join(f"{inner}{layout(item, inner)}" for item in value) + f"\n{indent}]"


def regenerate(shim: Shim, vector: dict[str, Any]) -> None:
    """Replay one vector's calls and set its `answer` and `serde` to what upstream wrote now."""
    for step in vector["write"]:
        if shim.result(step["method"], step["params"]) != "null":
            sys.exit(f"{step['method']} answered something else than null")
    vector["answer"] = shim.result(vector["read"]["method"], vector["read"]["params"])
    vector["serde"] = shim.serde(vector["read"])


def main() -> None:
    default = os.environ.get("SHIM") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "upstream-shim", "target", "debug", "awaken-store-shim"
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shim", default=default, help=f"the awaken-store-shim binary (default {default})")
    args = parser.parse_args()
    if not os.access(args.shim, os.X_OK):
        sys.exit(f"no shim at {args.shim}: build it (/work/shared/upstream-shim/README.md) or pass --shim")
    shim = Shim(args.shim)
    try:
        for path in sorted(VECTORS.glob("*.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            for vector in document["vectors"].values():
                regenerate(shim, vector)
            path.write_text(layout(document) + "\n", encoding="utf-8")
            print(f"{path.name}: {len(document['vectors'])} vectors")
    finally:
        shim.close()


if __name__ == "__main__":
    main()
