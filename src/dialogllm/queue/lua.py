"""The queue's Lua scripts: each is one atomic round trip on one Cluster slot.

Queue scripts receive ``KEYS[1]`` = a key of the queue (for Cluster routing) and the
queue's base (``P:q:{Q}``, see :mod:`dialogllm.queue.keys`) as ``ARGV[1]``; they build
the per-run and per-thread key names of that queue from the base, the same way
:mod:`dialogllm.queue.keys` does. Every such key carries the queue's hash tag, so a
script never leaves its slot. The lease scripts and their Lua functions (the thread's
slot) live in :mod:`dialogllm.leases`; ``START`` and ``END`` include those functions to
take or release a thread's lease in the same call as the queue's keys, where one Redis
node holds both.

Times come from the Redis server's clock (``TIME``), so workers on machines with skewed
clocks agree on due times and expiries.

The rule a reader must not break: a run's status changes only here, and a worker's
``finish`` applies only while the record still names that worker's lease.
"""

from __future__ import annotations

from typing import Final

from dialogllm.leases import LEASE_FUNCS

__all__ = [
    "BEAT",
    "CANCEL",
    "CLAIM",
    "CLAIM_LAPSED",
    "CRON_DELETE",
    "CRON_FIRE",
    "CRON_INDEX",
    "CRON_PUT",
    "DLQ_RETRY",
    "END",
    "ENQUEUE",
    "FINISH",
    "PROMOTE",
    "PRUNE",
    "START",
]

