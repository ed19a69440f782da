#!/usr/bin/env node
// A thread/run store in plain Node.js (no npm dependencies) that speaks the kit's wire
// protocol (docs/PROTOCOL.md): newline-delimited JSON-RPC 2.0 on stdin and stdout.
//
//     python -m conformance --store-command "node examples/node/store.mjs"
//
// It keeps everything in memory; with `--durable` it keeps each store in
// `<location>/store.json` and declares `durable` too (see "Durable mode" below).
//
// Every request is handled from start to finish when its line is read, one at a time,
// on Node's single thread: no request ever sees another half done. That is what makes
// it keep `concurrent_writers` and `atomic_delete` however many requests the kit has in
// flight, and `cancel_safe`: a `$/cancelRequest` always arrives after the request it
// names was answered, so it has nothing to cancel. Every write checks everything
// before it changes anything, so a refused call leaves the store as it was (ATO-1).
//
// Models are kept as the JSON the kit sent (their serde shape, SPEC section 2) and
// written back as they are: the kit reads results as models, so that conforms as well
// as re-serializing them would (PROTOCOL.md section 9). Numbers are kept exactly, which
// JSON.parse cannot do (see "JSON that keeps every number"). The rules are ported from
// the contract's Python helpers (conformance/contract/), function by function, with
// SPEC rule IDs in comments.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

const PROTOCOL_VERSION = "1.0";
const DURABLE = process.argv.includes("--durable");
const CAPABILITIES = ["thread_state", "atomic_delete", "concurrent_writers", "cancel_safe", "any_ids"];
if (DURABLE) CAPABILITIES.push("durable");
const MAX_LIMIT = 200;

// Standard output carries the protocol: anything logged goes to standard error.
console.log = console.error;

// ── errors ────────────────────────────────────────────────────────────

class StorageError extends Error {
  constructor(kind, message, fields = {}) {
    super(message);
    this.kind = kind;
    this.fields = fields;
  }
}
const invalid = (message) => new StorageError("Validation", message);
const notFound = (message) => new StorageError("NotFound", message);
const versionConflict = (expected, actual) =>
  new StorageError("VersionConflict", `version conflict: expected ${expected}, actual ${actual}`, { expected, actual });

class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// ── JSON that keeps every number ──────────────────────────────────────
//
// JSON.parse reads every number as a double: an integer past 2**53 loses its last digits
// (upstream's u64 stamps and counts go up to 2**64 - 1), and JSON.stringify writes the
// float 1.0 as `1` and -0.0 as `0`, which the kit reads back as integers. So this store
// reads and writes JSON itself: an integer is a Number while it is safe (up to 2**53 - 1)
// and a BigInt past that, so equal integers always look alike (=== compares them); a
// number written with a fraction or an exponent is a JsonFloat that keeps its text and is
// written back as it came. Strings go through JSON.parse and JSON.stringify, which read
// and write them as serde does.

class JsonFloat {
  constructor(text) {
    this.text = text;
    Object.freeze(this);
  }

  valueOf() {
    return Number(this.text);
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

// Set a key, even "__proto__", as an own property (as JSON.parse does).
function define(object, key, value) {
  if (key === "__proto__") Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  else object[key] = value;
}

function parseJson(text) {
  let at = 0;
  const fail = () => {
    throw new SyntaxError(`not JSON at offset ${at}`);
  };
  const space = () => {
    while (text[at] === " " || text[at] === "\t" || text[at] === "\n" || text[at] === "\r") at++;
  };
  const expect = (char) => {
    space();
    if (text[at++] !== char) fail();
  };
  const string = () => {
    const start = at++;
    for (;;) {
      const char = text[at++];
      if (char === undefined) fail();
      if (char === '"') return JSON.parse(text.slice(start, at));
      if (char === "\\") at++;
    }
  };
  const value = () => {
    space();
    const char = text[at];
    if (char === "{") {
      at++;
      const object = {};
      space();
      if (text[at] === "}") return at++, object;
      do {
        space();
        if (text[at] !== '"') fail();
        const key = string();
        expect(":");
        define(object, key, value());
        space();
      } while (text[at++] === ",");
      if (text[at - 1] !== "}") fail();
      return object;
    }
    if (char === "[") {
      at++;
      const array = [];
      space();
      if (text[at] === "]") return at++, array;
      do {
        array.push(value());
        space();
      } while (text[at++] === ",");
      if (text[at - 1] !== "]") fail();
      return array;
    }
    if (char === '"') return string();
    for (const [word, literal] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, at)) return (at += word.length), literal;
    }
    NUMBER.lastIndex = at;
    const match = NUMBER.exec(text);
    if (match === null) fail();
    at = NUMBER.lastIndex;
    if (match[1] !== undefined || match[2] !== undefined) return new JsonFloat(match[0]);
    const number = Number(match[0]);
    return Number.isSafeInteger(number) ? number : BigInt(match[0]);
  };
  const result = value();
  space();
  if (at !== text.length) fail();
  return result;
}

function stringifyJson(value) {
  if (value === null || value === undefined) return "null"; // undefined only inside arrays, as JSON.stringify
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "bigint":
      return value.toString();
  }
  if (value instanceof JsonFloat) return value.text;
  if (Array.isArray(value)) return `[${value.map(stringifyJson).join(",")}]`;
  const members = [];
  for (const [key, item] of Object.entries(value)) {
    if (item !== undefined) members.push(`${JSON.stringify(key)}:${stringifyJson(item)}`);
  }
  return `{${members.join(",")}}`;
}

// ── small helpers ─────────────────────────────────────────────────────

const isString = (value) => typeof value === "string";
const isCount = (value) =>
  (typeof value === "number" && Number.isInteger(value) && value >= 0) || (typeof value === "bigint" && value >= 0n);
