"""The store's Lua scripts: each is one atomic round trip on one root's keys.

Scripts receive every key they touch in ``KEYS`` (all under the root's hash tag, see
:mod:`dialogllm.store.keys`) and never build a key name. A record is a header line
``"<created µs> <updated µs> <seq> <expires ms> <ttl ms>"`` (``0``: no TTL), a
newline, then the value's JSON, which the scripts never decode.

The rule a reader must not break: an item counts in ``count`` (and its namespace is
in ``ns``) exactly while its field exists in the items hash; only these scripts add
or remove such fields.

Where the native vector index is in use (:mod:`dialogllm.store.vector_index`), the
scripts also keep an item's vector hashes (one per vector) equal to its vectors in
the vecs hash: they get the base name of those hashes in ``KEYS`` and append the
vector's number (the one name they build: under the same hash tag, so in the same
slot), and never write them when that key is not given.
"""

from __future__ import annotations

from dialogllm.redis.requests import Script

__all__ = ["DELETE", "GET", "INDEX_STATE", "PUT", "REFRESH", "REINDEX", "SWEEP"]

_PRELUDE = r"""
local function header(rec)
  local nl = string.find(rec, '\n', 1, true)
  local c, u, s, e, t
  if nl then
    c, u, s, e, t = string.match(string.sub(rec, 1, nl - 1),
      '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
  end
  if not c then error('DIALOGLLM_CORRUPT malformed store record') end
  return c, u, s, tonumber(e), tonumber(t), string.sub(rec, nl)
end

local function expired(e, now) return e > 0 and e <= now end

-- the vectors of a stored vecs field: each "<len>:<path>" then `size` bytes
local function blob_vectors(blob, size)
  local out, pos = {}, 1
  if not blob then return out end
  while pos <= #blob do
    local colon = string.find(blob, ':', pos, true)
    if not colon then error('DIALOGLLM_CORRUPT malformed store vectors') end
    local start = colon + 1 + tonumber(string.sub(blob, pos, colon - 1))
    out[#out + 1] = string.sub(blob, start, start + size - 1)
    pos = start + size
  end
  return out
end

-- make the vector hashes base..0, base..1, ... those of `blob`, deleting the ones
-- `old` had beyond them
local function index_vectors(base, key, ns, tags, blob, old, size)
  local new = blob_vectors(blob, size)
  for i, v in ipairs(new) do
    redis.call('HSET', base .. (i - 1), 'vec', v, 'nsp', tags, 'ns', ns, 'key', key)
  end
  for i = #new, #blob_vectors(old, size) - 1 do redis.call('DEL', base .. i) end
end

-- remove an item: KEYS items, vecs, ns, count, exp (and its vector hashes when
-- `base` is given)
local function remove(key, ns, member, base, size)
  if redis.call('HDEL', KEYS[1], key) == 0 then
    redis.call('ZREM', KEYS[5], member)
    return 0
  end
  if base then
    index_vectors(base, key, ns, '', false, redis.call('HGET', KEYS[2], key), size)
  end
  redis.call('HDEL', KEYS[2], key)
  redis.call('ZREM', KEYS[5], member)
  if redis.call('HINCRBY', KEYS[4], ns, -1) <= 0 then
    redis.call('HDEL', KEYS[4], ns)
    redis.call('ZREM', KEYS[3], ns)
  end
  return 1
end

-- a record with its expiry moved to now + ttl (KEYS[1] items, KEYS[2] exp)
local function refresh(key, member, rec, now)
  local c, u, s, e, t, rest = header(rec)
  if t <= 0 or expired(e, now) then return rec end
  local new_e = string.format('%d', now + t)
  rec = c .. ' ' .. u .. ' ' .. s .. ' ' .. new_e .. ' '
    .. string.format('%d', t) .. rest
  redis.call('HSET', KEYS[1], key, rec)
  redis.call('ZADD', KEYS[2], new_e, member)
  return rec
end
"""

GET = Script(
    "store_get",
    _PRELUDE
    + r"""
-- KEYS: items, exp. ARGV: key, exp member, now ms, refresh ('1' or '')
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return false end
local now = tonumber(ARGV[3])
local _, _, _, e = header(rec)
if expired(e, now) then return false end
if ARGV[4] == '1' then rec = refresh(ARGV[1], ARGV[2], rec, now) end
return rec
""",
)