_PRELUDE = r"""
local BASE = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local NOW = now_ms()
local function esc(s)
  return (string.gsub(s, '[%%{}]', {['%'] = '%25', ['{'] = '%7B', ['}'] = '%7D'}))
end
local K_STREAM = BASE .. ':stream'
local K_DELAYED = BASE .. ':delayed'
local K_RUNS = BASE .. ':runs'
local K_EXPIRY = BASE .. ':expiry'
local K_DLQ = BASE .. ':dlq'
local K_SIGNALS = BASE .. ':signals'
local K_RECOVERY = BASE .. ':recovery'
local K_RECLAIMS = BASE .. ':reclaims'
local K_CRONS = BASE .. ':crons'
local K_CRON_DUE = BASE .. ':crondue'
local K_CRON_STATS = BASE .. ':cronstats'
local K_CRON_CLEANUP = BASE .. ':croncleanup'
local K_CRON_FIRED = BASE .. ':cronfired'
local K_CRON_FOLLOW = BASE .. ':cronfollow'
local function k_cron(id) return BASE .. ':cron:' .. id end
local RECLAIMS_KEPT = 200
local GROUP = 'workers'
local EVENTS_MAXLEN = 10000
-- a record's counter as a whole number >= 0, or nil when it is not one
local function count(v)
  local n = tonumber(v)
  if n and n >= 0 and n < 2^53 and n == math.floor(n) then return n end
  return nil
end
local function k_run(id) return BASE .. ':run:' .. id end
local function k_ev(id) return BASE .. ':ev:' .. id end
local function k_active(th) return BASE .. ':th:' .. esc(th) .. ':active' end
local function k_wait(th) return BASE .. ':th:' .. esc(th) .. ':wait' end

local function event(id, kind, data)
  local kev = k_ev(id)
  -- a key of another type in its place (written by someone else) is no log of this
  -- run: replaced, so a state change is never half done (a script is not undone)
  local t = redis.call('TYPE', kev)['ok']
  if t ~= 'stream' and t ~= 'none' then redis.call('DEL', kev) end
  redis.call('XADD', kev, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'kind', kind, 'data', data)
end

local function status_event(id, status, extra)
  event(id, 'status', cjson.encode({status = status, at = NOW, detail = extra or ''}))
end

-- make run `id` startable: onto the delayed set when not yet due, else the stream
local function push_ready(id)
  local rec = k_run(id)
  local due = tonumber(redis.call('HGET', rec, 'due') or '0') or 0
  if due > NOW then
    redis.call('ZADD', K_DELAYED, due, id)
    redis.call('PUBLISH', K_SIGNALS, 'wake ' .. due)
    redis.call('HSET', rec, 'entry', '')
  else
    local th = redis.call('HGET', rec, 'thread') or ''
    local entry = redis.call('XADD', K_STREAM, '*', 'run', id, 'thread', th)
    redis.call('HSET', rec, 'entry', entry)
  end
end

-- give thread `th` to the next waiting run, when run `id` held it
local function handoff(id, th)
  local ka = k_active(th)
  local t = redis.call('TYPE', ka)['ok']
  -- keys of another type (written by someone else) are replaced: the thread goes
  -- on to its next waiting run instead of every run's end failing on it
  if t ~= 'string' and t ~= 'none' then redis.call('DEL', ka)
  elseif redis.call('GET', ka) ~= id then return end
  local kw = k_wait(th)
  t = redis.call('TYPE', kw)['ok']
  if t ~= 'list' and t ~= 'none' then redis.call('DEL', kw) end
  while true do
    local nxt = redis.call('LPOP', kw)
    if not nxt then
      redis.call('DEL', ka)
      return
    end
    if redis.call('TYPE', k_run(nxt))['ok'] == 'hash'
        and redis.call('HGET', k_run(nxt), 'status') == 'pending' then
      redis.call('SET', ka, nxt)
      push_ready(nxt)
      return
    end
  end
end

-- forget finished runs whose retention has passed (bounded work per call)
local function prune(limit)
  local ids = redis.call('ZRANGEBYSCORE', K_EXPIRY, '-inf', NOW, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', K_EXPIRY, id)
    redis.call('ZREM', K_RUNS, id)
    redis.call('DEL', k_run(id), k_ev(id))
  end
  return #ids
end

-- end run `id` with terminal `status`; keys expire after `retention_ms`
local function terminate(id, status, err, result, retention_ms, dlq_maxlen)
  local rec = k_run(id)
  local th = redis.call('HGET', rec, 'thread') or ''
  local fields = {'status', status, 'finished', NOW, 'lease', '', 'entry', '',
    'signal', ''}
  if err and err ~= '' then
    fields[#fields + 1] = 'error'
    fields[#fields + 1] = err
  end
  if result and result ~= '' then
    fields[#fields + 1] = 'result'
    fields[#fields + 1] = result
  end
  redis.call('HSET', rec, unpack(fields))
  redis.call('ZREM', K_DELAYED, id)
  if status == 'dead' then
    local h = redis.call('HMGET', rec, 'graph', 'attempts')
    -- a key of another type in its place holds no dead letters: replaced
    local t = redis.call('TYPE', K_DLQ)['ok']
    if t ~= 'stream' and t ~= 'none' then redis.call('DEL', K_DLQ) end
    local dlq_id = redis.call('XADD', K_DLQ, 'MAXLEN', '~', dlq_maxlen, '*',
      'run', id, 'graph', h[1] or '', 'thread', th, 'reason', err or '',
      'attempts', string.format('%d', count(h[2]) or 0), 'at', NOW)
    redis.call('HSET', rec, 'dlq', dlq_id)
  end
  status_event(id, status, err)
  local ttl = tonumber(retention_ms)
  redis.call('PEXPIRE', rec, ttl)
  redis.call('PEXPIRE', k_ev(id), ttl)
  local idem = redis.call('HGET', rec, 'idem_key')
  if idem and idem ~= '' then redis.call('PEXPIRE', idem, ttl) end
  redis.call('ZADD', K_EXPIRY, NOW + ttl, id)
  handoff(id, th)
  prune(20)
end

local STATUSES = {pending = true, running = true, interrupted = true, success = true,
  error = true, cancelled = true, dead = true}

-- a stored value for a message: quoted, cut, every byte but printable ASCII as \xNN
-- (the message goes to the record and the dead-letter stream, read as UTF-8)
local function show(v)
  local cut = string.sub(v or '', 1, 60)
  return '"' .. string.gsub(cut, '[^%w%p ]', function(c)
    return string.format('\\x%02x', string.byte(c))
  end) .. '"'
end

-- whether `s` is UTF-8 as Python's strict decoder reads it (the queue's clients
-- decode every reply: one field that is not would fail every start of the run)
local function utf8ok(s)
  if not string.find(s, '[\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local c, k, lo, hi = string.byte(s, i), 0, 0x80, 0xBF
    if c < 0x80 then k = 0
    elseif c >= 0xC2 and c <= 0xDF then k = 1
    elseif c >= 0xE0 and c <= 0xEF then
      k = 2
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      k = 3
      if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    else return false end
    for j = i + 1, i + k do
      local d = string.byte(s, j)
      if not d or d < lo or d > hi then return false end
      lo, hi = 0x80, 0xBF
    end
    i = i + k + 1
  end
  return true
end

-- the Redis type of run `id`'s record when it is not a hash (someone overwrote it)
local function foreign(id)
  local t = redis.call('TYPE', k_run(id))['ok']
  if t ~= 'hash' and t ~= 'none' then return t end
  return nil
end

-- dead-letter run `id` whose record cannot be decoded (`why`): never started,
-- retried or reclaimed; a record of another type is replaced by the dead record
local function poison(id, why, dead_retention)
  local t = foreign(id)
  if t then
    redis.call('DEL', k_run(id))
    why = 'the record is a ' .. t .. ', not a hash'
  end
  local reason = 'poison: corrupt run record: ' .. why
  terminate(id, 'dead', reason, '', dead_retention, 10000)
  return reason
end
"""

