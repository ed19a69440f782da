"""`RedisStore`: a durable thread/run store on Redis, through redis-py's asyncio client (`redis.asyncio`).

Needs one Redis server (tested on 7.0), not a cluster: its scripts reach keys they
compute from ids. redis-py's asyncio client runs on asyncio only.

Namespace. Every key of a store starts with its prefix, `<namespace>:<store>:`: the
namespace (`threadstore` by default) and a store per `location` (a hash of it, so the
same location finds the same keys from any process, and two store objects on one
location are one store). Behind the prefix, one key per thing, its id at the end as
given (keys are binary-safe: any id fits, `any_ids`): `t:<id>` a thread (a hash of its
JSON body, revision, parent, resource and index entry), `m:<id>` its log (a list of
JSON bodies: index + 1 is the seq), `i:<id>` message id to seq, `a:<id>` each message's
visibility and run id, `s:<id>` its state, `r:<id>` a run. Every JSON body is the
model's serde JSON, as written.

Pages come from lexicographic sorted sets (every score 0, so Redis orders members by
their bytes, which is the code-point order of the ids). A member is a fixed-width
20-digit number, then the id: threads by recent activity (`T`, roots `O`, children of a
parent `k:<parent>`, a resource's `u:<resource>`; the number is `2**64 - 1 - activity`,
so the newest come first, then by id: THR-5, QRY-3), runs by `created_at`, then run id
(`C`, a thread's `h:<thread>`, a status's `q:<status>`: RUN-4), a thread's runs by
`updated_at` and write number (`l:<thread>`: the last member is `latest_run`, RUN-3).
A query with one filter reads one page of one set (`ZRANGE` by rank, its total
`ZCARD`); with more (a resource and a parent, an `id_prefix`, a status and a thread)
the script walks the most specific set (a parent's, else a resource's; a thread's, else
a status's) and filters, comparing an `id_prefix` as literal bytes, never as a pattern
(SEC-1). A log is a list, so a page of messages
by seq is one `LRANGE`; a visibility or run filter walks the seq window in the script
(MSG-7). Cursors and `has_more` come from the contract's `PageWindow`.

Atomicity. Every write is one call of one Lua script (APPLY): Redis runs a script
whole, with no other command in between, so a write is all or nothing to every reader
(atomic_delete) and a cancelled call either ran or did not. Its checks run in Python
with the contract's helpers (`hierarchy_walk`, `cascade_walk`, `validate_message_delta`,
`apply_run_projection`) on what a read script returned; APPLY receives, besides the
writes, *guards*: the revisions of the threads the checks read, the children of each
thread a delete walks. It checks every guard before it writes anything; if one moved,
it writes nothing and the call reads and checks again (optimistic concurrency, as
`WATCH`/`MULTI`/`EXEC` does, without a connection held between read and write). What
only the server can check runs in APPLY itself, in CKP-3's order: the guards (the run
and the hierarchy were read with them), then `expected_version` against the log's
length, then the delta (committed ids, and whether each compaction mark fits the seq
the message gets); a refused delta comes back with what Python needs to raise the
same `ValidationError` the contract's helper raises. Appends take their seqs from the
server's list length at the moment they run, so concurrent appends never collide
(CON-2), and validated saves guard the chain of parents they walked (CON-3).

Cancellation (cancel_safe). The script call of a write runs in an asyncio task of its
own; a cancelled caller waits until that call has returned, then sees the
cancellation. So a cancelled write leaves the state before it (cancelled before its
script was sent) or after it, never a script that lands later. redis-py's retries are
off: a write sent twice could apply twice.

Durability. The data lives in the server, so it outlives store objects and processes
(the kit's `durable` rules); whether it outlives the server is the server's
configuration (`appendonly yes` for a store that must survive a restart).

Where the keys go:
- `RedisStore(url, location="main")` (namespace `threadstore`) keeps its keys for good;
  without a location the store is temporary: its keys are deleted when it is closed.
- `make_store(location)`, the factory the conformance kit calls (`--store
  examples/redis_store.py:make_store`), opens its stores in this process's scratch
  namespace `cstore-<pid>-<random hex>` (`scratch=True`). The process registers it in
  the hash `cstore-owners` before writing a key. At the end of the kit's session its
  `cleanup`, `drop_stores`, deletes the keys of every location the kit opened, and the
  registration once the namespace holds no key. As a safety net the process deletes the
  namespace's keys and its registration when it exits (atexit), and each new scratch
  namespace first deletes those whose process is gone (same host) or that are over a
  day old, so a killed run leaks nothing for long. After runs that ended,
  `redis-cli --scan --pattern 'cstore-*'` finds nothing.

>>> store = await RedisStore.open("redis://localhost:6379/0", location="main")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any, ClassVar, NoReturn, TypeVar, cast

import anyio
import anyio.lowlevel
import redis
import redis.asyncio
import sniffio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from conformance import (
    AlreadyExistsError,
    CheckpointSnapshot,
    ChildThreadDeleteStrategy,
    CommitUnknownError,
    JsonValue,
    Message,
    MessageOrder,
    MessagePage,
    MessageQuery,
    MessageRecord,
    MessageSeqRange,
    MessageVisibilityFilter,
    NotFoundError,
    PageWindow,
    PersistedState,
    RunPage,
    RunQuery,
    RunRecord,
    StorageIOError,
    Thread,
    ThreadMetadata,
    ThreadPage,
    ThreadQuery,
    ThreadRunStore,
    ValidationError,
    VersionConflictError,
    Visibility,
    apply_run_projection,
    cascade_walk,
    checkpoint_parent_thread_id,
    effective_committed_view,
    hierarchy_walk,
    normalize_lineage_id,
    now_ms,
    validate_message_delta,
)

__all__ = ["DEFAULT_URL", "SERVER_COMMAND", "URL_VARIABLE", "RedisStore", "drop_stores", "make_store", "server_error"]

#: The environment variable `make_store` reads the server's URL from, and its default.
URL_VARIABLE = "CONFORMANCE_REDIS_URL"
DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: How to start a server for tests that keeps nothing on disk, on the default URL.
SERVER_COMMAND = 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no'
DEFAULT_NAMESPACE = "threadstore"
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
SCRATCH_PREFIX = "cstore-"
#: The hash of live scratch namespaces: `<pid>-<token>` to their owner (host, pid, creation time).
SCRATCH_OWNERS = "cstore-owners"
#: Any scratch namespace older than this (seconds) belonged to a run that is over.
SCRATCH_MAX_AGE = 24 * 3600
_OWNER_NAME = re.compile(r"[0-9]+-[0-9a-f]{12}")
#: The greatest number an index key holds: upstream's timestamps are u64.
U64_MAX = 2**64 - 1
#: How often a write reads and checks again when its guards keep moving before it gives up.
MAX_ATTEMPTS = 10_000
#: Query numbers past this are clamped: Lua counts in doubles, and no list is this long.
_LUA_MAX = 2**52

_T = TypeVar("_T")
Reply = list[Any]

# ── the scripts ──────────────────────────────────────────────────────
# ARGV[1] is the store's key prefix; the rest is read in order by `arg()`. Lua's
# stack holds about 8000 values, so variadic commands go in chunks.

_PRELUDE = """
local P = ARGV[1]
local at = 2
local function arg() local v = ARGV[at]; at = at + 1; return v end
local function int() return tonumber(arg()) end
local function key(tag, id) return P .. tag .. ':' .. id end
local function one(tag) return P .. tag end
local function tail(member, numbers) return string.sub(member, 20 * numbers + 1) end
local function counted(n) return string.format('%020d', n) end
local function chunked(command, target, values)
  for first = 1, #values, 1000 do
    redis.call(command, target, unpack(values, first, math.min(first + 999, #values)))
  end
end
local function window(total, offset, limit)
  local start = math.min(offset, total)
  return start, math.min(start + limit, total)
end
"""

_APPLY = (
    _PRELUDE
    + """
local checks, writes, OPS = {}, {}, {}
local function check(f) checks[#checks + 1] = f end
local function write(f) writes[#writes + 1] = f end

local function unindex_thread(id)
  local old = redis.call('HMGET', key('t', id), 'k', 'p', 'r')
  local member = old[1]
  if not member then return end
  redis.call('ZREM', one('T'), member)
  if old[2] then redis.call('ZREM', key('k', old[2]), member) else redis.call('ZREM', one('O'), member) end
  if old[3] then redis.call('ZREM', key('u', old[3]), member) end
end

local function drop_log(id)
  redis.call('DEL', key('m', id), key('a', id), key('i', id))
end

local function push_log(id, start, n, ids, bodies, tags)
  if n == 0 then return end
  chunked('RPUSH', key('m', id), bodies)
  chunked('RPUSH', key('a', id), tags)
  local seqs = {}
  for i = 1, n do seqs[2 * i - 1] = ids[i]; seqs[2 * i] = start + i - 1 end
  chunked('HSET', key('i', id), seqs)
end

local function messages()
  local n, ids, bodies, tags = int(), {}, {}, {}
  for i = 1, n do ids[i] = arg() end
  for i = 1, n do bodies[i] = arg() end
  for i = 1, n do tags[i] = arg() end
  return n, ids, bodies, tags
end

-- guard: the thread is still at the revision read ('0': still missing)
function OPS.rev()
  local id, rev = arg(), arg()
  check(function()
    if (redis.call('HGET', key('t', id), 'v') or '0') ~= rev then return {'retry'} end
  end)
end

-- guard: the children index of `parent` still holds exactly these members
function OPS.children()
  local parent, n, expected = arg(), int(), {}
  for i = 1, n do expected[i] = arg() end
  check(function()
    local found = redis.call('ZRANGE', key('k', parent), 0, -1)
    if #found ~= n then return {'retry'} end
    for i = 1, n do
      if found[i] ~= expected[i] then return {'retry'} end
    end
  end)
end

function OPS.thread_exists()
  local id = arg()
  check(function()
    if redis.call('EXISTS', key('t', id)) == 0 then return {'missing'} end
  end)
end

function OPS.new_run()
  local id = arg()
  check(function()
    if redis.call('EXISTS', key('r', id)) == 1 then return {'exists'} end
  end)
end

-- a thread with its index entries: activity number, parent and resource ('' for none)
function OPS.put_thread()
  local id, body, activity, parent, resource = arg(), arg(), arg(), arg(), arg()
  write(function()
    unindex_thread(id)
    local member = activity .. id
    redis.call('ZADD', one('T'), 0, member)
    if parent ~= '' then
      redis.call('ZADD', key('k', parent), 0, member)
    else
      redis.call('ZADD', one('O'), 0, member)
    end
    if resource ~= '' then redis.call('ZADD', key('u', resource), 0, member) end
    local fields = {'b', body, 'k', member, 'v', string.format('%d', redis.call('INCR', one('W')))}
    if parent ~= '' then fields[#fields + 1] = 'p'; fields[#fields + 1] = parent end
    if resource ~= '' then fields[#fields + 1] = 'r'; fields[#fields + 1] = resource end
    redis.call('DEL', key('t', id))
    redis.call('HSET', key('t', id), unpack(fields))
  end)
end

-- a thread with its log and state; its runs stay (THR-4)
function OPS.drop_thread()
  local id = arg()
  write(function()
    unindex_thread(id)
    redis.call('DEL', key('t', id), key('s', id))
    drop_log(id)
  end)
end

function OPS.replace_log()
  local id = arg()
  local n, ids, bodies, tags = messages()
  write(function()
    drop_log(id)
    push_log(id, 1, n, ids, bodies, tags)
  end)
end

function OPS.drop_log()
  local id = arg()
  write(function() drop_log(id) end)
end

-- expected version ('' for any), the least start seq the delta's compaction marks allow,
-- whether every message is valid there ('1'), then the messages; answers the first seq
function OPS.append()
  local id, expected, least, valid = arg(), arg(), int(), arg()
  local n, ids, bodies, tags = messages()
  local start
  check(function()
    local length = redis.call('LLEN', key('m', id))
    if expected ~= '' and tonumber(expected) ~= length then return {'version', length} end
    local refused = {'delta', length + 1}
    for i = 1, n do
      if redis.call('HEXISTS', key('i', id), ids[i]) == 1 then refused[#refused + 1] = ids[i] end
    end
    if #refused > 2 or valid ~= '1' or length + 1 < least then return refused end
    start = length + 1
  end)
  write(function()
    push_log(id, start, n, ids, bodies, tags)
    return start
  end)
end

-- a run, numbered as the latest write (RUN-3 ties): created and updated as 20 digits
function OPS.put_run()
  local id, thread, status, created, updated, body = arg(), arg(), arg(), arg(), arg(), arg()
  write(function()
    local old = redis.call('HMGET', key('r', id), 't', 's', 'c', 'l')
    if old[1] then
      redis.call('ZREM', one('C'), old[3])
      redis.call('ZREM', key('h', old[1]), old[3])
      redis.call('ZREM', key('q', old[2]), old[3])
      redis.call('ZREM', key('l', old[1]), old[4])
    end
    local by_created = created .. id
    local by_update = updated .. counted(redis.call('INCR', one('W'))) .. id
    redis.call('ZADD', one('C'), 0, by_created)
    redis.call('ZADD', key('h', thread), 0, by_created)
    redis.call('ZADD', key('q', status), 0, by_created)
    redis.call('ZADD', key('l', thread), 0, by_update)
    redis.call('HSET', key('r', id), 'b', body, 't', thread, 's', status, 'c', by_created, 'l', by_update)
  end)
end

function OPS.put_state()
  local id, body = arg(), arg()
  write(function() redis.call('SET', key('s', id), body) end)
end

while at <= #ARGV do
  local name = arg()
  if not OPS[name] then return redis.error_reply('unknown operation ' .. name) end
  OPS[name]()
end
for _, f in ipairs(checks) do
  local failed = f()
  if failed then return failed end
end
local done = {'ok'}
for _, f in ipairs(writes) do
  local result = f()
  if result then done[#done + 1] = result end
end
return done
"""
)

_READ = (
    _PRELUDE
    + """
local READS = {}

-- from `current` up its parents: id, revision ('0': missing), parent ('': none), until a root,
-- a missing thread or a repeat
local function chain(current, out)
  local seen = {}
  while current and not seen[current] do
    seen[current] = true
    local found = redis.call('HMGET', key('t', current), 'v', 'p')
    out[#out + 1] = current
    out[#out + 1] = found[1] or '0'
    out[#out + 1] = found[2] or ''
    current = found[1] and found[2]
  end
  return out
end

function READS.chain()
  return chain(arg(), {})
end

-- a thread (revision, body) and the chain from its parent, else from `fallback`
function READS.thread_chain()
  local id, fallback = arg(), arg()
  local found = redis.call('HMGET', key('t', id), 'v', 'b', 'p')
  local out = {found[1] or '0', found[2] or ''}
  local parent = found[3] or fallback
  if parent ~= '' then chain(parent, out) end
  return out
end

-- a thread's revision, then: for 'cascade', every thread below it with its children
-- members; otherwise its children members with their revisions and bodies
function READS.family()
  local id, mode = arg(), arg()
  local rev = redis.call('HGET', key('t', id), 'v')
  if not rev then return {'0'} end
  local out = {rev}
  if mode == 'cascade' then
    local queue, seen, head = {id}, {[id] = true}, 1
    while queue[head] do
      local node = queue[head]
      head = head + 1
      local members = redis.call('ZRANGE', key('k', node), 0, -1)
      out[#out + 1] = node
      out[#out + 1] = #members
      for _, member in ipairs(members) do
        out[#out + 1] = member
        local child = tail(member, 1)
        if not seen[child] then seen[child] = true; queue[#queue + 1] = child end
      end
    end
  else
    local members = redis.call('ZRANGE', key('k', id), 0, -1)
    out[#out + 1] = #members
    for _, member in ipairs(members) do
      local child = redis.call('HMGET', key('t', tail(member, 1)), 'v', 'b')
      out[#out + 1] = member
      out[#out + 1] = child[1]
      out[#out + 1] = child[2]
    end
  end
  return out
end

-- the matching members of `base`, then the page [start, stop) of them and their total;
-- `keep` (or nil) filters a member
local function page(base, keep, offset, limit)
  if not keep then
    local total = redis.call('ZCARD', base)
    local start, stop = window(total, offset, limit)
    if stop <= start then return total, {} end
    return total, redis.call('ZRANGE', base, start, stop - 1)
  end
  local matching = {}
  for _, member in ipairs(redis.call('ZRANGE', base, 0, -1)) do
    if keep(member) then matching[#matching + 1] = member end
  end
  local start, stop = window(#matching, offset, limit)
  local members = {}
  for i = start + 1, stop do members[#members + 1] = matching[i] end
  return #matching, members
end

local function starts(text, prefix) return string.sub(text, 1, #prefix) == prefix end

-- threads by THR-5 order: base set ('T', 'O', or a key tag and id), resource ('' none),
-- prefix flag and prefix; answers the total, then the page's ids
function READS.threads()
  local tag, base_id, resource, has_prefix, prefix, offset, limit = arg(), arg(), arg(), arg(), arg(), int(), int()
  local base = base_id == '' and one(tag) or key(tag, base_id)
  local keep = nil
  if resource ~= '' or has_prefix == '1' then
    keep = function(member)
      if has_prefix == '1' and not starts(tail(member, 1), prefix) then return false end
      return resource == '' or redis.call('ZSCORE', key('u', resource), member) ~= false
    end
  end
  local total, members = page(base, keep, offset, limit)
  local out = {total}
  for _, member in ipairs(members) do out[#out + 1] = tail(member, 1) end
  return out
end

-- the bodies of a parent's direct children
function READS.children()
  local out = {}
  for _, member in ipairs(redis.call('ZRANGE', key('k', arg()), 0, -1)) do
    out[#out + 1] = redis.call('HGET', key('t', tail(member, 1)), 'b')
  end
  return out
end

-- runs by created_at, then run id: thread ('' none, flag first), status ('' none),
-- thread-id prefix (flag first); answers the total, then the page's bodies
function READS.runs()
  local has_thread, thread, status = arg(), arg(), arg()
  local has_prefix, prefix, offset, limit = arg(), arg(), int(), int()
  local base = one('C')
  if has_thread == '1' then base = key('h', thread) elseif status ~= '' then base = key('q', status) end
  local keep = nil
  if has_prefix == '1' or (has_thread == '1' and status ~= '') then
    keep = function(member)
      if has_thread == '1' and status ~= '' and redis.call('ZSCORE', key('q', status), member) == false then
        return false
      end
      return has_prefix ~= '1' or starts(redis.call('HGET', key('r', tail(member, 1)), 't'), prefix)
    end
  end
  local total, members = page(base, keep, offset, limit)
  local out = {total}
  for _, member in ipairs(members) do out[#out + 1] = redis.call('HGET', key('r', tail(member, 1)), 'b') end
  return out
end

local function latest(thread)
  local last = redis.call('ZRANGE', key('l', thread), -1, -1)[1]
  return last and redis.call('HGET', key('r', tail(last, 2)), 'b') or ''
end

function READS.latest()
  return {latest(arg())}
end

-- one page of a log: after and before (-1: none), visibility ('' any, 'internal',
-- 'external'), run id (flag first), order, offset, limit; answers the total, the
-- page's count, its seqs, then its bodies
function READS.messages()
  local id, after, before, visibility = arg(), int(), int(), arg()
  local has_run, run, descending, offset, limit = arg(), arg(), arg() == 'desc', int(), int()
  local length = redis.call('LLEN', key('m', id))
  local low, high = 1, length
  if after >= 0 then low = math.max(low, after + 1) end
  if before >= 0 then high = math.min(high, before - 1) end
  local seqs, total = {}, 0
  if visibility == '' and has_run == '0' then
    total = math.max(0, high - low + 1)
    local start, stop = window(total, offset, limit)
    for i = start, stop - 1 do seqs[#seqs + 1] = descending and high - i or low + i end
  else
    local matching = {}
    if high >= low then
      local wanted = '=' .. run
      for i, tag in ipairs(redis.call('LRANGE', key('a', id), low - 1, high - 1)) do
        local internal = string.sub(tag, 1, 1) == '1'
        if (visibility == '' or (visibility == 'internal') == internal)
          and (has_run == '0' or string.sub(tag, 2) == wanted) then
          matching[#matching + 1] = low + i - 1
        end
      end
    end
    total = #matching
    local start, stop = window(total, offset, limit)
    for i = start + 1, stop do seqs[#seqs + 1] = descending and matching[total + 1 - i] or matching[i] end
  end
  local out = {total, #seqs}
  for _, seq in ipairs(seqs) do out[#out + 1] = seq end
  for _, seq in ipairs(seqs) do out[#out + 1] = redis.call('LINDEX', key('m', id), seq - 1) end
  return out
end

-- the seq and body of a message by id, or nothing
function READS.record()
  local id, message = arg(), arg()
  local seq = redis.call('HGET', key('i', id), message)
  if not seq then return {} end
  return {tonumber(seq), redis.call('LINDEX', key('m', id), tonumber(seq) - 1)}
end

-- what a runtime resumes from: the latest run's body ('' none), the state ('' none), the log
function READS.checkpoint()
  local id = arg()
  local out = {latest(id), redis.call('GET', key('s', id)) or ''}
  for _, body in ipairs(redis.call('LRANGE', key('m', id), 0, -1)) do out[#out + 1] = body end
  return out
end

return READS[arg()]()
"""
)

# ── values and keys ──────────────────────────────────────────────────


def _bytes(text: str) -> bytes:
    """`text` as Redis keeps it: UTF-8, a lone surrogate kept as its three bytes (any id fits)."""
    return text.encode("utf-8", "surrogatepass")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _dumps(value: JsonValue) -> bytes:
    return _bytes(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _loads(raw: bytes) -> Any:
    return json.loads(_text(raw))


def _store_name(location: str) -> str:
    """The store part of the keys of the store at `location`: a hash, so any location fits a key."""
    return hashlib.sha256(_bytes(location)).hexdigest()[:32]


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"argument '{name}' must be a str, got {type(value).__name__}")
    return value


def _of(value: object, expected: type[_T], name: str) -> _T:
    if not isinstance(value, expected):
        raise TypeError(f"argument '{name}' must be a {expected.__name__}, got {type(value).__name__}")
    return value


def _count(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"argument '{name}' must be an integer >= 0, got {value!r}")
    return value


def _messages(value: object) -> list[Message]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"argument 'messages' must be a list of Message, got {type(value).__name__}")
    return list(value)


def _number(value: int, what: str) -> bytes:
    """`value` as the 20 digits an index member starts with; `ValidationError` past u64 (MOD-6)."""
    if value > U64_MAX:
        raise ValidationError(f"{what} {value} cannot be stored: index numbers are at most 2**64 - 1 (u64)")
    return b"%020d" % value


def _descending(value: int, what: str) -> bytes:
    """The 20 digits that order `value` newest first: `2**64 - 1 - value` (THR-5)."""
    _number(value, what)
    return _number(U64_MAX - value, what)


def _thread(raw: bytes) -> Thread:
    return Thread.from_json(_loads(raw))


def _run(raw: bytes) -> RunRecord:
    return RunRecord.from_json(_loads(raw))


def _records(thread_id: str, first_seq: int, bodies: Iterable[bytes]) -> list[MessageRecord]:
    return [
        MessageRecord.from_message(thread_id, first_seq + index, Message.from_json(_loads(body)), copy=False)
        for index, body in enumerate(bodies)
    ]


def _checked_run(thread_id: str, run: RunRecord) -> None:
    """Validate a checkpoint's run (MOD-4, its index numbers within u64) and refuse a run of another thread (CKP-1)."""
    _of(run, RunRecord, "run").validate_for_persist()
    _number(run.created_at, "run created_at")
    _number(run.updated_at, "run updated_at")
    if run.thread_id != thread_id:
        raise ValidationError(
            f"run {run.run_id!r} belongs to thread {run.thread_id!r}, not to the checkpointed thread {thread_id!r}"
        )


def _stored_thread(thread: Thread) -> Thread:
    """A copy with lineage normalized, then validated (THR-2, MOD-2)."""
    stored = _of(thread, Thread, "thread").normalized()
    stored.validate_for_persist()
    return stored


def _checkpointed(thread_id: str, existing: Thread | None, run: RunRecord) -> Thread:
    """The thread a checkpoint writes: `existing` (else a new one) stamped now, the run projected (CKP-2, CKP-6)."""
    stamped = existing if existing is not None else Thread(id=thread_id)
    now = now_ms()
    if stamped.metadata.created_at is None:
        stamped.metadata.created_at = now
    stamped.metadata.updated_at = now
    projected = apply_run_projection(stamped, run)
    projected.validate_for_persist()
    return projected


class _Delta:
    """A message delta prepared for APPLY: its ids, bodies and tags, and what the server must check.

    Every check that does not depend on where the delta lands runs here, with the
    contract's `validate_message_delta` at the least seq its compaction marks allow;
    the server checks the rest (committed ids, the real start seq). When the server
    refuses the delta, `refused` raises the error the contract's helper raises.
    """

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.least = 1
        for index, message in enumerate(messages):
            mark = message.metadata.compaction if isinstance(message, Message) and message.metadata else None
            if mark is not None and isinstance(mark.to_seq, int):
                self.least = max(self.least, mark.to_seq - index + 1)
        try:
            validate_message_delta((), self.least, messages)
        except ValidationError:
            self.valid = False
        else:
            self.valid = True
        ids = [_bytes(m.id) if isinstance(m.id, str) else b"" for m in messages]
        bodies = [_dumps(m.to_json()) for m in messages] if self.valid else [b""] * len(messages)
        tags = [self._tag(m) for m in messages] if self.valid else [b""] * len(messages)
        self.args: list[bytes | int] = [len(messages), *ids, *bodies, *tags]

    @staticmethod
    def _tag(message: Message) -> bytes:
        """What a filtered page reads of a message: `1` internal or `0`, then `=` and its run id, if any."""
        internal = b"1" if message.visibility is Visibility.INTERNAL else b"0"
        run_id = message.metadata.run_id if message.metadata else None
        return internal if run_id is None else internal + b"=" + _bytes(run_id)

    def refused(self, start: int, committed: Iterable[bytes]) -> NoReturn:
        """Raise the `ValidationError` of a delta the server refused at `start` with `committed` ids."""
        validate_message_delta({_text(c) for c in committed}, start, self.messages)
        raise StorageIOError(f"Redis refused a delta at seq {start} that the contract accepts there")


class _Batch:
    """The operations of one write, in order, for one APPLY call: its guards and checks, then its writes."""

    def __init__(self) -> None:
        self.args: list[bytes | int] = []

    def _add(self, name: bytes, *args: bytes | int) -> None:
        self.args += [name, *args]

    def rev(self, thread_id: str, rev: bytes) -> None:
        """Guard: the thread is still at revision `rev` (`b"0"`: still missing)."""
        self._add(b"rev", _bytes(thread_id), rev)

    def children(self, parent_id: str, members: Sequence[bytes]) -> None:
        """Guard: the children of `parent_id` are still exactly `members` (their index entries)."""
        self._add(b"children", _bytes(parent_id), len(members), *members)

    def thread_exists(self, thread_id: str) -> None:
        """Check: the thread exists, else the reply is `missing`."""
        self._add(b"thread_exists", _bytes(thread_id))

    def new_run(self, run_id: str) -> None:
        """Check: no run has this id, else the reply is `exists`."""
        self._add(b"new_run", _bytes(run_id))

    def put_thread(self, thread: Thread) -> None:
        """Write a normalized, valid thread and its index entries."""
        metadata = thread.metadata
        stamp = metadata.updated_at if metadata.updated_at is not None else metadata.created_at
        activity = _descending(stamp or 0, "thread activity")
        parent = _bytes(thread.parent_thread_id) if thread.parent_thread_id is not None else b""
        resource = _bytes(thread.resource_id) if thread.resource_id is not None else b""
        self._add(b"put_thread", _bytes(thread.id), _dumps(thread.to_json()), activity, parent, resource)

    def drop_thread(self, thread_id: str) -> None:
        self._add(b"drop_thread", _bytes(thread_id))

    def replace_log(self, thread_id: str, delta: _Delta) -> None:
        self._add(b"replace_log", _bytes(thread_id), *delta.args)

    def drop_log(self, thread_id: str) -> None:
        self._add(b"drop_log", _bytes(thread_id))

    def append(self, thread_id: str, expected_version: int | None, delta: _Delta) -> None:
        """Check the version, then the delta (replies `version` or `delta`); write it at the log's end."""
        expected = b"" if expected_version is None else b"%d" % expected_version
        valid = b"1" if delta.valid else b"0"
        self._add(b"append", _bytes(thread_id), expected, delta.least, valid, *delta.args)

    def put_run(self, run: RunRecord) -> None:
        """Write a valid run as the latest write, with its index entries."""
        created = _number(run.created_at, "run created_at")
        updated = _number(run.updated_at, "run updated_at")
        status = _bytes(run.status.value)
        self._add(
            b"put_run", _bytes(run.run_id), _bytes(run.thread_id), status, created, updated, _dumps(run.to_json())
        )

    def put_state(self, thread_id: str, state: PersistedState) -> None:
        self._add(b"put_state", _bytes(thread_id), _dumps(state.to_json()))


def _page_numbers(offset: int, limit: int) -> tuple[int, int]:
    """A page's offset and limit as a script can count them: past `_LUA_MAX` they match nothing anyway."""
    return min(offset, _LUA_MAX), min(limit, _LUA_MAX)


# ── cancellation ─────────────────────────────────────────────────────


async def _settled(work: Awaitable[_T]) -> _T:
    """Await `work` in a task of its own; a cancelled caller waits until it ends, then sees the cancellation.

    A command sent to Redis runs whatever the client does next, so a write's script
    call is never abandoned: the caller's `CancelledError` comes once the call has
    returned, whatever cancels the caller (an anyio scope, which cancels again and
    again, or asyncio).
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with anyio.CancelScope(shield=True):
            while not task.done():
                with suppress(asyncio.CancelledError):
                    await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the caller sees its cancellation instead
        raise


def _require_asyncio() -> None:
    if sniffio.current_async_library() != "asyncio":
        raise RuntimeError(
            "RedisStore runs on asyncio only (redis.asyncio); "
            "run the kit with --conformance-backend asyncio (the default)"
        )


# ── this process's scratch namespace (make_store) ────────────────────

_OWNER = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
SCRATCH_NAMESPACE = f"{SCRATCH_PREFIX}{_OWNER}"
#: URLs of the servers where this process registered its scratch namespace: emptied at exit.
_SCRATCH_URLS: set[str] = set()
_EXIT_HOOK: list[bool] = []


def _pattern(prefix: str) -> str:
    """The SCAN pattern of exactly the keys starting with `prefix`: its glob characters escaped."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"


def _abandoned(name: str, record: str) -> bool:
    """True for another scratch namespace whose process is gone (this host) or which is over a day old."""
    if name == _OWNER or not _OWNER_NAME.fullmatch(name):
        return False
    try:
        owner = json.loads(record)
        if time.time() - float(owner["created"]) > SCRATCH_MAX_AGE:
            return True
        pid, host = int(owner["pid"]), owner["host"]
    except (ValueError, KeyError, TypeError):
        return False  # not a record this code wrote: not ours to judge
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, run by another user
    return False


async def _delete_keys(client: redis.asyncio.Redis, prefix: str) -> None:
    """Delete every key starting with `prefix` (one SCAN of the database)."""
    found: list[bytes] = []
    async for key in client.scan_iter(match=_pattern(prefix), count=1000):
        found.append(key)
        if len(found) == 1000:
            await client.unlink(*found)
            found.clear()
    if found:
        await client.unlink(*found)


async def _claim_scratch(client: redis.asyncio.Redis, url: str) -> None:
    """Register this process's scratch namespace on the server at `url`, after sweeping abandoned ones."""
    if url in _SCRATCH_URLS:
        return
    owners = cast("dict[bytes, bytes]", await client.hgetall(SCRATCH_OWNERS))
    for name, record in owners.items():
        if _abandoned(_text(name), _text(record)):
            await _delete_keys(client, f"{SCRATCH_PREFIX}{_text(name)}:")
            await client.hdel(SCRATCH_OWNERS, name)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "created": time.time()}
    await client.hset(SCRATCH_OWNERS, _OWNER, json.dumps(owner))
    if not _EXIT_HOOK:
        _EXIT_HOOK.append(True)
        atexit.register(_drop_scratch)
    _SCRATCH_URLS.add(url)


def drop_stores(locations: Sequence[str | os.PathLike[str]]) -> None:
    """Delete the keys of the stores at `locations` in this process's scratch namespace; unregister it once empty.

    The kit's `cleanup` of `make_store` (and of the example's test class): it calls it
    once at the end of a session with every location it opened a store at. One SCAN of
    the namespace per server; blocking, so it runs in any event loop or none. Raises
    `redis.RedisError` when the server fails.

        drop_stores(["/tmp/pytest-of-me/pytest-7/test_x0"])
    """
    stores = {_bytes(_store_name(str(location))) for location in locations}
    for url in sorted(_SCRATCH_URLS):
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        try:
            doomed: list[bytes] = []
            kept = False
            for key in client.scan_iter(match=_pattern(f"{SCRATCH_NAMESPACE}:"), count=1000):
                if key.split(b":", 2)[1] in stores:
                    doomed.append(key)
                else:
                    kept = True
            for first in range(0, len(doomed), 1000):
                client.unlink(*doomed[first : first + 1000])
            if not kept:
                client.hdel(SCRATCH_OWNERS, _OWNER)
                _SCRATCH_URLS.discard(url)  # a later store registers the namespace again
        finally:
            client.close()


def _drop_scratch() -> None:
    """At exit: delete this process's scratch keys and registration on every server it used."""
    if _OWNER.split("-")[0] != str(os.getpid()):
        return  # a forked child: the namespace is its parent's
    for url in sorted(_SCRATCH_URLS):
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        try:
            found: list[bytes] = []
            for key in client.scan_iter(match=_pattern(f"{SCRATCH_NAMESPACE}:"), count=1000):
                found.append(key)
            for first in range(0, len(found), 1000):
                client.unlink(*found[first : first + 1000])
            client.hdel(SCRATCH_OWNERS, _OWNER)
        except redis.RedisError:
            pass  # the server is gone: so are the keys, or the next run's sweep takes them
        finally:
            client.close()


# ── the store ────────────────────────────────────────────────────────


def _chain(flat: Sequence[bytes]) -> dict[str, tuple[bytes, str | None]]:
    """A chain read (`id, revision, parent` triples) as `{id: (revision, parent)}`."""
    return {_text(flat[i]): (flat[i + 1], _text(flat[i + 2]) or None) for i in range(0, len(flat), 3)}


def _member_id(member: bytes) -> str:
    """The id at the end of a thread index member, after its 20-digit activity number."""
    return _text(member[20:])


class RedisStore(ThreadRunStore):
    """A `ThreadRunStore` in Redis: one key prefix per location, every write one script; see the module docstring.

    Construct it (`RedisStore(url, location="main")`, nothing is sent yet) or open it
    (`await RedisStore.open(...)`, which checks that the server answers); close it with
    `aclose()` or `async with`. Raises `StorageIOError` when Redis fails and
    `CommitUnknownError` when the connection failed during a write.

    >>> async with await RedisStore.open("redis://localhost:6379/0", location="main") as store:  # doctest: +SKIP
    ...     await store.save_thread(Thread(id="t1"))
    """

    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"thread_state", "atomic_delete", "concurrent_writers", "cancel_safe", "durable", "any_ids"}
    )

    def __init__(
        self,
        url: str | None = None,
        *,
        location: str | None = None,
        namespace: str | None = None,
        scratch: bool = False,
        socket_timeout: float = 10.0,
    ) -> None:
        """A store at `location` in `namespace` (default `threadstore`) of the server at `url`.

        `url` defaults to `$CONFORMANCE_REDIS_URL`, else `redis://127.0.0.1:6379/0`.
        Without `location` the store is temporary: its keys are deleted when it is
        closed. `scratch=True` uses this process's scratch namespace instead, whose
        keys are deleted when the process exits. Raises `ValueError` for a bad URL or
        namespace name.
        """
        if scratch and namespace is not None:
            raise ValueError("pass either scratch=True or a namespace, not both")
        namespace = SCRATCH_NAMESPACE if scratch else namespace or DEFAULT_NAMESPACE
        if not _NAMESPACE.fullmatch(namespace):
            raise ValueError(f"namespace {namespace!r} must be 1-100 of A-Z a-z 0-9 _ . -")
        store = f"tmp-{uuid.uuid4().hex}" if location is None else _store_name(_str(location, "location"))
        self.url = url or os.environ.get(URL_VARIABLE, DEFAULT_URL)
        self.location = location
        self.prefix = _bytes(f"{namespace}:{store}:")
        self._scratch = scratch
        self._client = redis.asyncio.Redis.from_url(
            self.url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),  # a write retried after a lost reply could apply twice
        )
        self._apply_script = self._client.register_script(_APPLY)
        self._read_script = self._client.register_script(_READ)
        self._ready = False
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str | None = None,
        *,
        location: str | None = None,
        namespace: str | None = None,
        scratch: bool = False,
    ) -> RedisStore:
        """Construct the store and check that the server answers; `StorageIOError` when it does not."""
        _require_asyncio()
        store = cls(url, location=location, namespace=namespace, scratch=scratch)
        try:
            await store._command("PING")
        except BaseException:
            await store.aclose()
            raise
        return store

    async def aclose(self) -> None:
        """Close the connections; a temporary store's keys are deleted first. Later calls raise `StorageIOError`."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                if self.location is None and self._ready:
                    with suppress(redis.RedisError):
                        await _delete_keys(self._client, _text(self.prefix))
            finally:
                await self._client.aclose()

    async def __aenter__(self) -> RedisStore:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    def thread_run_storage_identity(self) -> str | None:
        """`redis://host:port/db#prefix`: every object on the same location is the same storage."""
        kwargs = self._client.connection_pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host', '')}:{kwargs.get('port', 6379)}"
        return f"redis://{where}/{kwargs.get('db', 0)}#{_text(self.prefix)}"

    # ── talking to Redis ─────────────────────────────────────────────

    def _key(self, tag: bytes, thread_or_run_id: str) -> bytes:
        return self.prefix + tag + b":" + _bytes(thread_or_run_id)

    async def _prepare(self) -> None:
        """Refuse calls on a closed store; before the first call, claim the scratch namespace."""
        if self._closed:
            raise StorageIOError(f"the store at {_text(self.prefix)!r} is closed")
        if self._ready:
            return
        _require_asyncio()
        if self._scratch:
            try:
                await _claim_scratch(self._client, self.url)
            except redis.RedisError as error:
                raise StorageIOError(f"Redis at {self.url} failed: {error}") from error
        self._ready = True

    async def _command(self, *args: bytes | int | str) -> Any:
        """One read command; Redis errors become `StorageIOError`."""
        await self._prepare()
        try:
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]  # redis-py: untyped
        except redis.RedisError as error:
            raise StorageIOError(f"Redis at {self.url} failed: {error}") from error

    async def _read(self, name: bytes, *args: bytes | int) -> Reply:
        """One call of the READ script: a consistent read of several keys."""
        await self._prepare()
        try:
            reply: Reply = await self._read_script(args=[self.prefix, name, *args])
        except redis.RedisError as error:
            raise StorageIOError(f"Redis at {self.url} failed: {error}") from error
        return reply

    async def _apply(self, batch: _Batch) -> Reply:
        """One call of the APPLY script, settled: its checks, then (if they all pass) its writes."""
        await self._prepare()
        await anyio.lowlevel.checkpoint_if_cancelled()  # a call cancelled before it starts never starts
        try:
            reply: Reply = await _settled(self._apply_script(args=[self.prefix, *batch.args]))
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise CommitUnknownError(
                f"the connection to Redis at {self.url} failed during a write; it may or may not have landed: {error}"
            ) from error
        except redis.RedisError as error:
            raise StorageIOError(f"Redis at {self.url} failed: {error}") from error
        return reply

    async def _commit(self, attempt: Callable[[], Awaitable[_Batch]]) -> Reply:
        """Read and check (`attempt`), then apply; again while a guard moved between the two."""
        for _ in range(MAX_ATTEMPTS):
            reply = await self._apply(await attempt())
            if reply[0] != b"retry":
                return reply
        raise StorageIOError(f"gave up after {MAX_ATTEMPTS} attempts: the threads this write checks kept changing")

    async def _walked(
        self, batch: _Batch, thread_id: str, parent_thread_id: str | None, chain: dict[str, tuple[bytes, str | None]]
    ) -> None:
        """Check the hierarchy (HIE-1..4) over a chain read; guard each thread the walk passed."""
        walk = hierarchy_walk(thread_id, parent_thread_id)
        try:
            wanted = next(walk)
            while True:
                rev, parent = chain[wanted]
                batch.rev(wanted, rev)
                wanted = walk.send(None if rev == b"0" else Thread(id=wanted, parent_thread_id=parent))
        except StopIteration:
            return

    async def _chain_from(self, parent_thread_id: str | None) -> dict[str, tuple[bytes, str | None]]:
        first = normalize_lineage_id(parent_thread_id)
        return {} if first is None else _chain(await self._read(b"chain", _bytes(first)))

    async def _checkpoint_read(self, thread_id: str, run: RunRecord) -> tuple[Thread | None, _Batch]:
        """The stored thread and a batch guarding it and the hierarchy it checked (CKP-1), in one read."""
        request_parent = normalize_lineage_id(run.request.parent_thread_id) if run.request is not None else None
        flat = await self._read(b"thread_chain", _bytes(thread_id), _bytes(request_parent or ""))
        rev, body = flat[0], flat[1]
        existing = None if rev == b"0" else _thread(body)
        batch = _Batch()
        batch.rev(thread_id, rev)
        await self._walked(batch, thread_id, checkpoint_parent_thread_id(existing, run), _chain(flat[2:]))
        return existing, batch

    # ── threads ──────────────────────────────────────────────────────

    async def load_thread(self, thread_id: str) -> Thread | None:
        """The thread, or `None` for an unknown id (THR-1)."""
        body = await self._command("HGET", self._key(b"t", _str(thread_id, "thread_id")), b"b")
        return None if body is None else _thread(body)

    async def save_thread(self, thread: Thread) -> None:
        """Normalize the lineage, validate (MOD-2), then create or overwrite (THR-2)."""
        batch = _Batch()
        batch.put_thread(_stored_thread(thread))
        await self._apply(batch)

    async def save_thread_validated(self, thread: Thread) -> None:
        """Check the hierarchy, then save, guarded by the chain it walked (HIE-5, CON-3)."""
        stored = _stored_thread(thread)

        async def attempt() -> _Batch:
            batch = _Batch()
            await self._walked(
                batch, stored.id, stored.parent_thread_id, await self._chain_from(stored.parent_thread_id)
            )
            batch.put_thread(stored)
            return batch

        await self._commit(attempt)

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        """`ValidationError` unless `thread_id` may take the parent (HIE-1..4); one read of the chain."""
        _str(thread_id, "thread_id")
        if parent_thread_id is not None:
            _str(parent_thread_id, "parent_thread_id")
        await self._walked(_Batch(), thread_id, parent_thread_id, await self._chain_from(parent_thread_id))

    async def delete_thread(self, thread_id: str) -> None:
        """Remove the thread, its log and its state; keep its runs; unknown ids are fine (THR-4)."""
        batch = _Batch()
        batch.drop_thread(_str(thread_id, "thread_id"))
        await self._apply(batch)

    async def delete_thread_with_strategy(
        self,
        thread_id: str,
        strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH,
    ) -> None:
        """Delete by strategy in one script, guarded by the children it read (DEL-1..6)."""
        try:
            strategy = ChildThreadDeleteStrategy(strategy)
        except ValueError:
            raise ValidationError(f"unknown delete strategy {strategy!r}; use reject, detach or cascade") from None
        _str(thread_id, "thread_id")

        async def attempt() -> _Batch:
            flat = await self._read(b"family", _bytes(thread_id), _bytes(strategy.value))
            if flat[0] == b"0":
                raise NotFoundError(f"thread {thread_id!r} not found")
            batch = _Batch()
            batch.rev(thread_id, flat[0])
            if strategy is ChildThreadDeleteStrategy.CASCADE:
                for doomed in self._cascade(batch, thread_id, flat[1:]):
                    batch.drop_thread(doomed)
                return batch
            count = int(flat[1])
            children = [(flat[2 + 3 * i], flat[3 + 3 * i], flat[4 + 3 * i]) for i in range(count)]
            batch.children(thread_id, [member for member, _, _ in children])
            if strategy is ChildThreadDeleteStrategy.REJECT and children:
                raise ValidationError(f"thread {thread_id!r} has child threads; choose 'detach' or 'cascade'")
            now = now_ms()
            for _, rev, body in children:
                child = _thread(body)
                batch.rev(child.id, rev)
                child.parent_thread_id = None
                child.metadata.updated_at = now
                batch.put_thread(child)
            batch.drop_thread(thread_id)
            return batch

        await self._commit(attempt)

    @staticmethod
    def _cascade(batch: _Batch, thread_id: str, flat: Sequence[bytes]) -> list[str]:
        """The threads a cascade deletes (`cascade_walk` over a subtree read); guard each one's children."""
        children: dict[str, Sequence[bytes]] = {}
        at = 0
        while at < len(flat):
            count = int(flat[at + 1])
            children[_text(flat[at])] = flat[at + 2 : at + 2 + count]
            at += 2 + count
        walk = cascade_walk(thread_id)
        try:
            parent_id = next(walk)
            while True:
                batch.children(parent_id, children[parent_id])
                parent_id = walk.send([Thread(id=_member_id(member)) for member in children[parent_id]])
        except StopIteration as done:
            doomed: list[str] = done.value
        return doomed

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        """Thread ids by recent activity, then id (THR-5): one page of the activity index."""
        offset, limit = _count(offset, "offset"), _count(limit, "limit")
        if limit == 0 or offset > _LUA_MAX:
            return []
        members = await self._command("ZRANGE", self.prefix + b"T", offset, min(offset + limit, _LUA_MAX) - 1)
        return [_member_id(member) for member in members]

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        """One page of matching ids and their total from one read (QRY-1..5, SEC-1)."""
        normalized = _of(query, ThreadQuery, "query").normalized()
        parent, resource = normalized.parent_filter, normalized.resource_id
        if parent.kind == "parent":
            base, base_id, also = b"k", parent.parent_id or "", resource
        elif parent.kind == "root":
            base, base_id, also = b"O", "", resource
        elif resource is not None:
            base, base_id, also = b"u", resource, None
        else:
            base, base_id, also = b"T", "", None
        prefix = normalized.id_prefix
        flat = await self._read(
            b"threads",
            base,
            _bytes(base_id),
            _bytes(also or ""),
            b"0" if prefix is None else b"1",
            _bytes(prefix or ""),
            *_page_numbers(normalized.offset, normalized.limit),
        )
        total = int(flat[0])
        window = PageWindow(offset=normalized.offset, limit=normalized.limit, total=total)
        next_cursor, prev_cursor = window.cursors(normalized)
        return ThreadPage(
            items=[_text(item) for item in flat[1:]],
            total=total,
            has_more=window.has_more,
            next_cursor=next_cursor,
            prev_cursor=prev_cursor,
        )

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        """The direct children, by id (HIE-6)."""
        parent = normalize_lineage_id(_str(parent_thread_id, "parent_thread_id"))
        if parent is None:
            return []
        bodies = await self._read(b"children", _bytes(parent))
        return sorted((_thread(body) for body in bodies), key=lambda child: child.id)

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        """Replace the whole metadata, guarded by the revision read; `NotFoundError` for an unknown id (THR-3)."""
        _of(metadata, ThreadMetadata, "metadata").check_types(f"metadata of thread {id!r}")
        key = self._key(b"t", _str(id, "id"))
        replacement = metadata.copy()

        async def attempt() -> _Batch:
            rev, body = await self._command("HMGET", key, b"v", b"b")
            if rev is None:
                raise NotFoundError(f"thread {id!r} not found")
            updated = _thread(body)
            updated.metadata = replacement.copy()
            batch = _Batch()
            batch.rev(id, rev)
            batch.put_thread(updated)
            return batch

        await self._commit(attempt)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        """Overwrite the thread's state (THR-6); the thread need not exist."""
        _of(state, PersistedState, "state").check_types(f"state of thread {thread_id!r}")
        batch = _Batch()
        batch.put_state(_str(thread_id, "thread_id"), state)
        await self._apply(batch)

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        """The last saved state, or `None` (THR-6)."""
        body = await self._command("GET", self._key(b"s", _str(thread_id, "thread_id")))
        return None if body is None else PersistedState.from_json(_loads(body))

    # ── messages ─────────────────────────────────────────────────────

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        """The raw log, or `None` when it has no message (MSG-1)."""
        bodies = await self._command("LRANGE", self._key(b"m", _str(thread_id, "thread_id")), 0, -1)
        return [Message.from_json(_loads(body)) for body in bodies] or None

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        """Replace the whole log after validating every message (MSG-2); `[]` leaves no log (MSG-1)."""
        messages = _messages(messages)
        validate_message_delta((), 1, messages)
        batch = _Batch()
        batch.replace_log(_str(thread_id, "thread_id"), _Delta(messages))
        await self._apply(batch)

    async def delete_messages(self, thread_id: str) -> None:
        """Empty the log of an existing thread; `NotFoundError` otherwise (MSG-3)."""
        batch = _Batch()
        batch.thread_exists(_str(thread_id, "thread_id"))
        batch.drop_log(thread_id)
        if (await self._apply(batch))[0] == b"missing":
            raise NotFoundError(f"thread {thread_id!r} not found")

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        """Append at the log's end as the server finds it; return the new records (MSG-4, MSG-5, CON-2)."""
        messages = _messages(messages)
        _str(thread_id, "thread_id")
        if not messages:
            return []
        delta = _Delta(messages)
        batch = _Batch()
        batch.append(thread_id, None, delta)
        reply = await self._apply(batch)
        if reply[0] == b"delta":
            delta.refused(int(reply[1]), reply[2:])
        start = int(reply[1])
        return [MessageRecord.from_message(thread_id, start + i, m) for i, m in enumerate(messages)]

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        """A record per committed message, raw seqs (MSG-6); `None` without messages."""
        bodies = await self._command("LRANGE", self._key(b"m", _str(thread_id, "thread_id")), 0, -1)
        return _records(thread_id, 1, bodies) or None

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        """One filtered page of records and its total from one read (MSG-7)."""
        _str(thread_id, "thread_id")
        normalized = _of(query, MessageQuery, "query").normalized()
        visibility = {
            MessageVisibilityFilter.EXTERNAL: b"external",
            MessageVisibilityFilter.INTERNAL: b"internal",
        }.get(normalized.visibility, b"")
        flat = await self._read(
            b"messages",
            _bytes(thread_id),
            -1 if normalized.after is None else min(normalized.after, _LUA_MAX),
            -1 if normalized.before is None else min(normalized.before, _LUA_MAX),
            visibility,
            b"0" if normalized.run_id is None else b"1",
            _bytes(normalized.run_id or ""),
            b"desc" if normalized.order is MessageOrder.DESC else b"asc",
            *_page_numbers(normalized.offset, normalized.limit),
        )
        total, count = int(flat[0]), int(flat[1])
        pairs = zip(flat[2 : 2 + count], flat[2 + count :], strict=True)
        window = PageWindow(offset=normalized.offset, limit=normalized.limit, total=total)
        next_cursor, prev_cursor = window.cursors(normalized)
        return MessagePage(
            records=[_records(thread_id, int(seq), [body])[0] for seq, body in pairs],
            total=total,
            has_more=window.has_more,
            next_cursor=next_cursor,
            prev_cursor=prev_cursor,
        )

    async def load_message_record(self, thread_id: str, message_id: str) -> MessageRecord | None:
        """The record of one message by id; `None` when unknown (MSG-8)."""
        _str(message_id, "message_id")
        found = await self._read(b"record", _bytes(_str(thread_id, "thread_id")), _bytes(message_id))
        return _records(thread_id, int(found[0]), [found[1]])[0] if found else None

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        """Records with `from_seq <= seq <= to_seq`, in seq order (MSG-8): one `LRANGE`."""
        _of(range, MessageSeqRange, "range").check_types("range")
        key = self._key(b"m", _str(thread_id, "thread_id"))
        first, last = max(range.from_seq, 1), min(range.to_seq, _LUA_MAX)
        if first > last:
            return []
        return _records(thread_id, first, await self._command("LRANGE", key, first - 1, last - 1))

    # ── runs ─────────────────────────────────────────────────────────

    async def create_run(self, record: RunRecord) -> None:
        """Validate (MOD-4) and store a new run; `AlreadyExistsError` keeps the old one (RUN-1)."""
        _of(record, RunRecord, "record").validate_for_persist()
        batch = _Batch()
        batch.new_run(record.run_id)
        batch.put_run(record)
        if (await self._apply(batch))[0] == b"exists":
            raise AlreadyExistsError(f"run {record.run_id!r} already exists")

    async def load_run(self, run_id: str) -> RunRecord | None:
        """The run, or `None` for an unknown id (RUN-2)."""
        body = await self._command("HGET", self._key(b"r", _str(run_id, "run_id")), b"b")
        return None if body is None else _run(body)

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """The thread's run with the greatest `updated_at`, ties to the last write (RUN-3)."""
        body = (await self._read(b"latest", _bytes(_str(thread_id, "thread_id"))))[0]
        return _run(body) if body else None

    async def list_runs(self, query: RunQuery) -> RunPage:
        """One page of matching runs by `created_at`, then `run_id`, and their total (RUN-4, SEC-1)."""
        normalized = _of(query, RunQuery, "query").normalized()
        flat = await self._read(
            b"runs",
            b"0" if normalized.thread_id is None else b"1",
            _bytes(normalized.thread_id or ""),
            b"" if normalized.status is None else _bytes(normalized.status.value),
            b"0" if normalized.id_prefix is None else b"1",
            _bytes(normalized.id_prefix or ""),
            *_page_numbers(normalized.offset, normalized.limit),
        )
        total = int(flat[0])
        window = PageWindow(offset=normalized.offset, limit=normalized.limit, total=total)
        return RunPage(items=[_run(body) for body in flat[1:]], total=total, has_more=window.has_more)

    # ── checkpoints ──────────────────────────────────────────────────

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        """Replace the log, write the projected thread and upsert the run in one script (CKP-1, CKP-2)."""
        messages = _messages(messages)
        _checked_run(_str(thread_id, "thread_id"), run)
        validate_message_delta((), 1, messages)
        delta = _Delta(messages)

        async def attempt() -> _Batch:
            existing, batch = await self._checkpoint_read(thread_id, run)
            batch.put_thread(_checkpointed(thread_id, existing, run))
            batch.replace_log(thread_id, delta)
            batch.put_run(run)
            return batch

        await self._commit(attempt)

    async def checkpoint_append(
        self,
        thread_id: str,
        messages: list[Message],
        expected_version: int | None,
        run: RunRecord,
    ) -> int:
        """Append and upsert the run in one script that checks the version; return the new length (CKP-3, CKP-4).

        Checks the run, the hierarchy (CKP-1, here, guarded), the version, then the
        delta (in the script): the first that fails decides the error (CKP-3).
        """
        messages = _messages(messages)
        if expected_version is not None:
            _count(expected_version, "expected_version")
        _checked_run(_str(thread_id, "thread_id"), run)
        delta = _Delta(messages)

        async def attempt() -> _Batch:
            existing, batch = await self._checkpoint_read(thread_id, run)
            projected = _checkpointed(thread_id, existing, run)
            batch.append(thread_id, expected_version, delta)
            batch.put_thread(projected)
            batch.put_run(run)
            return batch

        reply = await self._commit(attempt)
        if reply[0] == b"version":
            assert expected_version is not None
            raise VersionConflictError(expected_version, int(reply[1]))
        if reply[0] == b"delta":
            delta.refused(int(reply[1]), reply[2:])
        return int(reply[1]) - 1 + len(messages)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """View, version, latest run and state from one read (CKP-5)."""
        flat = await self._read(b"checkpoint", _bytes(_str(thread_id, "thread_id")))
        latest, state, bodies = flat[0], flat[1], flat[2:]
        if not bodies and not latest:
            return None
        raw = [Message.from_json(_loads(body)) for body in bodies]
        return CheckpointSnapshot(
            messages=effective_committed_view(raw, thread_id),
            message_version=len(raw),
            latest_run=_run(latest) if latest else None,
            thread_state=PersistedState.from_json(_loads(state)) if state else None,
        )


def server_error(url: str | None = None, *, timeout: float = 2.0) -> str | None:
    """Why no Redis answers at `url` (default `$CONFORMANCE_REDIS_URL`) within `timeout` seconds, or None.

    Blocking: for a test module deciding whether to skip, before any event loop runs.

    >>> server_error("redis://127.0.0.1:1/0")  # doctest: +SKIP
    'Error 111 connecting to 127.0.0.1:1. Connection refused.'
    """
    client = redis.Redis.from_url(
        url or os.environ.get(URL_VARIABLE, DEFAULT_URL), socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    except redis.RedisError as error:
        return str(error) or type(error).__name__
    finally:
        client.close()
    return None


async def make_store(location: str | None = None) -> RedisStore:
    """The kit's factory: a store at `location` in this process's scratch namespace, on `$CONFORMANCE_REDIS_URL`.

    python -m conformance --store examples/redis_store.py:make_store
    """
    return await RedisStore.open(location=location, scratch=True)


# The kit calls it once at the end of its session, with every location it opened (mypy knows no function attributes).
make_store.cleanup = drop_stores  # type: ignore[attr-defined]