const isNumber = (value) => typeof value === "number" || typeof value === "bigint" || value instanceof JsonFloat;
const isObject = (value) =>
  value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof JsonFloat);
// Python's str.strip() and JavaScript's trim() agree on every whitespace an id may carry.
const isBlank = (value) => isString(value) && value.trim() === "";
const present = (value) => value !== undefined && value !== null;
const nowMs = () => Date.now();
// A count as a Number, for slices and Math: one past 2**53 only needs to stay that large.
const size = (count) => (typeof count === "bigint" ? Number(count) : count);
// Numbers in order, a Number and a BigInt alike (a - b would throw on the mix).
const compareNumbers = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

// A deep copy; numbers, BigInts and the frozen JsonFloats are shared, as none can change.
function copy(value) {
  if (Array.isArray(value)) return value.map(copy);
  if (!isObject(value)) return value;
  const copied = {};
  for (const [key, item] of Object.entries(value)) define(copied, key, copy(item));
  return copied;
}

// MOD-1: strip whitespace; blank or absent becomes null.
function normalizeLineageId(value) {
  if (!present(value)) return null;
  const stripped = value.trim();
  return stripped === "" ? null : stripped;
}

// Ids compare by code point, as in Python (JavaScript's < compares UTF-16 code units).
const SURROGATE = /[\uD800-\uDFFF]/;
function compareIds(a, b) {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

// Deep equality of JSON values (Python's == on decoded JSON: 1 == 1.0).
function jsonEqual(a, b) {
  if (isNumber(a) && isNumber(b)) return a instanceof JsonFloat || b instanceof JsonFloat ? Number(a) === Number(b) : a === b;
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => key in b && jsonEqual(a[key], b[key]));
  }
  return false;
}

function requireType(ok, owner, field, expected) {
  if (!ok) throw invalid(`${owner}: field '${field}' must be ${expected}`);
}
const optionalString = (object, field, owner) =>
  requireType(!present(object[field]) || isString(object[field]), owner, field, "a string or absent");
const optionalCount = (object, field, owner) =>
  requireType(!present(object[field]) || isCount(object[field]), owner, field, "an integer >= 0 or absent");

// ── models: validation (MOD-2, MOD-3, MOD-4) ───────────────────────────

const LINEAGE_FIELDS = ["resource_id", "parent_thread_id", "active_run_id", "open_run_id", "latest_run_id"];

function checkMetadata(metadata, owner) {
  requireType(isObject(metadata), owner, "metadata", "an object");
  optionalCount(metadata, "created_at", owner);
  optionalCount(metadata, "updated_at", owner);
  optionalString(metadata, "title", owner);
  requireType(!present(metadata.custom) || isObject(metadata.custom), owner, "custom", "an object");
}

// MOD-2: no id, lineage id or run id may be blank when present (lineage is normalized first, THR-2).
function validateThread(thread) {
  requireType(isObject(thread) && isString(thread.id), "thread", "id", "a string");
  const owner = `thread '${thread.id}'`;
  for (const field of LINEAGE_FIELDS) optionalString(thread, field, owner);
  optionalCount(thread, "latest_run_updated_at", owner);
  checkMetadata(thread.metadata ?? {}, owner);
  if (isBlank(thread.id)) throw invalid("thread id must not be blank");
  for (const field of LINEAGE_FIELDS) {
    if (isBlank(thread[field])) throw invalid(`${owner}: field '${field}' must not be blank; use null for no value`);
  }
  if (normalizeLineageId(thread.parent_thread_id) === thread.id.trim()) throw invalid(`${owner} cannot parent itself`);
}

// THR-2 (rule set 2.0): the thread to store is normalized first (resource and parent by MOD-1:
// stripped, a blank one is none), then validated (MOD-2), as every upstream backend does.
function normalizedThread(thread) {
  requireType(isObject(thread) && isString(thread.id), "thread", "id", "a string");
  for (const field of ["resource_id", "parent_thread_id"]) optionalString(thread, field, `thread '${thread.id}'`);
  const stored = storedThread(thread);
  validateThread(stored);
  return stored;
}

// The stored form keeps lineage normalized and omits absent fields.
function storedThread(thread) {
  const stored = copy(thread);
  stored.metadata = stored.metadata ?? {};
  for (const field of ["resource_id", "parent_thread_id"]) {
    const normalized = normalizeLineageId(stored[field]);
    if (normalized === null) delete stored[field];
    else stored[field] = normalized;
  }
  for (const [key, value] of Object.entries(stored)) if (value === null) delete stored[key];
  return stored;
}

const ROLES = ["system", "user", "assistant", "tool"];