_ENQUEUE_FUNC = r"""
-- create run `id` (see ENQUEUE for the arguments); returns {verdict, run id, status}
local function enqueue_run(id, graph, th, input, max_attempts, multitask, idem_key,
    idem, delay, fp, retention_ms, options)
local rec = k_run(id)
if redis.call('EXISTS', rec) == 1 then
  return {'exists', id, redis.call('HGET', rec, 'status')}
end
if idem_key ~= '' then
  local prior = redis.call('GET', idem_key)
  if prior then
    local pr = redis.call('HMGET', k_run(prior), 'fp', 'status')
    if pr[1] and pr[1] ~= fp then return {'duplicate', prior, pr[2] or ''} end
    return {'exists', prior, pr[2] or ''}
  end
end
local ka = k_active(th)
local active = redis.call('GET', ka)
local active_status = false
if active then
  active_status = redis.call('HGET', k_run(active), 'status')
  if active_status ~= 'pending' and active_status ~= 'running' then
    redis.call('DEL', ka)
    active = false
  end
end
if active and multitask == 'reject' then
  return {'busy', active, active_status}
end
redis.call('HSET', rec, 'graph', graph, 'thread', th, 'status', 'pending',
  'input', input, 'attempts', 0, 'max_attempts', max_attempts,
  'multitask', multitask, 'idem', idem, 'idem_key', idem_key, 'created', NOW,
  'due', NOW + delay, 'fp', fp)
if options and options ~= '' then redis.call('HSET', rec, 'options', options) end
redis.call('ZADD', K_RUNS, NOW, id)
if idem_key ~= '' then redis.call('SET', idem_key, id) end
status_event(id, 'pending', '')
if not active then
  redis.call('SET', ka, id)
  push_ready(id)
elseif multitask == 'enqueue' then
  redis.call('RPUSH', k_wait(th), id)
else
  -- interrupt / rollback: the new run goes first in line, the active one stops
  redis.call('LPUSH', k_wait(th), id)
  if active_status == 'pending' then
    local st = 'interrupted'
    if multitask == 'rollback' then st = 'cancelled' end
    local entry = redis.call('HGET', k_run(active), 'entry')
    if entry and entry ~= '' then
      redis.call('XACK', K_STREAM, GROUP, entry)
      redis.call('XDEL', K_STREAM, entry)
    end
    terminate(active, st, multitask .. ' by run ' .. id, '',
      tonumber(retention_ms), 10000)
  else
    redis.call('HSET', k_run(active), 'signal', multitask, 'signal_by', id)
    redis.call('PUBLISH', K_SIGNALS, multitask .. ' ' .. active .. ' ' .. id)
  end
end
return {'ok', id, 'pending'}
end
"""

