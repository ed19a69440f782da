"""A fake store process for the wire tests: `python wire_fake_store.py MODE`, one fault per mode.

It answers `initialize`, `open` and `close` like a store, logs each method it receives
to standard error (`got <method>`), and answers store methods as MODE says:

- `null`: null to everything (a store that is always empty);
- `exit`: writes "fake store: crashed in <method>" to standard error and exits with status 3;
- `garbage`: prints a debug line, not JSON, on standard output;
- `unknown-id`: answers with an id 1000 past the request's;
- `silent`: never answers;
- `bad-kind`: a storage error of kind "Banana";
- `internal`: a JSON-RPC internal error (-32603);
- `bad-result`: `{"id": 5}` as the result (not a Thread);
- `version`: answers `initialize` with protocol version 2.0;
- `exit-idle`: exits right after answering `close`;
- `mute-exit`: exits with status 0 at the first store method, having written nothing to standard error;
- `no-result`, `bad-error`, `cancelled`, `request`: an answer with neither result nor
  error, an error without a code, -32800 to a request never cancelled, a request of its own;
- `bad-initialize`, `bad-capabilities`, `bad-open`: `initialize` answers a list, or
  capabilities that are not names; `open` answers a number;
- `minimal`: -32601 (method not found) for every default method, null otherwise;
- `hold`: holds the answer to `load_thread("slow")` until it is cancelled, then logs
  "answered cancelled" 0.2 s later and answers -32800; null to everything else;
- `echo`: a storage error of kind Io whose message is the request's `params` as
  received (JSON), so a test can read the request line the kit sent;
- `parse-error`: -32700 (parse error) with id null to every store method: a store
  whose parser refuses lines that are JSON; `parse-errors-in-pairs`: the same, once
  two store calls have come (so both are in flight when the first answer comes);
- `requires-expected-version`: not a fake, the reference store served as
  `python -m conformance serve` serves it, except that `expected_version` is a
  required param (-32602 when it is left out): a store that does not take a `?` param
  left out;
- `strict-null`, `strict-id`: not fakes, the reference store served as a strict JSON
  peer (Rust's serde_json) serves it: a line holding a lone surrogate does not parse
  (-32700, with id null, or with the request's id for `strict-id`), and an integer
  outside -2**63 .. 2**64 - 1 reads as a float that an integer param refuses
  (`Validation`). Written apart from the kit's own checks (`lone_surrogate_in`), so
  a test of those checks does not check them against themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

ABSTRACT = {
    "load_thread",
    "save_thread",
    "delete_thread",
    "list_threads",
    "load_committed_messages",
    "save_messages",
    "delete_messages",
    "update_thread_metadata",
    "create_run",
    "load_run",
    "latest_run",
    "list_runs",
    "checkpoint",
}


def send(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
    sys.stdout.flush()


def log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def main(mode: str) -> None:
    held: int | None = None
    unparsed = 0
    for line in sys.stdin:
        message = json.loads(line)
        method, request_id = message["method"], message.get("id")
        if mode == "mute-exit":
            if method not in ("initialize", "open"):
                sys.exit(0)
        else:
            log(f"got {method}")
        if method == "$/cancelRequest":
            if held is not None and message["params"]["id"] == held:
                time.sleep(0.2)
                log("answered cancelled")
                send({"id": held, "error": {"code": -32800, "message": "cancelled"}})
                held = None
            continue
        if method == "initialize":
            version = "2.0" if mode == "version" else "1.0"
            capabilities = [1] if mode == "bad-capabilities" else ["thread_state"]
            initialized = {"protocol_version": version, "capabilities": capabilities}
            send({"id": request_id, "result": [] if mode == "bad-initialize" else initialized})
        elif method == "open" and mode == "bad-open":
            send({"id": request_id, "result": 5})
        elif method in ("open", "close", "shutdown"):
            opened = {"storage_identity": f"fake:{os.getpid()}"}
            send({"id": request_id, "result": opened if method == "open" else None})
            if method == "shutdown" or (method == "close" and mode == "exit-idle"):
                return
        elif mode == "exit":
            log(f"fake store: crashed in {method}")
            sys.exit(3)
        elif mode == "garbage":
            print("debug: hello", flush=True)
        elif mode == "unknown-id":
            send({"id": request_id + 1000, "result": None})
        elif mode == "bad-kind":
            send({"id": request_id, "error": {"code": -32000, "message": "?", "data": {"kind": "Banana"}}})
        elif mode == "internal":
            send({"id": request_id, "error": {"code": -32603, "message": "KeyError: 'x'"}})
        elif mode == "bad-result":
            send({"id": request_id, "result": {"id": 5}})
        elif mode == "no-result":
            send({"id": request_id})
        elif mode == "bad-error":
            send({"id": request_id, "error": {"message": "no code"}})
        elif mode == "cancelled":
            send({"id": request_id, "error": {"code": -32800, "message": "cancelled"}})
        elif mode == "request":
            send({"id": request_id, "method": "load_thread", "params": {}})
        elif mode == "minimal" and method not in ABSTRACT:
            send({"id": request_id, "error": {"code": -32601, "message": f"no {method}"}})
        elif mode == "echo":
            params = json.dumps(message["params"])
            send(
                {
                    "id": request_id,
                    "error": {"code": -32000, "message": params, "data": {"kind": "Io", "message": params}},
                }
            )
        elif mode.startswith("parse-error"):
            unparsed += 1
            answers = 1 if mode == "parse-error" else 2 * (unparsed % 2 == 0)
            for _ in range(answers):
                send({"id": None, "error": {"code": -32700, "message": "parse error: expected value at line 1"}})
        elif mode == "hold" and message["params"].get("thread_id") == "slow":
            held = request_id
        elif mode != "silent":
            send({"id": request_id, "result": None})


def serve_requiring(name: str) -> None:
    """Serve the reference store, answering -32602 to a request that leaves out the param `name`."""
    from dataclasses import replace

    from conformance import serve_store
    from conformance.wire._protocol import METHODS
    from reference_store import ReferenceStore

    for method in list(METHODS.values()):
        params = tuple(replace(param, optional=False) if param.name == name else param for param in method.params)
        METHODS[method.name] = replace(method, params=params)
    serve_store(ReferenceStore)


def serve_strict(*, salvage: bool) -> None:
    """Serve the reference store as a strict JSON peer; `salvage`: a parse error carries the request's id."""
    from conformance.contract._codec import JsonObject
    from conformance.wire._channel import LineReader, LineWriter
    from conformance.wire._server import _Server
    from reference_store import ReferenceStore

    class StrictServer(_Server):
        def _receive(self, raw: bytes) -> None:
            wide: list[str] = []

            def read_int(text: str) -> int:
                if not -(2**63) <= int(text) < 2**64:
                    wide.append(text)
                return int(text)

            message = json.loads(raw, parse_int=read_int)
            request_id = message.get("id")
            try:
                json.dumps(message, ensure_ascii=False).encode("utf-8")  # what a Rust String cannot hold
            except UnicodeEncodeError as error:
                failure: JsonObject = {"code": -32700, "message": f"parse error: lone surrogate ({error.reason})"}
                self._reply(request_id if salvage else None, {"error": failure})
                return
            if wide and request_id is not None:
                text = f"invalid type: floating point `{float(wide[0])}`, expected u64"
                failure = {"code": -32000, "message": text, "data": {"kind": "Validation", "message": text}}
                self._reply(request_id, {"error": failure})
                return
            super()._receive(raw)

    output = os.dup(1)
    os.dup2(2, 1)
    asyncio.run(StrictServer(ReferenceStore, LineReader(0), LineWriter(output)).run())


if __name__ == "__main__":
    if sys.argv[1] == "requires-expected-version":
        serve_requiring("expected_version")
    elif sys.argv[1].startswith("strict-"):
        serve_strict(salvage=sys.argv[1] == "strict-id")
    else:
        main(sys.argv[1])