// MOD-3 for a message that would be committed at position `seq`.
function validateMessage(message, seq) {
  requireType(isObject(message), `message at seq ${seq}`, "message", "an object");
  const owner = `message '${message.id}' (seq ${seq})`;
  requireType(ROLES.includes(message.role), owner, "role", `one of ${ROLES.join(", ")}`);
  requireType(Array.isArray(message.content), owner, "content", "a list");
  for (const block of message.content) requireType(isObject(block) && isString(block.type), owner, "content", 'blocks tagged by a string "type"');
  requireType(!present(message.visibility) || ["all", "internal"].includes(message.visibility), owner, "visibility", "all or internal");
  optionalString(message, "id", owner);
  optionalString(message, "tool_call_id", owner);
  if (!present(message.id) || isBlank(message.id)) throw invalid(`${owner}: field 'id' must be present and not blank`);
  if (message.role === "tool") {
    if (!present(message.tool_call_id) || isBlank(message.tool_call_id)) {
      throw invalid(`${owner}: a tool message must carry a non-blank 'tool_call_id'`);
    }
  } else if (present(message.tool_call_id)) {
    throw invalid(`${owner}: only a tool message may carry 'tool_call_id'`);
  }
  const calls = message.tool_calls;
  requireType(!present(calls) || Array.isArray(calls), owner, "tool_calls", "a list or absent");
  // Carried means present, even empty: a user message with tool_calls [] is refused.
  if (present(calls)) {
    if (message.role !== "assistant") throw invalid(`${owner}: only an assistant message may carry 'tool_calls'`);
    const seen = new Set();
    calls.forEach((call, index) => {
      requireType(isObject(call) && isString(call.id) && isString(call.name), owner, `tool_calls[${index}]`, "{id, name, arguments}");
      if (isBlank(call.id) || isBlank(call.name)) throw invalid(`${owner}: tool_calls[${index}] needs a non-blank id and name`);
      if (seen.has(call.id)) throw invalid(`${owner}: tool call id '${call.id}' appears twice`);
      seen.add(call.id);
    });
  }
  const metadata = message.metadata;
  requireType(!present(metadata) || isObject(metadata), owner, "metadata", "an object or absent");
  if (present(metadata)) {
    optionalString(metadata, "run_id", owner);
    optionalCount(metadata, "step_index", owner);
    optionalString(metadata, "sender_agent_id", owner);
    const mark = metadata.compaction;
    if (present(mark)) {
      requireType(isObject(mark) && isCount(mark.from_seq) && isCount(mark.to_seq), owner, "compaction", "{from_seq, to_seq}");
      if (!(1 <= mark.from_seq && mark.from_seq <= mark.to_seq && mark.to_seq < seq)) {
        throw invalid(`${owner}: compaction mark [${mark.from_seq}, ${mark.to_seq}] must satisfy 1 <= from_seq <= to_seq < ${seq}`);
      }
    }
  }
}

// MSG-5: every message valid at its seq, its id neither committed nor repeated.
function validateDelta(committedIds, startSeq, delta) {
  requireType(Array.isArray(delta), "append", "messages", "a list");
  const fresh = new Set();
  delta.forEach((message, index) => {
    validateMessage(message, startSeq + index);
    if (committedIds.has(message.id)) throw invalid(`append delta contains already committed message id '${message.id}'`);
    if (fresh.has(message.id)) throw invalid(`append delta contains duplicate message id '${message.id}'`);
    fresh.add(message.id);
  });
}

const RUN_STATUSES = ["created", "running", "waiting", "done"];

// MOD-4, with the activation rule of SPEC section 3.
function validateRun(run) {
  requireType(isObject(run) && isString(run.run_id), "run", "run_id", "a string");
  const owner = `run '${run.run_id}'`;
  for (const field of ["thread_id", "agent_id"]) requireType(isString(run[field]), owner, field, "a string");
  requireType(RUN_STATUSES.includes(run.status), owner, "status", `one of ${RUN_STATUSES.join(", ")}`);
  for (const field of ["created_at", "updated_at", "steps", "input_tokens", "output_tokens"]) {
    requireType(isCount(run[field] ?? 0), owner, field, "an integer >= 0");
  }
  for (const field of ["started_at", "finished_at"]) optionalCount(run, field, owner);
  // Every integer of a run is >= 0, nested ones too: upstream's are unsigned.
  if (isObject(run.request)) optionalCount(run.request, "input_message_count", `${owner}: request`);
  if (isObject(run.state)) requireType(isCount(run.state.revision ?? 0), owner, "state.revision", "an integer >= 0");
  for (const field of ["run_id", "thread_id", "agent_id"]) {
    if (run[field].trim() === "") throw invalid(`${owner}: field '${field}' must not be blank`);
  }
  for (const name of ["input", "output"]) {
    const part = run[name];
    if (!present(part)) continue;
    requireType(isObject(part) && isString(part.thread_id), owner, name, "an object with a thread_id");
    if (part.thread_id !== run.thread_id) {
      throw invalid(`${owner}: ${name}.thread_id '${part.thread_id}' must be the run's thread '${run.thread_id}'`);
    }
    const range = part.range;
    if (present(range) && !(isCount(range.from_seq) && isCount(range.to_seq) && 1 <= range.from_seq && range.from_seq <= range.to_seq)) {
      throw invalid(`${owner}: ${name}.range must satisfy 1 <= from_seq <= to_seq`);
    }
  }
  const output = run.output;
  if (present(output) && present(output.range)) {
    // In BigInts: seqs go up to 2**64 - 1, past what a Number holds exactly.
    const length = BigInt(output.range.to_seq) - BigInt(output.range.from_seq) + 1n;
    const ids = output.message_ids ?? [];
    if (length !== BigInt(ids.length)) {
      throw invalid(`${owner}: output.range covers ${length} messages but output.message_ids has ${ids.length}`);
    }
  }
  const activation = run.activation;
  if (isObject(activation)) {
    for (const part of ["intent", "input"]) {
      const named = isObject(activation[part]) ? activation[part].thread_id : undefined;
      if (present(named) && named !== run.thread_id) {
        throw invalid(`${owner}: activation.${part}.thread_id '${named}' must be the run's thread '${run.thread_id}'`);
      }
    }
  }
  validateRunStatus(run, owner);
}

function validateRunStatus(run, owner) {
  const { status } = run;
  if (status === "done") {
    if (present(run.waiting)) throw invalid(`${owner}: a done run must not carry 'waiting'`);
    if (!present(run.finished_at)) throw invalid(`${owner}: a done run must carry 'finished_at'`);
    const outcome = run.outcome;
    if (present(outcome)) {
      for (const field of ["termination_reason", "final_output", "error_payload"]) {
        if (present(run[field]) && !jsonEqual(run[field], outcome[field] ?? null)) {
          throw invalid(`${owner}: field '${field}' differs from outcome.${field}`);
        }
      }
    }
    return;
  }
  if (present(run.outcome) || present(run.finished_at)) {
    throw invalid(`${owner}: a ${status} run must carry no 'outcome' and no 'finished_at'`);
  }
  if (status === "waiting" && !present(run.waiting)) throw invalid(`${owner}: a waiting run must carry 'waiting'`);
  if (status !== "waiting" && present(run.waiting)) throw invalid(`${owner}: a ${status} run must not carry 'waiting'`);
}