REFRESH = Script(
    "store_refresh",
    _PRELUDE
    + r"""
-- KEYS: items, exp. ARGV: now ms, then (key, exp member) pairs
local now = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local rec = redis.call('HGET', KEYS[1], ARGV[i])
  if rec then refresh(ARGV[i], ARGV[i + 1], rec, now) end
end
return 1
""",
)

PUT = Script(
    "store_put",
    _PRELUDE
    + r"""
-- KEYS: items, vecs, ns, count, exp, seq (, vector hashes' base)
-- ARGV: key, namespace, exp member, now µs, now ms, ttl ms ('0': none), JSON,
--       vectors ('' : none) (, bytes per vector, the vector hashes' tags)
local key, ns, member = ARGV[1], ARGV[2], ARGV[3]
local now_ms, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local old = redis.call('HGET', KEYS[1], key)
local created, seq
if old then
  local c, _, s, e = header(old)
  if not expired(e, now_ms) then created, seq = c, s end
else
  if redis.call('HINCRBY', KEYS[4], ns, 1) == 1 then
    redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ns)
  end
end
if not created then
  created = ARGV[4]
  seq = tostring(redis.call('INCR', KEYS[6]))
end
local e = '0'
if ttl > 0 then
  e = string.format('%d', now_ms + ttl)
  redis.call('ZADD', KEYS[5], e, member)
else
  redis.call('ZREM', KEYS[5], member)
end
redis.call('HSET', KEYS[1], key,
  created .. ' ' .. ARGV[4] .. ' ' .. seq .. ' ' .. e .. ' ' .. ARGV[6]
    .. '\n' .. ARGV[7])
if KEYS[7] then
  index_vectors(KEYS[7], key, ns, ARGV[10], ARGV[8], redis.call('HGET', KEYS[2], key),
    tonumber(ARGV[9]))
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[2], key, ARGV[8])
else
  redis.call('HDEL', KEYS[2], key)
end
return 1
""",
)

DELETE = Script(
    "store_delete",
    _PRELUDE
    + r"""
-- KEYS: items, vecs, ns, count, exp (, vector hashes' base)
-- ARGV: key, namespace, exp member (, bytes per vector)
return remove(ARGV[1], ARGV[2], ARGV[3], KEYS[6], tonumber(ARGV[4]))
""",
)

SWEEP = Script(
    "store_sweep",
    _PRELUDE
    + r"""
-- KEYS: items, vecs, ns, count, exp (, vector hashes' base)
-- ARGV: key, namespace, exp member, now ms (, bytes per vector)
-- deletes the item only if it is still expired (a refresh may have saved it)
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if rec then
  local _, _, _, e = header(rec)
  if not expired(e, tonumber(ARGV[4])) then return 0 end
end
return remove(ARGV[1], ARGV[2], ARGV[3], KEYS[6], tonumber(ARGV[5]))
""",
)

REINDEX = Script(
    "store_reindex",
    _PRELUDE
    + r"""
-- KEYS: vecs, the item's vector hashes' base. ARGV: key, namespace, tags, bytes per
-- vector. Writes the item's vector hashes from its vecs field as it is now.
local blob = redis.call('HGET', KEYS[1], ARGV[1])
index_vectors(KEYS[2], ARGV[1], ARGV[2], ARGV[3], blob, blob, tonumber(ARGV[4]))
return blob and 1 or 0
""",
)

INDEX_STATE = Script(
    "store_index_state",
    r"""
-- KEYS: the index's state. ARGV: seconds a build may take, FT.CREATE's arguments.
-- 'ready'; 'absent' (no RediSearch); 'building' (another store fills it); 'build'
-- (this caller created it, or found it without a state, and must fill it);
-- {'failed', error} when FT.CREATE refused.
local state = redis.call('GET', KEYS[1])
if state == 'ready' then return 'ready' end
local probe = redis.pcall('FT._LIST')
if type(probe) == 'table' and probe.err then return 'absent' end
if state then return 'building' end
local made = redis.pcall('FT.CREATE', unpack(ARGV, 2))
if type(made) == 'table' and made.err
    and not string.find(made.err, 'already exists', 1, true) then
  return {'failed', made.err}
end
redis.call('SET', KEYS[1], 'building', 'EX', ARGV[1])
return 'build'
""",
)