ENQUEUE: Final = (
    _PRELUDE
    + _ENQUEUE_FUNC
    + r"""
-- ARGV: base, run_id, graph, thread, input, max_attempts, multitask, idem_key,
--       idem, delay_ms, fingerprint, retention_ms, options ('' = none)
-- Returns {verdict, run id, status} and, for a new run, its record's fields.
local r = enqueue_run(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  ARGV[9], tonumber(ARGV[10]), ARGV[11], ARGV[12], ARGV[13])
if r[1] == 'ok' then r[4] = redis.call('HGETALL', k_run(r[2])) end
return r
"""
)

_CLAIM_FUNC = r"""
-- why the record of a run to start cannot be decoded, or nil when it can
local function corrupt(h)
  if not STATUSES[h[1]] then
    return 'status=' .. show(h[1]) .. ' is not a run status'
  end
  if h[6] and not count(h[6]) then
    return 'attempts=' .. show(h[6]) .. ' is not a whole number >= 0'
  end
  if h[7] and not ((count(h[7]) or 0) >= 1) then
    return 'max_attempts=' .. show(h[7]) .. ' is not a whole number >= 1'
  end
  for i, name in pairs({[3] = 'graph', [4] = 'thread', [5] = 'input', [8] = 'signal',
      [9] = 'signal_by', [12] = 'options'}) do
    if h[i] and not utf8ok(h[i]) then return name .. ' is not UTF-8' end
  end
  return nil
end

-- take run `id` (stream entry `entry`) for `worker` under lease `lease`. A record
-- that cannot be decoded is poison: dead-lettered at once (kept `dead_retention`
-- ms), never started, retried or reclaimed.
-- Returns {verdict, ...}: 'gone' | 'skip' status | 'poison' reason |
--   'run' record fields...
local function claim(id, entry, worker, lease, dead_retention)
  local rec = k_run(id)
  if foreign(id) then
    redis.call('XACK', K_STREAM, GROUP, entry)
    redis.call('XDEL', K_STREAM, entry)
    return {'poison', poison(id, '', dead_retention)}
  end
  local h = redis.call('HMGET', rec, 'status', 'entry', 'graph', 'thread', 'input',
    'attempts', 'max_attempts', 'signal', 'signal_by', 'started', 'beat', 'options')
  if not h[1] then
    redis.call('XACK', K_STREAM, GROUP, entry)
    redis.call('XDEL', K_STREAM, entry)
    return {'gone'}
  end
  local ended = STATUSES[h[1]] and h[1] ~= 'pending' and h[1] ~= 'running'
  if ended or (STATUSES[h[1]] and h[2] ~= entry) then
    redis.call('XACK', K_STREAM, GROUP, entry)
    redis.call('XDEL', K_STREAM, entry)
    return {'skip', h[1]}
  end
  local why = corrupt(h)
  if why then
    redis.call('XACK', K_STREAM, GROUP, entry)
    redis.call('XDEL', K_STREAM, entry)
    return {'poison', poison(id, why, dead_retention)}
  end
  local attempts = count(h[6] or '0') + 1
  local detail = 'attempt ' .. attempts .. ' on ' .. worker
  if h[1] == 'running' then
    -- its holder never ended it: the worker died or stalled and its lease lapsed.
    -- Downtime counts from the last sign of life (lease renewal, else the start).
    local alive = math.max(tonumber(h[10] or '0') or 0, tonumber(h[11] or '0') or 0)
    local down = math.max(0, NOW - alive)
    -- counters someone else wrote (no whole number, a key of another type) restart:
    -- a reclaim must never fail on them, or the run is reclaimed and fails forever
    local t = redis.call('TYPE', K_RECOVERY)['ok']
    if t ~= 'hash' and t ~= 'none' then redis.call('DEL', K_RECOVERY) end
    t = redis.call('TYPE', K_RECLAIMS)['ok']
    if t ~= 'list' and t ~= 'none' then redis.call('DEL', K_RECLAIMS) end
    for _, kf in ipairs({{rec, 'reclaims'}, {K_RECOVERY, 'reclaims'}}) do
      local v = redis.call('HGET', kf[1], kf[2])
      if v and not count(v) then redis.call('HSET', kf[1], kf[2], 0) end
    end
    redis.call('HINCRBY', rec, 'reclaims', 1)
    redis.call('HINCRBY', K_RECOVERY, 'reclaims', 1)
    redis.call('LPUSH', K_RECLAIMS, NOW .. ' ' .. down .. ' ' .. id)
    redis.call('LTRIM', K_RECLAIMS, 0, RECLAIMS_KEPT - 1)
    detail = detail .. ' (reclaimed ' .. down .. ' ms after its last heartbeat)'
  end
  redis.call('HSET', rec, 'status', 'running', 'attempts', attempts, 'worker', worker,
    'lease', lease, 'started', NOW, 'beat', NOW)
  status_event(id, 'running', detail)
  -- `fresh` (1): no claim ever took this run before, so no checkpoint of it exists
  -- (a checkpoint write needs a claim's lease): the worker need not look for one
  local fresh = 0
  if not h[10] or h[10] == '' then fresh = 1 end
  return {'run', h[3] or '', h[4] or '', h[5] or '', attempts, count(h[7] or '1'),
    h[8] or '', h[9] or '', h[12] or '', fresh}
end
"""

