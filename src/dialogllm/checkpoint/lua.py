"""The checkpointer's Lua scripts: each is one atomic round trip on one thread.

Every script receives the thread's keys in the order of :data:`THREAD_KEYS_ORDER`
(all under the thread's hash tag, so each call touches one Cluster slot) and never
builds a key name itself. Records stored in hashes are sequences of length-prefixed
items (``"<bytes>:<item>"``, see :func:`dialogllm.checkpoint.keys.lp`); the scripts
parse only the skeleton records and the first items of a write record.

Errors a script raises on purpose start with ``DIALOGLLM_`` so the Python side can
map them to typed exceptions (``DIALOGLLM_FENCED`` -> ``FencedWriteError``). The fence
check itself (``check_fence``) comes from :mod:`dialogllm.leases`, which owns the lease.
"""

from __future__ import annotations

from typing import Final

from dialogllm.leases import CHECK_FENCE
from dialogllm.redis.requests import Script

__all__ = ["DELETE_MEMBERS", "GET", "HISTORY", "LIST", "PUT", "PUT_WRITES", "Script"]

#: KEYS[1..8] of every script.
THREAD_KEYS_ORDER: Final = ("idx", "cp", "blobs", "w", "runs", "meta", "lease", "fence")


_PRELUDE = (
    r"""
local K_IDX, K_CP, K_BLOBS, K_W, K_RUNS, K_META, K_LEASE =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local DATA_KEYS = {K_IDX, K_CP, K_BLOBS, K_W, K_RUNS, K_META}

local function lp(s) return #s .. ':' .. s end

-- parse up to `limit` length-prefixed items of s (all when limit is nil)
local function lp_items(s, limit)
  local out, pos, n = {}, 1, #s
  while pos <= n do
    if limit and #out >= limit then break end
    local colon = string.find(s, ':', pos, true)
    local len = colon and tonumber(string.sub(s, pos, colon - 1))
    if not len or colon + len > n then
      error('DIALOGLLM_CORRUPT malformed stored record')
    end
    out[#out + 1] = string.sub(s, colon + 1, colon + len)
    pos = colon + len + 1
  end
  return out
end

-- the skeleton (first item of a cp record): parent, run, then (channel, version)
local function skeleton(rec) return lp_items(lp_items(rec, 1)[1]) end

-- blob fields of a skeleton's channels: nsp .. lp(channel) .. version. A version
-- starting with NUL marks a None value kept inline: no blob, so no field.
local function blob_fields(nsp, items)
  local fields, channels = {}, {}
  for k = 3, #items, 2 do
    if string.byte(items[k + 1], 1) ~= 0 then
      channels[#channels + 1] = items[k]
      fields[#fields + 1] = nsp .. lp(items[k]) .. items[k + 1]
    end
  end
  return fields, channels
end

-- channels whose value is None, kept inline in the skeleton
local function inline_nones(items)
  local out = {}
  for k = 3, #items, 2 do
    if string.byte(items[k + 1], 1) == 0 then out[items[k]] = true end
  end
  return out
end

-- ttl_ms: '' = no default TTL. A per-thread 'ttl_ms' in meta wins; -1 pins.
local function apply_ttl(default_ttl)
  local ttl = redis.call('HGET', K_META, 'ttl_ms')
  if not ttl then ttl = default_ttl end
  if ttl == '' then return end
  local n = tonumber(ttl)
  if n == nil or n <= 0 then return end
  for _, k in ipairs(DATA_KEYS) do redis.call('PEXPIRE', k, n) end
end

local function latest_member(nsp)
  local r = redis.call('ZREVRANGEBYLEX', K_IDX, '(' .. nsp .. '\255', '[' .. nsp,
    'LIMIT', 0, 1)
  return r[1]
end

-- the member a checkpoint id names in a namespace ('' = the latest; nil if none)
local function target_member(nsp, checkpoint_id)
  if checkpoint_id == '' then return latest_member(nsp) end
  return nsp .. checkpoint_id
end

-- everything a CheckpointTuple needs for one member: member, record, blobs, writes
local function bundle(nsp, member)
  local rec = redis.call('HGET', K_CP, member)
  if not rec then return nil end
  local fields = blob_fields(nsp, skeleton(rec))
  local blobs = {}
  if #fields > 0 then blobs = redis.call('HMGET', K_BLOBS, unpack(fields)) end
  for i = 1, #fields do if not blobs[i] then blobs[i] = '' end end
  return {member, rec, blobs, redis.call('HGET', K_W, member) or ''}
end
"""
    + CHECK_FENCE
)

