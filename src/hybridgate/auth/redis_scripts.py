"""The Lua scripts behind ``RedisLimiter``: each runs atomically inside Redis, so replicas that
check the same key at the same moment are serialised there and a key limited to N requests per
minute gets exactly N admissions in any 60 s, however many replicas ask.

A key's request window is a sorted set of admissions scored by Unix time (members are unique
ids); its token window is a sorted set of ``"<tokens>:<id>"`` members scored the same way, plus
a counter of their sum (updated as entries come and go, so a check never scans the set). Both
drop entries at or before ``now - 60`` before counting, as ``windows.SlidingWindow`` does. The
caller passes ``now`` (its clock), so replicas need NTP-synced clocks; a skew of milliseconds
moves a 60 s window by as much. Numbers that are not integers come back as strings (Redis would
truncate Lua floats). ``CHARGE`` adds a request's tokens and spend at most once per charge id
(so a charge sent twice, by a retry or a write-back after a timeout, counts once) and trims the
token set as it goes.
"""

from __future__ import annotations

# KEYS: requests zset, tokens zset, tokens total.  ARGV[1]: now.
_HELPERS = """
local now = tonumber(ARGV[1])
local function fmt(x) return string.format('%.6f', x) end
local function amount(member) return tonumber(string.match(member, '^%d+')) end

local function requests(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 60)
  local total = redis.call('ZCARD', key)
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local reset = 0
  if #newest > 0 then reset = math.max(0, tonumber(newest[2]) + 60 - now) end
  return total, reset
end

local function requests_wait(key, total, limit)
  local at = redis.call('ZRANGE', key, total - limit, total - limit, 'WITHSCORES')
  return math.max(0, tonumber(at[2]) + 60 - now)
end

-- The token total is kept in its own key beside the set, so counting is O(1): what expires
-- is subtracted once, as it leaves; an empty set resets the total (self-healing).
local function tokens(key, total_key)
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', now - 60)
  if #expired > 0 then
    local gone = 0
    for i = 1, #expired do gone = gone + amount(expired[i]) end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 60)
    redis.call('DECRBY', total_key, gone)
  end
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #newest == 0 then
    redis.call('DEL', total_key)
    return 0, 0
  end
  return tonumber(redis.call('GET', total_key) or '0'), math.max(0, tonumber(newest[2]) + 60 - now)
end

-- Reservations of requests still running: members "<dollars>:<id>" scored by when they lapse
-- (a gateway that died before settling leaks nothing past that), beside the sum of their dollars.
local function reserved(key, total_key)
  local lapsed = redis.call('ZRANGEBYSCORE', key, '-inf', now)
  if #lapsed > 0 then
    local gone = 0
    for i = 1, #lapsed do gone = gone + tonumber(string.match(lapsed[i], '^[^:]+')) end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    redis.call('INCRBYFLOAT', total_key, -gone)
  end
  if redis.call('ZCARD', key) == 0 then
    redis.call('DEL', total_key)
    return 0
  end
  return math.max(0, tonumber(redis.call('GET', total_key) or '0'))
end

-- Only on a refusal: walk from the oldest entry, 128 at a time, until enough has left.
local function tokens_wait(key, total, limit)
  local excess, start = total - limit + 1, 0
  while true do
    local entries = redis.call('ZRANGE', key, start, start + 127, 'WITHSCORES')
    if #entries == 0 then return 0 end
    for i = 1, #entries, 2 do
      excess = excess - amount(entries[i])
      if excess <= 0 then return math.max(0, tonumber(entries[i + 1]) + 60 - now) end
    end
    start = start + 128
  end
end

"""

# KEYS: as _HELPERS.  ARGV[1]: now, ARGV[2]: rpm or '', ARGV[3]: tpm or ''.
_WINDOWS = (
    _HELPERS
    + """
local function limit(i)
  if ARGV[i] == '' then return nil end
  return tonumber(ARGV[i])
end
local rpm, tpm = limit(2), limit(3)
local req_total, req_reset, tok_total, tok_reset = 0, 0, 0, 0
if rpm then req_total, req_reset = requests(KEYS[1]) end
if tpm then tok_total, tok_reset = tokens(KEYS[2], KEYS[3]) end
"""
)

HEADERS = (
    _WINDOWS
    + """
return {req_total, fmt(req_reset), tok_total, fmt(tok_reset)}
"""
)

# The budget verdict shared by CHECK and RESERVE. KEYS[4], KEYS[5]: spend this day and month;
# KEYS[6], KEYS[7]: the key's reservations and their sum. ARGV[4], ARGV[5]: day and month budgets
# or ''. What counts against a budget is the spend plus what running requests reserved.
_BUDGETS = (
    _WINDOWS
    + """
local day_budget, month_budget = limit(4), limit(5)
local day = tonumber(redis.call('GET', KEYS[4]) or '0')
local month = tonumber(redis.call('GET', KEYS[5]) or '0')
local held = reserved(KEYS[6], KEYS[7])
local function answer(verdict, detail)
  return {verdict, detail, req_total, fmt(req_reset), tok_total, fmt(tok_reset),
          fmt(day), fmt(month), fmt(held)}
end
local function refusal()
  if month_budget and month + held >= month_budget then return answer('budget_month', '') end
  if day_budget and day + held >= day_budget then return answer('budget_day', '') end
  if tpm and tok_total >= tpm then return answer('tokens', fmt(tokens_wait(KEYS[2], tok_total, tpm))) end
  return nil
end
"""
)