CLAIM: Final = (
    _PRELUDE
    + _CLAIM_FUNC
    + r"""
-- ARGV: base, run_id, entry_id, worker, lease_id[, dead_retention_ms]
return claim(ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]) or 604800000)
"""
)

_FINISH_FUNC = r"""
-- end attempt `lease` of run `id`. mode: a terminal status | 'retry' (back to
-- pending after backoff ms) | 'handback' (pending at once, attempt not counted)
local function finish(id, lease, mode, entry, result, err, retention, backoff,
                      dlq_maxlen, node)
  local rec = k_run(id)
  local h = redis.call('HMGET', rec, 'status', 'lease')
  if entry ~= '' then
    if not h[1] or h[2] == lease then
      redis.call('XACK', K_STREAM, GROUP, entry)
      redis.call('XDEL', K_STREAM, entry)
    end
  end
  if not h[1] then return 'gone' end
  if h[2] ~= lease then return 'superseded' end
  if node and err ~= '' then  -- the node goes with the error it came from
    if node == '' then redis.call('HDEL', rec, 'error_node')
    else redis.call('HSET', rec, 'error_node', node) end
  end
  if mode == 'retry' then
    redis.call('HSET', rec, 'status', 'pending', 'lease', '', 'error', err,
      'due', NOW + backoff, 'entry', '')
    status_event(id, 'pending', 'retry in ' .. backoff .. ' ms: ' .. err)
    push_ready(id)
    return 'retry'
  end
  if mode == 'handback' then
    redis.call('HSET', rec, 'status', 'pending', 'lease', '', 'due', 0)
    redis.call('HINCRBY', rec, 'attempts', -1)
    status_event(id, 'pending', 'handed back')
    push_ready(id)
    return 'handback'
  end
  terminate(id, mode, err, result, retention, dlq_maxlen)
  return mode
end
"""

FINISH: Final = (
    _PRELUDE
    + _FINISH_FUNC
    + r"""
-- ARGV: base, run_id, lease_id, mode, entry_id, result, error, retention_ms,
--       backoff_ms, dlq_maxlen[, error_node]
return finish(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11])
"""
)

