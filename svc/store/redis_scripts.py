"""The Redis job store's key layout and server-side scripts (`svc.store.redis`).

Keys, under a configurable prefix (default ``trace:``); the part in braces is the Redis
Cluster hash tag, so every key of one job (or one export) sits in one slot and a script
over them runs on one shard, while different jobs spread over the shards::

    {prefix}job:{<job id>}           string: the spec, `svc.store.codec`, TTL
    {prefix}totals:{<job id>}        hash: domain -> JSON [records, containers], the job's TTL
    {prefix}aggregations:{<job id>}  hash: domain -> aggregations (JSON), the job's TTL
    {prefix}owner:{<owner>}          sorted set: the owner's live job ids scored by expiry
                                     (ms); only written with a quota; expires with its last job
    {prefix}export:{<export id>}     hash: v (version), d (the record), state, owner, expires
    {prefix}{exports}:active         set: ids of exports queued or running
    {prefix}{exports}:expiry         sorted set: export id -> its expiry (the purge deletes
                                     the file first, then these keys: no TTL, or a file would
                                     outlive the only record of its name)
    {prefix}{exports}:owner:<owner>  sorted set: the owner's exports queued or running, scored
                                     by expiry
    {prefix}rate:{<client>}          hash: the client's creation-rate bucket
    {prefix}streams:{<client>}       sorted set: the client's running streams, leased

Every script touches only the keys it is given (KEYS), all in one slot: the cluster rule.
"""

from __future__ import annotations


def job_key(prefix: str, job_id: str) -> str:
    return f"{prefix}job:{{{job_id}}}"


def totals_key(prefix: str, job_id: str) -> str:
    return f"{prefix}totals:{{{job_id}}}"


def aggregations_key(prefix: str, job_id: str) -> str:
    return f"{prefix}aggregations:{{{job_id}}}"


def owner_jobs_key(prefix: str, owner: str | None) -> str:
    return f"{prefix}owner:{{{owner or '-'}}}"


def export_key(prefix: str, export_id: str) -> str:
    return f"{prefix}export:{{{export_id}}}"


def exports_active_key(prefix: str) -> str:
    return f"{prefix}{{exports}}:active"


def exports_expiry_key(prefix: str) -> str:
    return f"{prefix}{{exports}}:expiry"


def owner_exports_key(prefix: str, owner: str | None) -> str:
    return f"{prefix}{{exports}}:owner:{owner or '-'}"


# Copy the job key's remaining TTL onto a statistics hash (totals, aggregations); do
# nothing for a missing job.
PUT_STATISTIC = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""

# Extend a job's three keys to ARGV[1] ms. Returns the spec when ARGV[2] is '1' (else 1)
# if the job exists, nil when it is gone.
TOUCH_JOB = """
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return nil end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
if ARGV[2] == '1' then return redis.call('GET', KEYS[1]) end
return 1
"""

# Reserve a place in an owner's live jobs (KEYS[1], scored by expiry in ms) unless it
# already holds ARGV[4] of them. ARGV: now ms, expiry ms, job id, limit. {1, 0} when
# reserved, {0, ms until the oldest expires} over quota.
RESERVE_JOB = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) - tonumber(ARGV[1])}
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2])))
return {1, 0}
"""

# Move a job's expiry in its owner's set (refresh on access): only if it is there, and only
# later (ARGV: expiry ms, job id).
TOUCH_OWNER = """
if redis.call('ZADD', KEYS[1], 'XX', 'GT', 'CH', ARGV[1], ARGV[2]) == 1 then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2])))
end
return 1
"""

# Index a new export unless its owner has ARGV[1] (0: no quota) queued or running.
# KEYS: the owner's exports, active, expiry. ARGV: limit, now, expires, id, then ids the
# caller found finished or gone (dropped first). 1 when indexed, 0 over quota.
INDEX_EXPORT = """
for i = 5, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local limit = tonumber(ARGV[1])
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2]) * 1000) + 1000)
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""

# Replace an export's record (KEYS[1]) if its version is still ARGV[1]: 1 when written.
SAVE_EXPORT = """
local v = redis.call('HGET', KEYS[1], 'v')
if not v or tonumber(v) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3], 'state', ARGV[4])
return 1
"""

# A token bucket (KEYS[1], a hash: t tokens, at ms) on Redis's own clock, so replicas with
# skewed clocks agree. ARGV: tokens a ms, burst. Returns 0 when a token was taken, else
# the ms until one is due. The key expires once the bucket would be full again.
TAKE_TOKEN = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return wait
"""

# Hold a slot among a client's concurrent streams (KEYS[1]: a sorted set, slot id -> lease
# end in ms on Redis's clock; a slot whose holder died drops out when its lease ends).
# ARGV: limit, lease ms, slot id; ARGV[1] 0 renews without a limit. 1 held, 0 all taken.
HOLD_SLOT = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[1])
if limit > 0 and redis.call('ZSCORE', KEYS[1], ARGV[3]) == false
   and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# A write and a delete on a key of its own (readiness: what job creation needs).
PROBE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', 5000)
return redis.call('DEL', KEYS[1])
"""