CHECK = (
    _BUDGETS
    + """
-- ARGV[6]: a unique id for this admission.
-- Returns {verdict, detail, requests, requests reset, tokens, tokens reset, spent day, spent month,
-- reserved}: verdict 'ok' or the limit that refused; detail is the seconds to wait for a window.
local refused = refusal()
if refused then return refused end
if rpm and req_total >= rpm then return answer('requests', fmt(requests_wait(KEYS[1], req_total, rpm))) end
if rpm then
  redis.call('ZADD', KEYS[1], now, ARGV[6])
  redis.call('PEXPIRE', KEYS[1], 61000)
end
return answer('ok', '')
"""
)

# Hold a request's worst case (rpm is '' here: the request was counted by CHECK). ARGV[6]: the
# reservation id; ARGV[7]: tokens; ARGV[8]: the dollars member "<dollars>:<id>"; ARGV[9]: when
# the reservation lapses (Unix s); ARGV[10]: its keys' expiry (s). Returns as CHECK.
RESERVE = (
    _BUDGETS
    + """
local refused = refusal()
if refused then return refused end
local count = tonumber(ARGV[7])
if count > 0 then
  if not tpm then tokens(KEYS[2], KEYS[3]) end
  redis.call('ZADD', KEYS[2], now, ARGV[7] .. ':' .. ARGV[6])
  redis.call('INCRBY', KEYS[3], count)
  redis.call('PEXPIRE', KEYS[2], 61000)
  redis.call('PEXPIRE', KEYS[3], 61000)
end
local usd = tonumber(string.match(ARGV[8], '^[^:]+'))
if usd > 0 then
  redis.call('ZADD', KEYS[6], ARGV[9], ARGV[8])
  redis.call('INCRBYFLOAT', KEYS[7], usd)
  redis.call('EXPIRE', KEYS[6], ARGV[10])
  redis.call('EXPIRE', KEYS[7], ARGV[10])
end
return answer('ok', '')
"""
)

# Raise each spend key to at least a value: KEYS[i] gets ARGV[2i-1] dollars (expiring in
# ARGV[2i] seconds) unless it already holds more. Idempotent, so every replica may run it with
# what it knows after Redis lost its data, and the largest total wins.
RAISE = """
for i, key in ipairs(KEYS) do
  local wanted = tonumber(ARGV[2 * i - 1])
  if wanted > tonumber(redis.call('GET', key) or '0') then
    redis.call('SET', key, ARGV[2 * i - 1], 'EX', ARGV[2 * i])
  end
end
return 1
"""

# CHARGE's and SETTLE's shared steps (their KEYS and ARGV layout): ``count`` tokens enter the
# minute's window as member "<count>:<charge id>", and ARGV[3] dollars go to the day and month.
_CHARGING = """
local function add_tokens(count)
  tokens(KEYS[2], KEYS[3])
  redis.call('ZADD', KEYS[2], now, ARGV[2] .. ':' .. ARGV[7])
  redis.call('INCRBY', KEYS[3], count)
  redis.call('PEXPIRE', KEYS[2], 61000)
  redis.call('PEXPIRE', KEYS[3], 61000)
end

local function add_spend()
  if tonumber(ARGV[3]) > 0 then
    redis.call('INCRBYFLOAT', KEYS[4], ARGV[3])
    redis.call('EXPIRE', KEYS[4], ARGV[4])
    redis.call('INCRBYFLOAT', KEYS[5], ARGV[3])
    redis.call('EXPIRE', KEYS[5], ARGV[5])
  end
end
"""

# One charge, applied at most once. KEYS[1..3]: as _HELPERS; KEYS[4], KEYS[5]: spend this day and
# month; KEYS[6]: the charge's marker. ARGV[1]: now, ARGV[2]: tokens, ARGV[3]: dollars; ARGV[4],
# ARGV[5]: the spend keys' expiry (s); ARGV[6]: the marker's expiry (s); ARGV[7]: the charge id.
# If the marker exists, this charge was applied already (a retry, or a write-back of a charge whose
# answer timed out): nothing changes and it returns 0. The token set is trimmed here too, so it
# holds only the last minute's tokens even for keys without a tpm, whose checks never read it.
CHARGE = (
    _HELPERS
    + _CHARGING
    + """
if not redis.call('SET', KEYS[6], '1', 'NX', 'EX', ARGV[6]) then return 0 end
local count = tonumber(ARGV[2])
if count > 0 then add_tokens(count) end
add_spend()
return 1
"""
)

# Settle a reservation, at most once per id: CHARGE's keys and arguments, then KEYS[7], KEYS[8]:
# the reservations and their sum; ARGV[8]: the reserved tokens member "<tokens>:<id>" or '';
# ARGV[9]: the reserved dollars member or ''. The reservation is released, the token entry takes
# the real count (keeping its time in the window), and the real cost is added to the spend.
SETTLE = (
    _HELPERS
    + _CHARGING
    + """
if not redis.call('SET', KEYS[6], '1', 'NX', 'EX', ARGV[6]) then return 0 end
if ARGV[9] ~= '' and redis.call('ZREM', KEYS[7], ARGV[9]) == 1 then
  redis.call('INCRBYFLOAT', KEYS[8], -tonumber(string.match(ARGV[9], '^[^:]+')))
end
local count = tonumber(ARGV[2])
if ARGV[8] ~= '' then
  local at = redis.call('ZSCORE', KEYS[2], ARGV[8])
  if at then
    redis.call('ZREM', KEYS[2], ARGV[8])
    redis.call('ZADD', KEYS[2], at, ARGV[2] .. ':' .. ARGV[7])
    redis.call('INCRBY', KEYS[3], count - amount(ARGV[8]))
  end
elseif count > 0 then
  add_tokens(count)
end
add_spend()
return 1
"""
)