// ── hierarchy (HIE-1..4, DEL-5) ───────────────────────────────────────

function checkHierarchy(state, threadId, parentThreadId) {
  const rootParent = normalizeLineageId(parentThreadId);
  if (rootParent === null) return;
  if (rootParent === threadId) throw invalid(`thread '${threadId}' cannot parent itself`);
  const visited = new Set([threadId]);
  let current = rootParent;
  for (;;) {
    if (visited.has(current)) throw invalid(`thread hierarchy cycle detected at '${current}' (parent of '${threadId}')`);
    visited.add(current);
    const thread = state.threads.get(current);
    if (thread === undefined) {
      if (current === rootParent) throw invalid(`parent thread not found: '${rootParent}'`);
      throw invalid(`thread hierarchy references missing ancestor '${current}'`);
    }
    const parent = normalizeLineageId(thread.parent_thread_id);
    if (parent === null) return;
    current = parent;
  }
}

function childrenOf(state, parentId) {
  const children = [];
  for (const thread of state.threads.values()) {
    if (normalizeLineageId(thread.parent_thread_id) === parentId) children.push(thread);
  }
  return children.sort((a, b) => compareIds(a.id, b.id));
}

// DEL-4/DEL-5: the subtree of `threadId`, descendants first; a thread met twice is a cycle.
function cascadeOrder(state, threadId) {
  const visited = new Set();
  const order = [];
  const stack = [[threadId, false]];
  while (stack.length > 0) {
    const [current, expanded] = stack.pop();
    if (expanded) {
      order.push(current);
      continue;
    }
    if (visited.has(current)) throw invalid(`thread hierarchy cycle detected at '${current}' while deleting '${threadId}'`);
    visited.add(current);
    stack.push([current, true]);
    for (const child of childrenOf(state, current).reverse()) stack.push([child.id, false]);
  }
  return order;
}

// ── the run projection (CKP-6) ─────────────────────────────────────────

function applyRunProjection(thread, run) {
  const projected = copy(thread);
  const clearIfNamed = () => {
    if (projected.active_run_id === run.run_id) delete projected.active_run_id;
    if (projected.open_run_id === run.run_id) delete projected.open_run_id;
  };
  const updatedAt = run.updated_at ?? 0;
  if (present(projected.latest_run_updated_at) && updatedAt < projected.latest_run_updated_at) {
    if (run.status === "done") clearIfNamed();
    return projected;
  }
  projected.latest_run_id = run.run_id;
  projected.latest_run_updated_at = updatedAt;
  if (normalizeLineageId(projected.parent_thread_id) === null && isObject(run.request)) {
    const parent = normalizeLineageId(run.request.parent_thread_id);
    if (parent === null) delete projected.parent_thread_id;
    else projected.parent_thread_id = parent;
  }
  if (run.status === "created" || run.status === "waiting") {
    projected.open_run_id = run.run_id;
    delete projected.active_run_id;
  } else if (run.status === "running") {
    projected.open_run_id = run.run_id;
    projected.active_run_id = run.run_id;
  } else {
    clearIfNamed();
  }
  return projected;
}

// ── message views (MSG-6, VIEW-1, VIEW-2) ──────────────────────────────

function record(threadId, seq, message) {
  const metadata = message.metadata ?? {};
  const result = { message_id: message.id, thread_id: threadId, seq, message };
  if (present(metadata.run_id)) result.produced_by_run_id = metadata.run_id;
  if (present(metadata.step_index)) result.step_index = metadata.step_index;
  if (present(message.tool_call_id)) result.tool_call_id = message.tool_call_id;
  if (present(metadata.compaction)) result.compaction = metadata.compaction;
  return result;
}

const records = (threadId, log) => log.map((message, index) => record(threadId, index + 1, message));
const visibility = (message) => message.visibility ?? "all";

// VIEW-1: a tool call survives when a visible result answers it and no internal one retracts it.
function stripUnpairedToolCalls(messages) {
  const answered = new Set();
  const retracted = new Set();
  for (const m of messages) {
    if (m.role === "tool" && present(m.tool_call_id)) (visibility(m) === "all" ? answered : retracted).add(m.tool_call_id);
  }
  const view = [];
  for (let m of messages) {
    if (m.role === "tool" && visibility(m) !== "all") continue;
    if (m.role === "assistant" && present(m.tool_calls)) {
      const calls = m.tool_calls.filter((c) => answered.has(c.id) && !retracted.has(c.id));
      if (calls.length !== m.tool_calls.length || calls.length === 0) {
        m = { ...m };
        if (calls.length > 0) m.tool_calls = calls;
        else delete m.tool_calls;
      }
    }
    view.push(m);
  }
  const surviving = new Set();
  for (const m of view) if (m.role === "assistant" && m.tool_calls) for (const c of m.tool_calls) surviving.add(c.id);
  return view.filter((m) => !(m.role === "tool" && present(m.tool_call_id) && !surviving.has(m.tool_call_id)));
}

// VIEW-2: each kept compaction interval is replaced by its summary at the interval's start.
function effectiveMessages(recordList) {
  const candidates = recordList
    .filter((r) => present(r.compaction))
    .map((r) => [r.compaction.from_seq, r.compaction.to_seq, r.message])
    .sort((a, b) => compareNumbers(a[0], b[0]) || compareNumbers(b[1], a[1]));
  const intervals = [];
  for (const [start, end, summary] of candidates) {
    if (!intervals.some(([keptStart, keptEnd]) => keptStart <= start && end <= keptEnd)) intervals.push([start, end, summary]);
  }
  const out = [];
  let pending = 0;
  for (const r of recordList) {
    if (present(r.compaction)) continue;
    while (pending < intervals.length && intervals[pending][0] <= r.seq) out.push(intervals[pending++][2]);
    if (!intervals.some(([start, end]) => start <= r.seq && r.seq <= end)) out.push(r.message);
  }
  for (; pending < intervals.length; pending++) out.push(intervals[pending][2]);
  return out;
}