CANCEL: Final = (
    _PRELUDE
    + r"""
-- ARGV: base, run_id, retention_ms, reason
local id = ARGV[2]
local rec = k_run(id)
local h = redis.call('HMGET', rec, 'status', 'entry', 'thread')
if not h[1] then return 'gone' end
if h[1] == 'running' then
  redis.call('HSET', rec, 'signal', 'cancel')
  redis.call('PUBLISH', K_SIGNALS, 'cancel ' .. id)
  return 'cancelling'
end
if h[1] ~= 'pending' then return h[1] end
if h[2] and h[2] ~= '' then
  redis.call('XACK', K_STREAM, GROUP, h[2])
  redis.call('XDEL', K_STREAM, h[2])
end
redis.call('LREM', k_wait(h[3] or ''), 0, id)
terminate(id, 'cancelled', ARGV[4], '', tonumber(ARGV[3]), 10000)
return 'cancelled'
"""
)

DELETE: Final = (
    _PRELUDE
    + r"""
-- ARGV: base, run_id.  Forgets a finished run now (record and events): 'deleted',
-- 'gone', or the status of a run that has not finished (nothing is changed).
local id = ARGV[2]
local status = redis.call('HGET', k_run(id), 'status')
if not status then return 'gone' end
if status == 'pending' or status == 'running' then return status end
redis.call('ZREM', K_EXPIRY, id)
redis.call('ZREM', K_RUNS, id)
redis.call('DEL', k_run(id), k_ev(id))
return 'deleted'
"""
)

PROMOTE: Final = (
    _PRELUDE
    + r"""
-- ARGV: base, limit.  Moves due runs from the delayed set to the stream.
-- Returns {moved, ms until the next due run or -1}
local ids = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', NOW, 'LIMIT', 0,
  tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', K_DELAYED, id) == 1 then
    local kind = redis.call('TYPE', k_run(id))['ok']
    local st = kind == 'hash' and redis.call('HGET', k_run(id), 'status')
    if st == 'pending' then
      redis.call('HSET', k_run(id), 'due', 0)
      push_ready(id)
      moved = moved + 1
    elseif kind ~= 'none' and not (st and STATUSES[st]) then
      -- a record no one can read: dead-lettered (7 days), not silently dropped
      poison(id, 'status=' .. show(st or '') .. ' is not a run status', 604800000)
    end
  end
end
local nxt = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
local wait = -1
if nxt[2] then wait = math.max(0, tonumber(nxt[2]) - NOW) end
return {moved, wait}
"""
)

PRUNE: Final = (
    _PRELUDE
    + r"""
-- ARGV: base, limit.  Forgets finished runs whose retention has passed.
return prune(tonumber(ARGV[2]))
"""
)

DLQ_RETRY: Final = (
    _PRELUDE
    + r"""
-- ARGV: base, run_id.  Re-enqueues a dead run (attempts reset, after its thread).
local id = ARGV[2]
local rec = k_run(id)
local h = redis.call('HMGET', rec, 'status', 'thread', 'dlq', 'idem_key')
if not h[1] then return 'gone' end
if h[1] ~= 'dead' then return h[1] end
if h[3] and h[3] ~= '' then redis.call('XDEL', K_DLQ, h[3]) end
redis.call('PERSIST', rec)
redis.call('PERSIST', k_ev(id))
if h[4] and h[4] ~= '' then redis.call('PERSIST', h[4]) end
redis.call('ZREM', K_EXPIRY, id)
redis.call('HSET', rec, 'status', 'pending', 'attempts', 0, 'dlq', '', 'due', 0,
  'finished', '')
status_event(id, 'pending', 'retried from the dead-letter stream')
local th = h[2] or ''
local ka = k_active(th)
local active = redis.call('GET', ka)
if active and active ~= id then
  local st = redis.call('HGET', k_run(active), 'status')
  if st == 'pending' or st == 'running' then
    redis.call('RPUSH', k_wait(th), id)
    return 'pending'
  end
end
redis.call('SET', ka, id)
push_ready(id)
return 'pending'
"""
)

# --- run liveness (the queue's slot) --------------------------------------------

BEAT: Final = r"""
-- KEYS: run record.  ARGV: lease_id.  Marks the run alive (field ``beat``, server ms)
-- while the record still names this lease; returns the run's pending signal, if any.
local h = redis.call('HMGET', KEYS[1], 'lease', 'signal')
if h[1] and h[1] == ARGV[1] then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'beat',
    tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
return h[2]
"""