# The head of every write script: ARGV[1], ARGV[2] are the lease id and fence the
# write carries; a write whose fence is stale returns the error and changes nothing.
_FENCED = (
    _PRELUDE
    + r"""
local err = check_fence(K_LEASE, ARGV[1], ARGV[2])
if err then return err end
"""
)

# The head of every script whose ARGV[1], ARGV[2] name a checkpoint (namespace part,
# id or '' for the latest): `nsp` and `member` (nil when the namespace is empty).
_AT_CHECKPOINT = (
    _PRELUDE
    + r"""
local nsp = ARGV[1]
local member = target_member(nsp, ARGV[2])
"""
)

# ARGV: lease_id, fence, default_ttl_ms, member, record, run_member, thread_id,
#       then (blob_field, blob_value) pairs of the channels that have a value
PUT = Script(
    "put",
    _FENCED
    + r"""
local member = ARGV[4]
redis.call('ZADD', K_IDX, 0, member)
redis.call('HSET', K_CP, member, ARGV[5])
if ARGV[6] ~= '' then redis.call('ZADD', K_RUNS, 0, ARGV[6]) end
redis.call('HSETNX', K_META, 'tid', ARGV[7])
for i = 8, #ARGV, 2 do
  redis.call('HSET', K_BLOBS, ARGV[i], ARGV[i + 1])
end
apply_ttl(ARGV[3])
return 1
""",
)

# A checkpoint's writes are one hash value: a concatenation of lp(write record),
# each record starting lp(task_id) lp(idx). Special channels (idx < 0) overwrite,
# regular writes are first-writer-wins per (task_id, idx).
# ARGV: lease_id, fence, default_ttl_ms, thread_id, member,
#       then (task_id, idx, record, special) per write
PUT_WRITES = Script(
    "put_writes",
    _FENCED
    + r"""
local member = ARGV[5]
local current = redis.call('HGET', K_W, member) or ''
local order, records = {}, {}
for _, rec in ipairs(lp_items(current)) do
  local head = lp_items(rec, 2)
  local key = head[1] .. '\0' .. head[2]
  order[#order + 1] = key
  records[key] = rec
end
local written = 0
for i = 6, #ARGV, 4 do
  local key = ARGV[i] .. '\0' .. ARGV[i + 1]
  if records[key] == nil then
    order[#order + 1] = key
    records[key] = ARGV[i + 2]
    written = written + 1
  elseif ARGV[i + 3] == '1' then
    records[key] = ARGV[i + 2]
    written = written + 1
  end
end
if written > 0 then
  local parts = {}
  for j, key in ipairs(order) do parts[j] = lp(records[key]) end
  redis.call('HSET', K_W, member, table.concat(parts))
end
redis.call('HSETNX', K_META, 'tid', ARGV[4])
apply_ttl(ARGV[3])
return written
""",
)

# ARGV: ns_part, checkpoint_id ('' = latest), refresh_ttl_ms ('' = no refresh)
GET = Script(
    "get",
    _AT_CHECKPOINT
    + r"""
if not member then return nil end
local b = bundle(nsp, member)
if b and ARGV[3] ~= '' then apply_ttl(ARGV[3]) end
return b
""",
)

# ARGV: ns_part, before_checkpoint_id ('' = none), limit, refresh_ttl_ms
LIST = Script(
    "list",
    _PRELUDE
    + r"""
local nsp = ARGV[1]
local max
if ARGV[2] == '' then max = '(' .. nsp .. '\255' else max = '(' .. nsp .. ARGV[2] end
local members = redis.call('ZREVRANGEBYLEX', K_IDX, max, '[' .. nsp, 'LIMIT', 0,
  tonumber(ARGV[3]))
local out = {}
for _, m in ipairs(members) do
  local b = bundle(nsp, m)
  if b then out[#out + 1] = b end
end
if #out > 0 and ARGV[4] ~= '' then apply_ttl(ARGV[4]) end
return out
""",
)