// ── queries, pages and cursors (QRY, CUR, MSG-7, RUN-4) ────────────────

const encodeCursor = (prefix, token) => prefix + Buffer.from(stringifyJson(token), "utf8").toString("base64url");

function checkCounts(query, owner, ...fields) {
  requireType(isObject(query), owner, "query", "an object");
  for (const field of fields) requireType(isCount(query[field]), owner, field, "an integer >= 0");
}

function page(offset, limit, total) {
  const start = Math.min(size(offset), total);
  const end = Math.min(start + limit, total);
  return { start, end, hasMore: limit > 0 && end < total, hasPrev: limit > 0 && start > 0 };
}

function withCursors(result, window, limit, cursorAt) {
  if (window.hasMore) result.next_cursor = cursorAt(window.end);
  if (window.hasPrev) result.prev_cursor = cursorAt(Math.max(window.start - limit, 0));
  return result;
}

function parentFilter(value) {
  if (value === undefined || value === "any") return "any";
  if (value === "root") return "root";
  if (isObject(value) && isString(value.parent)) {
    const parent = normalizeLineageId(value.parent);
    return parent === null ? "any" : { parent };
  }
  throw invalid("ThreadQuery: field 'parent_filter' must be \"any\", \"root\" or {\"parent\": id}");
}

const activity = (t) => t.metadata?.updated_at ?? t.metadata?.created_at ?? 0;
const byActivity = (a, b) => compareNumbers(activity(b), activity(a)) || compareIds(a.id, b.id);

function listThreadsQuery(state, query) {
  checkCounts(query, "ThreadQuery", "offset", "limit");
  optionalString(query, "resource_id", "ThreadQuery");
  optionalString(query, "id_prefix", "ThreadQuery");
  const limit = Math.min(size(query.limit), MAX_LIMIT);
  const resource = normalizeLineageId(query.resource_id);
  const filter = parentFilter(query.parent_filter);
  const prefix = query.id_prefix ?? null;
  const matching = [...state.threads.values()]
    .filter((t) => {
      if (prefix !== null && !t.id.startsWith(prefix)) return false;
      if (resource !== null && normalizeLineageId(t.resource_id) !== resource) return false;
      const parent = normalizeLineageId(t.parent_thread_id);
      if (filter === "root") return parent === null;
      if (filter !== "any") return parent === filter.parent;
      return true;
    })
    .sort(byActivity);
  const window = page(query.offset, limit, matching.length);
  const token = (offset) => ({ offset, resource_id: resource, parent_filter: filter, id_prefix: prefix });
  const result = { items: matching.slice(window.start, window.end).map((t) => t.id), total: matching.length, has_more: window.hasMore };
  return withCursors(result, window, limit, (offset) => encodeCursor("thr_", token(offset)));
}

const ORDERS = ["asc", "desc"];
const VISIBILITIES = ["any", "external", "internal"];

function listMessageRecords(state, threadId, query) {
  const owner = "MessageQuery";
  checkCounts(query, owner, "offset", "limit");
  optionalCount(query, "after", owner);
  optionalCount(query, "before", owner);
  optionalString(query, "run_id", owner);
  const order = query.order ?? "asc";
  const shown = query.visibility ?? "any";
  requireType(ORDERS.includes(order), owner, "order", "asc or desc");
  requireType(VISIBILITIES.includes(shown), owner, "visibility", "any, external or internal");
  const log = state.logs.get(threadId);
  if (log === undefined) return { records: [], total: 0, has_more: false };
  const limit = Math.min(size(query.limit), MAX_LIMIT);
  const after = query.after ?? null;
  const before = query.before ?? null;
  const runId = query.run_id ?? null;
  const matching = records(threadId, log).filter((r) => {
    if (after !== null && r.seq <= after) return false;
    if (before !== null && r.seq >= before) return false;
    if (runId !== null && r.produced_by_run_id !== runId) return false;
    const internal = visibility(r.message) === "internal";
    return shown === "external" ? !internal : shown === "internal" ? internal : true;
  });
  if (order === "desc") matching.reverse();
  const window = page(query.offset, limit, matching.length);
  const token = (offset) => ({ offset, after, before, order, visibility: shown, run_id: runId });
  const result = { records: matching.slice(window.start, window.end), total: matching.length, has_more: window.hasMore };
  return withCursors(result, window, limit, (offset) => encodeCursor("msg_", token(offset)));
}

function listRuns(state, query) {
  const owner = "RunQuery";
  checkCounts(query, owner, "offset", "limit");
  optionalString(query, "thread_id", owner);
  optionalString(query, "id_prefix", owner);
  requireType(!present(query.status) || RUN_STATUSES.includes(query.status), owner, "status", "a run status or absent");
  const limit = Math.max(1, Math.min(size(query.limit), MAX_LIMIT));
  const matching = [...state.runs.values()]
    .filter((r) => {
      if (present(query.thread_id) && r.thread_id !== query.thread_id) return false;
      if (present(query.status) && r.status !== query.status) return false;
      return !present(query.id_prefix) || r.thread_id.startsWith(query.id_prefix);
    })
    .sort((a, b) => compareNumbers(a.created_at ?? 0, b.created_at ?? 0) || compareIds(a.run_id, b.run_id));
  const start = Math.min(size(query.offset), matching.length);
  const end = Math.min(start + limit, matching.length);
  return { items: matching.slice(start, end), total: matching.length, has_more: end < matching.length };
}