# --- lease and queue in one call (one Redis node: see the module docstring) ---------

START: Final = (
    _PRELUDE
    + LEASE_FUNCS
    + _CLAIM_FUNC
    + r"""
-- KEYS: stream, thread lease, thread fence counter
-- ARGV: base, run_id, entry_id, worker, lease_id, ttl_ms, counter_ttl_ms[,
--       dead_retention_ms]
-- Returns {'held', holder run, pttl} | {'gone'} | {'skip', status} |
--         {'poison', reason} |
--         {'run', fence, graph, thread, input, attempts, max_attempts, signal, by,
--          options, fresh}
local got = lease_acquire(KEYS[2], KEYS[3], ARGV[5], ARGV[2], ARGV[6], ARGV[7])
if got[1] == 0 then return {'held', got[2], got[3]} end
local c = claim(ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[8]) or 604800000)
if c[1] ~= 'run' then
  lease_release(KEYS[2], ARGV[5])
  return c
end
table.insert(c, 2, got[2])
return c
"""
)

END: Final = (
    _PRELUDE
    + LEASE_FUNCS
    + _FINISH_FUNC
    + r"""
-- KEYS: stream, thread lease
-- ARGV: base, run_id, lease_id, mode, entry_id, result, error, retention_ms,
--       backoff_ms, dlq_maxlen[, error_node].  Releases the lease, then records
--       the run's end.
lease_release(KEYS[2], ARGV[3])
return finish(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11])
"""
)

CRON_PUT: Final = (
    _PRELUDE
    + r"""
-- ARGV: base, cron_id, mode ('create' | 'update'), spec (JSON), next tick ms
--       ('' = none: disabled or ended), expected version ('' = any),
--       assistant index key, thread index key ('' = none: not indexed by it)
-- returns {'ok', version} | {'exists'} | {'gone'} | {'stale', version}
local id, mode, spec, nxt = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ix = {ARGV[7] or '', ARGV[8] or ''}
local rec = k_cron(id)
local exists = redis.call('EXISTS', rec) == 1
local created = NOW
if mode == 'create' then
  if exists then return {'exists'} end
  redis.call('HSET', rec, 'spec', spec, 'created', NOW, 'updated', NOW,
    'version', 1, 'next', nxt, 'fired', 0)
  redis.call('ZADD', K_CRONS, NOW, id)
else
  if not exists then return {'gone'} end
  local v = redis.call('HGET', rec, 'version') or ''
  if ARGV[6] ~= '' and v ~= ARGV[6] then return {'stale', v} end
  redis.call('HSET', rec, 'spec', spec, 'updated', NOW, 'next', nxt)
  redis.call('HINCRBY', rec, 'version', 1)
  created = redis.call('HGET', rec, 'created') or NOW
  local old = redis.call('HMGET', rec, 'ix_a', 'ix_t')
  for i = 1, 2 do
    if old[i] and old[i] ~= '' and old[i] ~= ix[i] then
      redis.call('ZREM', old[i], id)
    end
  end
end
redis.call('HSET', rec, 'ix_a', ix[1], 'ix_t', ix[2])
for i = 1, 2 do
  if ix[i] ~= '' then redis.call('ZADD', ix[i], created, id) end
end
if nxt == '' then
  redis.call('ZREM', K_CRON_DUE, id)
else
  redis.call('ZADD', K_CRON_DUE, nxt, id)
end
return {'ok', redis.call('HGET', rec, 'version')}
"""
)

CRON_DELETE: Final = (
    _PRELUDE
    + r"""
-- ARGV: base, cron_id; returns 1 when the cron existed
local id = ARGV[2]
local ix = redis.call('HMGET', k_cron(id), 'ix_a', 'ix_t')
for i = 1, 2 do
  if ix[i] and ix[i] ~= '' then redis.call('ZREM', ix[i], id) end
end
redis.call('ZREM', K_CRON_DUE, id)
redis.call('ZREM', K_CRONS, id)
return redis.call('DEL', k_cron(id))
"""
)

