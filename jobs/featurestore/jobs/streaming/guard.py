"""The out-of-order guard: a Redis function that writes an event unless a newer one is stored.

Each guarded event is one ``FCALL`` (built by :meth:`.plan.StreamingWritePlan.guarded_command`)
whose ``KEYS[1]`` is the entity key, so the function runs on the key's shard of a cluster.
It compares the event time with the stored ``_ts:<view>`` and, atomically with that
comparison, writes the event with ``HSETEX`` (Redis 8 / Valkey 9) or ``HSET`` + ``HEXPIRE``
(Redis 7.4).  Text only: the writer loads it (``FUNCTION LOAD REPLACE``) on every primary.
"""

from __future__ import annotations

__all__ = ["GUARD_FUNCTION", "GUARD_LIBRARY", "GUARD_LUA", "NOT_LOADED"]

GUARD_LIBRARY = "featurestore_streaming_v1"
GUARD_FUNCTION = "fs_stream_write_v1"
# What a node that lacks the library answers to FCALL (after a restart without
# persistence, FUNCTION FLUSH, or a node that joined after the writer connected).
NOT_LOADED = "Function not found"

# The argument layout is part of the function's name (v1): change one, bump both, so
# writers of two releases can run side by side during a rolling deploy.  The ``method``
# argument is one of the write methods of :mod:`.plan` (``HSETEX``, ``HSET_HEXPIRE``).
GUARD_LUA = f"""#!lua name={GUARD_LIBRARY}
-- redis-feature-store: write one streaming event unless a newer one is stored.
-- KEYS[1]  the entity hash fs:<entity>:{{<id>}} (one key: works in a Redis Cluster)
-- ARGV     ts_field, event_ms, method ('hsetex' | 'hset_hexpire'), ngroups,
--          per group: ttl, nfields, field1, value1, ...   then: ndel, field1, ...
-- Returns 1 when written, 0 when the stored _ts:<view> is newer (the event is skipped).
local function stream_write(keys, args)
  local key = keys[1]
  local stored = redis.call('HGET', key, args[1])
  if stored and tonumber(stored) > tonumber(args[2]) then
    return 0
  end
  local hsetex = args[3] == 'hsetex'
  local i = 5
  for _ = 1, tonumber(args[4]) do
    local ttl, n = args[i], tonumber(args[i + 1])
    if hsetex then
      redis.call('HSETEX', key, 'EX', ttl, 'FIELDS', n, unpack(args, i + 2, i + 1 + 2 * n))
    else
      redis.call('HSET', key, unpack(args, i + 2, i + 1 + 2 * n))
      local names = {{}}
      for j = 1, n do
        names[j] = args[i + 2 * j]
      end
      redis.call('HEXPIRE', key, ttl, 'FIELDS', n, unpack(names))
    end
    i = i + 2 + 2 * n
  end
  local ndel = tonumber(args[i])
  if ndel > 0 then
    redis.call('HDEL', key, unpack(args, i + 1, i + ndel))
  end
  return 1
end
redis.register_function('{GUARD_FUNCTION}', stream_write)
"""