// ── the store ─────────────────────────────────────────────────────────

class State {
  constructor() {
    this.threads = new Map(); // id -> thread JSON, lineage normalized
    this.logs = new Map(); // thread id -> non-empty list of message JSON
    this.states = new Map(); // thread id -> PersistedState JSON
    this.runs = new Map(); // run id -> RunRecord JSON
    this.runWrites = new Map(); // run id -> write number, for latest_run ties (RUN-3)
    this.writes = 0;
  }

  putRun(run) {
    this.runs.set(run.run_id, run);
    this.runWrites.set(run.run_id, ++this.writes);
  }

  dropThread(threadId) {
    this.threads.delete(threadId);
    this.logs.delete(threadId);
    this.states.delete(threadId);
  }

  latestRun(threadId) {
    let best = null;
    for (const run of this.runs.values()) {
      if (run.thread_id !== threadId) continue;
      const key = [run.updated_at ?? 0, this.runWrites.get(run.run_id)];
      if (best === null || key[0] > best.key[0] || (key[0] === best.key[0] && key[1] > best.key[1])) best = { key, run };
    }
    return best === null ? null : best.run;
  }

  // CKP-1/CKP-2: validate the run and the hierarchy; return the projected thread to store.
  prepareCheckpoint(threadId, run) {
    validateRun(run);
    if (run.thread_id !== threadId) {
      throw invalid(`run '${run.run_id}' belongs to thread '${run.thread_id}', not to the checkpointed thread '${threadId}'`);
    }
    const existing = this.threads.get(threadId);
    const parent = present(existing?.parent_thread_id) ? existing.parent_thread_id : isObject(run.request) ? run.request.parent_thread_id : null;
    checkHierarchy(this, threadId, parent);
    const thread = existing === undefined ? { id: threadId, metadata: {} } : copy(existing);
    const now = nowMs();
    if (!present(thread.metadata.created_at)) thread.metadata.created_at = now;
    thread.metadata.updated_at = now;
    const projected = applyRunProjection(thread, run);
    validateThread(projected);
    return storedThread(projected);
  }
}

const id = (value, name) => {
  // Present but not a string (null included): a value that does not parse, so Validation, as the
  // served reference and upstream's serde answer; -32602 is only for a param left out (PROTOCOL.md 3).
  if (!isString(value)) throw invalid(`param '${name}' must be a string, got ${JSON.stringify(value)}`);
  return value;
};