CRON_INDEX: Final = (
    _PRELUDE
    + r"""
-- Adds crons made before the search indexes existed to them. A cron that has
-- index fields already (made or updated since) or no longer exists is left alone.
-- ARGV: base, then per cron: id, assistant index key, thread index key ('' = none)
-- returns how many crons it added
local added = 0
for i = 2, #ARGV, 3 do
  local id, ia, it = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local rec = k_cron(id)
  if redis.call('EXISTS', rec) == 1 and redis.call('HEXISTS', rec, 'ix_a') == 0 then
    local created = redis.call('HGET', rec, 'created') or NOW
    redis.call('HSET', rec, 'ix_a', ia, 'ix_t', it)
    if ia ~= '' then redis.call('ZADD', ia, created, id) end
    if it ~= '' then redis.call('ZADD', it, created, id) end
    added = added + 1
  end
end
return added
"""
)

CRON_FIRE: Final = (
    _PRELUDE
    + _ENQUEUE_FUNC
    + r"""
-- The one claim of a cron's tick: whoever finds the cron still due at `expected`
-- (its score in the due set) and at the version it read fires it, in this call.
-- ARGV: base, cron_id, version, expected ms, tick ms, next ms ('' = none),
--       skipped (ticks passed over), fire ('1' enqueue | '0' only advance),
--       run_id, graph, thread, input, max_attempts, multitask, retention_ms,
--       options, cleanup ('1': delete the thread when the run ends),
--       followed ('1': announce the run in the fired set, for the API),
--       follow-up (JSON: what the API does for the firing; '' = none)
-- returns {'lost'} | {'stale'} | {verdict of the enqueue, run id, status}
local id, version, expected = ARGV[2], ARGV[3], tonumber(ARGV[4])
local tick, nxt, skipped, fire = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8]
local rec = k_cron(id)
local score = redis.call('ZSCORE', K_CRON_DUE, id)
if not score or tonumber(score) ~= expected then return {'lost'} end
if redis.call('HGET', rec, 'version') ~= version then return {'stale'} end
local reply = {'ended', '', ''}
if fire == '1' then
  local run_id, th = ARGV[9], ARGV[11]
  reply = enqueue_run(run_id, ARGV[10], th, ARGV[12], ARGV[13], ARGV[14], '', '',
    0, '', ARGV[15], ARGV[16])
  if reply[1] == 'ok' then
    redis.call('HSET', rec, 'last_run', run_id, 'last_tick', tick)
    redis.call('HINCRBY', rec, 'fired', 1)
    redis.call('HINCRBY', K_CRON_STATS, 'fired', 1)
    if ARGV[17] == '1' then redis.call('HSET', K_CRON_CLEANUP, run_id, th) end
    if ARGV[18] == '1' then
      redis.call('ZADD', K_CRON_FIRED, NOW, run_id)
      if (ARGV[19] or '') ~= '' then
        redis.call('HSET', K_CRON_FOLLOW, run_id, ARGV[19])
      end
    end
  else
    redis.call('HSET', rec, 'last_tick', tick)
    redis.call('HINCRBY', K_CRON_STATS, 'busy', 1)
  end
end
if skipped > 0 then redis.call('HINCRBY', K_CRON_STATS, 'skipped', skipped) end
redis.call('HSET', rec, 'next', nxt)
if nxt == '' then
  redis.call('ZREM', K_CRON_DUE, id)
else
  redis.call('ZADD', K_CRON_DUE, nxt, id)
end
return reply
"""
)

CLAIM_LAPSED: Final = r"""
-- Claims up to ARGV[3] members of a "claimable from" sorted set whose claim is free
-- (score <= now: a followed cron's firing, a server follow-up): each is re-scored
-- to now + ARGV[2] ms, so two processes never take the same one, and one whose
-- process died is claimable again once that lapses.
-- KEYS[1]: the sorted set; ARGV: now ms, claim ms, how many; returns the members
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], until_ms, id)
end
return ids
"""