# Walk the parent chain of a checkpoint for delta channels.
# ARGV: ns_part, checkpoint_id ('' = latest), max_depth, members_only ('1'/'0'),
#       channels...
# Returns {target_member, {ancestor_member, {write records}, {ch, blob, ...}}...},
# ancestors nearest first; a channel stops at the first ancestor holding a value.
HISTORY = Script(
    "history",
    _AT_CHECKPOINT
    + r"""
if not member then return {} end
local rec = redis.call('HGET', K_CP, member)
if not rec then return {} end
local members_only = ARGV[4] == '1'
local remaining, nrem = {}, 0
for i = 5, #ARGV do
  if not remaining[ARGV[i]] then remaining[ARGV[i]] = true; nrem = nrem + 1 end
end
local out = {member}
local parent = skeleton(rec)[1]
local depth, maxd = 0, tonumber(ARGV[3])
while parent and parent ~= '' and nrem > 0 and depth < maxd do
  local am = nsp .. parent
  local arec = redis.call('HGET', K_CP, am)
  if not arec then break end
  local items = skeleton(arec)
  local ws = {}
  if not members_only then
    local wv = redis.call('HGET', K_W, am)
    if wv then
      for _, w in ipairs(lp_items(wv)) do
        local head = lp_items(w, 3)
        if remaining[head[3]] then ws[#ws + 1] = w end
      end
    end
  end
  local seeds = {}
  for ch, _ in pairs(inline_nones(items)) do
    if remaining[ch] then
      seeds[#seeds + 1] = ch
      seeds[#seeds + 1] = '\0'
      remaining[ch] = nil
      nrem = nrem - 1
    end
  end
  local fields, channels = blob_fields(nsp, items)
  for k = 1, #channels do
    local ch = channels[k]
    if remaining[ch] then
      local b = redis.call('HGET', K_BLOBS, fields[k])
      if b and #b > 0 then
        seeds[#seeds + 1] = ch
        if members_only then seeds[#seeds + 1] = '' else seeds[#seeds + 1] = b end
        remaining[ch] = nil
        nrem = nrem - 1
      end
    end
  end
  out[#out + 1] = {am, ws, seeds}
  parent = items[1]
  depth = depth + 1
end
return out
""",
)

# Delete checkpoint members (with their writes and run-index entries), then drop
# blobs no remaining checkpoint refers to. ARGV: (member, ns_part) pairs.
DELETE_MEMBERS = Script(
    "delete_members",
    _PRELUDE
    + r"""
local deleted = 0
for i = 1, #ARGV, 2 do
  local member = ARGV[i]
  local rec = redis.call('HGET', K_CP, member)
  if rec then
    local run = skeleton(rec)[2]
    if run and run ~= '' then redis.call('ZREM', K_RUNS, lp(run) .. member) end
  end
  deleted = deleted + redis.call('ZREM', K_IDX, member)
  redis.call('HDEL', K_CP, member)
  redis.call('HDEL', K_W, member)
end
-- garbage-collect blobs that no remaining checkpoint refers to
local referenced = {}
local all = redis.call('HGETALL', K_CP)
for i = 1, #all, 2 do
  local nsp = lp(lp_items(all[i], 1)[1])
  local fields = blob_fields(nsp, skeleton(all[i + 1]))
  for _, f in ipairs(fields) do referenced[f] = true end
end
local drop = {}
for _, f in ipairs(redis.call('HKEYS', K_BLOBS)) do
  if not referenced[f] then drop[#drop + 1] = f end
  if #drop >= 500 then redis.call('HDEL', K_BLOBS, unpack(drop)); drop = {} end
end
if #drop > 0 then redis.call('HDEL', K_BLOBS, unpack(drop)) end
if redis.call('ZCARD', K_IDX) == 0 and redis.call('HLEN', K_W) == 0 then
  redis.call('DEL', K_META)
end
return deleted
""",
)