// One function per store method: `(state, params) -> result`; `writes` marks those that change the state.
const METHODS = {
  load_thread: (s, p) => s.threads.get(id(p.thread_id, "thread_id")) ?? null,
  save_thread(s, p) {
    const stored = normalizedThread(p.thread);
    s.threads.set(stored.id, stored);
    return null;
  },
  save_thread_validated(s, p) {
    const stored = normalizedThread(p.thread);
    checkHierarchy(s, stored.id, stored.parent_thread_id ?? null);
    s.threads.set(stored.id, stored);
    return null;
  },
  validate_thread_hierarchy(s, p) {
    // parent_thread_id is `?`: left out (undefined) or null, both are no parent (normalizeLineageId).
    checkHierarchy(s, id(p.thread_id, "thread_id"), p.parent_thread_id);
    return null;
  },
  delete_thread(s, p) {
    s.dropThread(id(p.thread_id, "thread_id"));
    return null;
  },
  delete_thread_with_strategy(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    const strategy = p.strategy;
    if (!["reject", "detach", "cascade"].includes(strategy)) {
      throw invalid(`argument 'strategy': unknown delete strategy '${strategy}'; use one of reject, detach, cascade`);
    }
    if (!s.threads.has(threadId)) throw notFound(`thread '${threadId}' not found`);
    const children = childrenOf(s, threadId);
    if (strategy === "reject" && children.length > 0) {
      throw invalid(`thread '${threadId}' has child threads; choose 'detach' or 'cascade'`);
    }
    if (strategy === "cascade") {
      for (const doomed of cascadeOrder(s, threadId)) s.dropThread(doomed);
      return null;
    }
    const now = nowMs();
    for (const child of children) {
      const detached = copy(child);
      delete detached.parent_thread_id;
      detached.metadata.updated_at = now;
      s.threads.set(detached.id, detached);
    }
    s.dropThread(threadId);
    return null;
  },
  list_threads(s, p) {
    if (!isCount(p.offset)) throw invalid(`argument 'offset' must be an integer >= 0, got ${stringifyJson(p.offset)}`);
    if (!isCount(p.limit)) throw invalid(`argument 'limit' must be an integer >= 0, got ${stringifyJson(p.limit)}`);
    const ordered = [...s.threads.values()].sort(byActivity);
    return ordered.slice(size(p.offset), size(p.offset) + size(p.limit)).map((t) => t.id);
  },
  list_threads_query: (s, p) => listThreadsQuery(s, p.query),
  list_child_threads(s, p) {
    const parent = normalizeLineageId(id(p.parent_thread_id, "parent_thread_id"));
    return parent === null ? [] : childrenOf(s, parent);
  },
  update_thread_metadata(s, p) {
    const threadId = id(p.id, "id");
    checkMetadata(p.metadata, `metadata of thread '${threadId}'`);
    const existing = s.threads.get(threadId);
    if (existing === undefined) throw notFound(`thread '${threadId}' not found`);
    s.threads.set(threadId, { ...existing, metadata: p.metadata });
    return null;
  },
  save_thread_state(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    requireType(isObject(p.state) && isCount(p.state.revision ?? 0) && isObject(p.state.extensions ?? {}), "state", "state", "{revision, extensions}");
    s.states.set(threadId, p.state);
    return null;
  },
  load_thread_state: (s, p) => s.states.get(id(p.thread_id, "thread_id")) ?? null,

  load_committed_messages: (s, p) => s.logs.get(id(p.thread_id, "thread_id")) ?? null,
  load_messages(s, p) {
    const log = s.logs.get(id(p.thread_id, "thread_id"));
    return log === undefined ? null : stripUnpairedToolCalls(log);
  },
  save_messages(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    validateDelta(new Set(), 1, p.messages);
    if (p.messages.length > 0) s.logs.set(threadId, p.messages);
    else s.logs.delete(threadId);
    return null;
  },
  delete_messages(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    if (!s.threads.has(threadId)) throw notFound(`thread '${threadId}' not found`);
    s.logs.delete(threadId);
    return null;
  },
  append_message_records(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    const log = s.logs.get(threadId) ?? [];
    validateDelta(new Set(log.map((m) => m.id)), log.length + 1, p.messages);
    if (p.messages.length === 0) return [];
    s.logs.set(threadId, [...log, ...p.messages]);
    return p.messages.map((message, index) => record(threadId, log.length + 1 + index, message));
  },
  load_message_records(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    const log = s.logs.get(threadId);
    return log === undefined ? null : records(threadId, log);
  },
  list_message_records: (s, p) => listMessageRecords(s, id(p.thread_id, "thread_id"), p.query),
  load_message_record(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    const messageId = id(p.message_id, "message_id");
    const log = s.logs.get(threadId) ?? [];
    const index = log.findIndex((m) => m.id === messageId);
    return index < 0 ? null : record(threadId, index + 1, log[index]);
  },
  load_message_records_range(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    const range = p.range;
    requireType(isObject(range) && isCount(range.from_seq) && isCount(range.to_seq), "range", "range", "{from_seq, to_seq}");
    const log = s.logs.get(threadId) ?? [];
    return records(threadId, log).filter((r) => range.from_seq <= r.seq && r.seq <= range.to_seq);
  },

  create_run(s, p) {
    validateRun(p.record);
    if (s.runs.has(p.record.run_id)) throw new StorageError("AlreadyExists", `run '${p.record.run_id}' already exists`);
    s.putRun(p.record);
    return null;
  },
  load_run: (s, p) => s.runs.get(id(p.run_id, "run_id")) ?? null,
  latest_run: (s, p) => s.latestRun(id(p.thread_id, "thread_id")),
  list_runs: (s, p) => listRuns(s, p.query),

  checkpoint(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    const projected = s.prepareCheckpoint(threadId, p.run);
    validateDelta(new Set(), 1, p.messages);
    s.threads.set(threadId, projected);
    if (p.messages.length > 0) s.logs.set(threadId, p.messages);
    else s.logs.delete(threadId);
    s.putRun(p.run);
    return null;
  },
  checkpoint_append(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    const expected = p.expected_version; // `?`: left out (undefined) or null, both are "no expectation"
    if (present(expected) && !isCount(expected)) {
      throw invalid(`argument 'expected_version' must be None or an integer >= 0, got ${stringifyJson(expected)}`);
    }
    // The run and the hierarchy, then the version, then the delta: the first that fails decides the error (CKP-3).
    const projected = s.prepareCheckpoint(threadId, p.run);
    const log = s.logs.get(threadId) ?? [];
    if (present(expected) && expected !== log.length) throw versionConflict(expected, log.length);
    validateDelta(new Set(log.map((m) => m.id)), log.length + 1, p.messages);
    s.threads.set(threadId, projected);
    if (p.messages.length > 0) s.logs.set(threadId, [...log, ...p.messages]);
    s.putRun(p.run);
    return log.length + p.messages.length;
  },
  load_checkpoint(s, p) {
    const threadId = id(p.thread_id, "thread_id");
    const log = s.logs.get(threadId);
    const latest = s.latestRun(threadId);
    if (log === undefined && latest === null) return null;
    const snapshot = { messages: stripUnpairedToolCalls(effectiveMessages(records(threadId, log ?? []))), message_version: (log ?? []).length };
    if (latest !== null) snapshot.latest_run = latest;
    const threadState = s.states.get(threadId);
    if (threadState !== undefined) snapshot.thread_state = threadState;
    return snapshot;
  },
};

const READS = new Set([
  "load_thread", "validate_thread_hierarchy", "list_threads", "list_threads_query", "list_child_threads",
  "load_thread_state", "load_committed_messages", "load_messages", "load_message_records", "list_message_records",
  "load_message_record", "load_message_records_range", "load_run", "latest_run", "list_runs", "load_checkpoint",
]);

// ── durable mode: one JSON file per location, shared by every process that opens it ──
//
// The file is only ever replaced whole (a temporary file, then rename), so a read sees one
// complete state without a lock: it re-reads the file when another process changed it.
// A write runs under a lock file (created exclusively, holding its owner's pid; a lock
// whose owner died is taken over): it re-reads, changes and replaces the file. So two
// processes on one location act as one store (DUR-2), and a closed store reopens with
// everything written (DUR-1).

const FILE_NAME = "store.json";
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function encodeState(state) {
  return stringifyJson({
    threads: [...state.threads], logs: [...state.logs], states: [...state.states],
    runs: [...state.runs], runWrites: [...state.runWrites], writes: state.writes,
  });
}

function decodeState(text) {
  const data = parseJson(text);
  const state = new State();
  for (const name of ["threads", "logs", "states", "runs", "runWrites"]) state[name] = new Map(data[name]);
  state.writes = data.writes;
  return state;
}

class FileBackedState {
  constructor(location) {
    fs.mkdirSync(location, { recursive: true });
    this.file = path.join(location, FILE_NAME);
    this.lock = path.join(location, "store.lock");
    this.state = new State();
    this.version = null; // the mtime and size of the file this process last read or wrote
  }

  run(write, operation) {
    if (!write) {
      this.refresh();
      return operation(this.state);
    }
    this.acquire();
    try {
      this.refresh();
      const result = operation(this.state);
      this.persist();
      return result;
    } catch (error) {
      this.version = null; // after any error the cache is read from the file again, whatever the operation did
      throw error;
    } finally {
      fs.unlinkSync(this.lock);
    }
  }

  acquire() {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.writeFileSync(this.lock, String(process.pid), { flag: "wx" });
        return;
      } catch (error) {
        if (error.code !== "EEXIST") throw new StorageError("Io", `cannot lock ${this.lock}: ${error.message}`);
      }
      if (attempt % 100 === 99 && this.ownerDied()) fs.rmSync(this.lock, { force: true });
      sleep(1);
    }
  }

  ownerDied() {
    try {
      process.kill(Number(fs.readFileSync(this.lock, "utf8")), 0);
      return false;
    } catch (error) {
      return error.code === "ESRCH";
    }
  }

  refresh() {
    let fd;
    try {
      fd = fs.openSync(this.file, "r");
    } catch {
      this.state = new State();
      this.version = null;
      return;
    }
    try {
      const stat = fs.fstatSync(fd, { bigint: true });
      const version = `${stat.mtimeNs}:${stat.size}:${stat.ino}`;
      if (version !== this.version) {
        this.state = decodeState(fs.readFileSync(fd, "utf8"));
        this.version = version;
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  persist() {
    const temporary = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, encodeState(this.state));
    fs.renameSync(temporary, this.file);
    const stat = fs.statSync(this.file, { bigint: true });
    this.version = `${stat.mtimeNs}:${stat.size}:${stat.ino}`;
  }
}

class MemoryState {
  constructor() {
    this.state = new State();
  }

  run(write, operation) {
    return operation(this.state);
  }
}

// ── the protocol ──────────────────────────────────────────────────────

// The required params of each method (PROTOCOL.md section 3): a request that leaves one out is -32602.
// The two `?` params, `expected_version` of checkpoint_append and `parent_thread_id` of
// validate_thread_hierarchy, are not listed: left out (undefined) or null, both mean absent.
const REQUIRED_PARAMS = {
  load_thread: ["thread_id"], save_thread: ["thread"], delete_thread: ["thread_id"], list_threads: ["offset", "limit"],
  load_committed_messages: ["thread_id"], save_messages: ["thread_id", "messages"], delete_messages: ["thread_id"],
  update_thread_metadata: ["id", "metadata"], create_run: ["record"], load_run: ["run_id"], latest_run: ["thread_id"],
  list_runs: ["query"], checkpoint: ["thread_id", "messages", "run"],
  save_thread_validated: ["thread"], save_thread_state: ["thread_id", "state"], load_thread_state: ["thread_id"],
  delete_thread_with_strategy: ["thread_id", "strategy"], list_threads_query: ["query"],
  list_child_threads: ["parent_thread_id"], validate_thread_hierarchy: ["thread_id"], load_messages: ["thread_id"],
  load_message_records: ["thread_id"], list_message_records: ["thread_id", "query"],
  append_message_records: ["thread_id", "messages"], load_message_record: ["thread_id", "message_id"],
  load_message_records_range: ["thread_id", "range"], checkpoint_append: ["thread_id", "messages", "run"],
  load_checkpoint: ["thread_id"],
};

let store = null; // the open store: a MemoryState or a FileBackedState
let initialized = false;

function lifecycle(method, params) {
  if (method === "initialize") {
    initialized = true;
    return { protocol_version: PROTOCOL_VERSION, capabilities: CAPABILITIES, server: "examples/node/store.mjs" };
  }
  if (!initialized) throw new RpcError(-32002, `${method}: send 'initialize' first`);
  if (method === "open") {
    if (store !== null) throw new RpcError(-32600, "open: a store is open already; send 'close' first");
    const location = params?.location ?? null;
    store = DURABLE && location !== null ? new FileBackedState(location) : new MemoryState();
    return { storage_identity: DURABLE && location !== null ? `node-file:${path.resolve(location)}` : null };
  }
  store = null; // close and shutdown: an in-memory store is dropped, a file is already written
  return null;
}

function handle(method, params) {
  if (["initialize", "open", "close", "shutdown"].includes(method)) return lifecycle(method, params);
  const operation = METHODS[method];
  if (operation === undefined) throw new RpcError(-32601, `unknown method '${method}'`);
  if (store === null) throw new RpcError(-32002, `${method}: no store is open; send 'open' first`);
  if (!isObject(params)) throw new RpcError(-32602, `${method}: params must be an object`);
  const missing = REQUIRED_PARAMS[method].find((name) => !(name in params));
  if (missing !== undefined) throw new RpcError(-32602, `${method}: missing param '${missing}'`);
  return store.run(!READS.has(method), (state) => operation(state, params));
}

function errorOf(error) {
  if (error instanceof StorageError) {
    return { code: -32000, message: error.message, data: { kind: error.kind, message: error.message, ...error.fields } };
  }
  if (error instanceof RpcError) return { code: error.code, message: error.message };
  console.error(error);
  return { code: -32603, message: `${error?.name ?? "Error"}: ${error?.message ?? error}` };
}

const reply = (message) => process.stdout.write(stringifyJson({ jsonrpc: "2.0", ...message }) + "\n");

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on("line", (line) => {
  let message;
  try {
    message = parseJson(line);
  } catch {
    reply({ id: null, error: { code: -32700, message: "not JSON" } });
    return;
  }
  if (!("id" in message)) return; // $/cancelRequest: its request was answered before this line was read
  try {
    reply({ id: message.id, result: handle(message.method, message.params ?? {}) });
  } catch (error) {
    reply({ id: message.id, error: errorOf(error) });
  }
  if (message.method === "shutdown") input.close();
});
