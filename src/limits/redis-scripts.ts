import { createHash } from 'node:crypto';

/**
 * The Lua scripts behind limits and holds shared through Redis (decision 0019). Each runs atomically
 * on the Redis server, so one script call is one round trip and no other replica sees half of it.
 *
 * Per organisation O, every key carries the hash tag `{O}` (one cluster slot for all of them):
 * - `a:<account>`: what the account can still promise, µ₩, an integer string (INCRBY/DECRBY);
 * - `holds`: live holds, a sorted set scored by lease expiry (ms, Redis's clock);
 * - `hold`: each live hold's amounts, `account=amount;account=amount`;
 * - `ver`: per account, a counter bumped by changes a counter could not absorb (a deposit, a charge
 *   meeting a missing counter), so that a replica initialising a counter from a stale ledger read notices;
 * - `iv`: per account, the `ver` at which its counter was initialised (a deposit racing an initialisation);
 * - `rl:<bucket>`: a rate-limit bucket (level, at, cap), expiring when a minute idle (it is full by then).
 *
 * Lua numbers are doubles: amounts are exact up to 2^53 µ₩ (≈ 9 billion KRW) and are written back with
 * `%.0f`, never `tostring` (which keeps 14 digits). The TypeScript side refuses larger amounts.
 */

const COMMON = `
local function int(x) return string.format('%.0f', x) end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- gives one hold back to its accounts, whatever they are
local function giveBack(holds, hold, prefix, id)
  local rec = redis.call('HGET', hold, id)
  if rec then
    for account, amount in string.gmatch(rec, '([^=;]+)=(-?%d+)') do
      local key = prefix .. account
      if redis.call('EXISTS', key) == 1 then redis.call('INCRBY', key, amount) end
    end
    redis.call('HDEL', hold, id)
  end
  redis.call('ZREM', holds, id)
end
-- gives expired holds back to their accounts: their replica died, or the call outlived its lease
local function reap(holds, hold, prefix, now)
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'LIMIT', 0, 200)
  for _, id in ipairs(expired) do giveBack(holds, hold, prefix, id) end
end
`;

/**
 * Admission: rate-limit buckets and the budget hold, checked all before anything is taken.
 * KEYS: holds, hold, ver, iv, then the accounts' counters (wallet first, then the vouchers that cover
 * the call, soonest to expire first), then the buckets.
 * ARGV: hold id ('' = no hold), lease ms, idle ttl ms, counter key prefix, prepaid (1/0), worst case,
 * number of accounts, number of buckets, calls, part; per account: id, ledger balance, ver when read,
 * share of the worst case, self-pay (1/0); per bucket: capacity, amount.
 * `calls` > 1 asks for an allowance (decision 0027): up to that many calls' worth at once, each account
 * and bucket giving at most 1/`part` of what it has left; when fewer than two calls' worth fit, the
 * call is admitted alone, exactly as with `calls` = 1. The refusals are those of the call alone.
 * Returns {'ok', chosen account index (0: none), voucher held, wallet held, calls taken, bucket
 * levels...}, {'rate', bucket index, bucket levels...}, {'voucher', index, available, share},
 * {'wallet', voucher index, available, wallet part} or {'stale', account index}.
 */
const ADMIT = `${COMMON}
local holdId, lease, ttl, prefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local prepaid, worst = ARGV[5] == '1', tonumber(ARGV[6])
local na, nb = tonumber(ARGV[7]), tonumber(ARGV[8])
local calls, part = tonumber(ARGV[9]), tonumber(ARGV[10])
local a0, b0 = 11, 11 + na * 5
local now = clock()
local levels, caps, amounts = {}, {}, {}
local refused = 0
-- how many calls' worth fit in 1/part of what is left
local function fit(available, need)
  if need <= 0 then return calls end
  return math.floor(available / part / need)
end
local m = calls
for i = 1, nb do
  local cap, amount = tonumber(ARGV[b0 + (i - 1) * 2]), tonumber(ARGV[b0 + (i - 1) * 2 + 1])
  local b = redis.call('HMGET', KEYS[4 + na + i], 'level', 'at', 'cap')
  local level, at, old = tonumber(b[1]), tonumber(b[2]), tonumber(b[3])
  if level == nil then level, at, old = cap, now, cap end
  -- a changed limit keeps what was used, against the new allowance
  if old ~= cap then level = level + cap - old end
  if now > at then level = math.min(cap, level + (now - at) * cap / 60000) end
  levels[i], caps[i], amounts[i] = level, cap, amount
  if refused == 0 and level < amount then refused = i end
  if m > 1 then m = math.min(m, fit(level, amount)) end
end
if refused > 0 then
  local out = {'rate', refused}
  for i = 1, nb do out[#out + 1] = tostring(levels[i]) end
  return out
end
local chosen, vh, wh = 0, 0, 0
if holdId ~= '' then
  reap(KEYS[1], KEYS[2], prefix, now)
  local avail = {}
  for i = 1, na do
    local key = KEYS[4 + i]
    local v = redis.call('GET', key)
    if v == false then
      -- first use, or idle long enough to expire: the ledger's balance less what live holds took,
      -- unless a change came between the replica's read and now
      local base = a0 + (i - 1) * 5
      local id = ARGV[base]
      local ver = redis.call('HGET', KEYS[3], id) or '0'
      if ver ~= ARGV[base + 2] then return {'stale', i} end
      local value = tonumber(ARGV[base + 1])
      for _, rec in ipairs(redis.call('HVALS', KEYS[2])) do
        for account, amount in string.gmatch(rec, '([^=;]+)=(-?%d+)') do
          if account == id then value = value - tonumber(amount) end
        end
      end
      redis.call('SET', key, int(value), 'PX', ttl)
      redis.call('HSET', KEYS[4], id, ver)
      avail[i] = value
    else
      avail[i] = tonumber(v)
    end
  end
  for i = 2, na do
    if avail[i] > 0 then chosen = i break end
  end
  local share = 0
  if chosen > 0 then share = tonumber(ARGV[a0 + (chosen - 1) * 5 + 3]) end
  -- an allowance only where every call of it is paid in full as the call alone would be
  if m > 1 then
    if chosen > 0 then m = math.min(m, fit(avail[chosen], share)) end
    if prepaid then m = math.min(m, fit(avail[1], worst - share)) end
  end
  if m < 2 then m = 1 end
  if chosen > 0 then
    local base = a0 + (chosen - 1) * 5
    if share <= avail[chosen] then vh = share * m
    elseif ARGV[base + 4] == '1' or not prepaid then vh = avail[chosen]
    else return {'voucher', chosen, int(avail[chosen]), int(share)} end
  end
  wh = worst * m - vh
  if prepaid and wh > avail[1] then return {'wallet', chosen, int(avail[1]), int(wh)} end
  local rec = ARGV[a0] .. '=' .. int(wh)
  redis.call('DECRBY', KEYS[5], int(wh))
  if chosen > 0 then
    redis.call('DECRBY', KEYS[4 + chosen], int(vh))
    rec = rec .. ';' .. ARGV[a0 + (chosen - 1) * 5] .. '=' .. int(vh)
  end
  redis.call('HSET', KEYS[2], holdId, rec)
  redis.call('ZADD', KEYS[1], now + lease, holdId)
  -- versions never expire: a version that went back to 0 could match an old read again
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  for i = 5, 4 + na do redis.call('PEXPIRE', KEYS[i], ttl) end
elseif m < 2 then
  m = 1
end
local out = {'ok', chosen, int(vh), int(wh), m}
for i = 1, nb do
  local key = KEYS[4 + na + i]
  levels[i] = levels[i] - amounts[i] * m
  redis.call('HSET', key, 'level', tostring(levels[i]), 'at', now, 'cap', caps[i])
  redis.call('PEXPIRE', key, 120000)
  out[#out + 1] = tostring(levels[i])
end
return out
`;

/**
 * The call ended: charge its real cost, as the ledger will split it, and give back the rest of the hold;
 * a hold already reaped (lease expired) gave everything back, so the cost is taken. Cost 0: a release.
 * A settle sent again after a timeout (it may have run) is sent before its hold's lease ends, so a hold
 * that is gone then was settled by it: it answers 'dup' and changes nothing.
 * KEYS: holds, hold, ver, voucher counter, wallet counter, then the token buckets.
 * ARGV: hold id, voucher id ('' = none), wallet id ('' = no money: rate limits only), the voucher's share of the cost, cost, idle ttl ms,
 * tokens to give back to the buckets, '1' when sent again.
 */
const SETTLE = `
local holdId, voucherId, walletId = ARGV[1], ARGV[2], ARGV[3]
local share, cost, ttl, tokens = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local heldV, heldW = 0, 0
if holdId ~= '' then
  local rec = redis.call('HGET', KEYS[2], holdId)
  if not rec and ARGV[8] == '1' then return 'dup' end
  if rec then
    for account, amount in string.gmatch(rec, '([^=;]+)=(-?%d+)') do
      if account == voucherId then heldV = tonumber(amount) elseif account == walletId then heldW = tonumber(amount) end
    end
    redis.call('HDEL', KEYS[2], holdId)
    redis.call('ZREM', KEYS[1], holdId)
  end
end
local function int(x) return string.format('%.0f', x) end
-- the voucher pays its share as far as it goes (this call's hold included), the wallet the rest
local fromVoucher = 0
if voucherId ~= '' and share > 0 then
  local v = redis.call('GET', KEYS[4])
  if v then fromVoucher = math.min(share, math.max(0, tonumber(v) + heldV)) else fromVoucher = share end
end
local function adjust(key, id, held, charged)
  if redis.call('EXISTS', key) == 1 then
    if held ~= charged then redis.call('INCRBY', key, int(held - charged)) end
    redis.call('PEXPIRE', key, ttl)
  elseif charged > 0 then
    -- a charge no counter absorbed: a replica initialising this account from an older read must read again
    redis.call('HINCRBY', KEYS[3], id, 1)
  end
end
if walletId ~= '' then
  if voucherId ~= '' then adjust(KEYS[4], voucherId, heldV, fromVoucher) end
  adjust(KEYS[5], walletId, heldW, cost - fromVoucher)
end
if tokens ~= 0 then
  for i = 6, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HINCRBYFLOAT', KEYS[i], 'level', tokens) end
  end
end
return int(fromVoucher)
`;

/**
 * An allowance (decision 0027) gives back what its calls did not use and turns what they used into
 * charges: the hold shrinks by both, the accounts' counters grow by what comes back. The hold record is
 * the truth: nothing comes back beyond what it still holds (a fallback's extension that never reached
 * Redis), and the last give-back returns whatever it still holds less what was used. A hold already
 * reaped (its lease ended) gave everything back, so what was used is taken from the counters now, as a
 * charge no hold covered; so is what the calls used beyond the hold (`excess`): the voucher its share as
 * far as its counter goes, the wallet the rest. A charge meeting no counter bumps the account's version,
 * as SETTLE does. Each give-back carries the allowance's sequence number, so one sent again after a
 * timeout (it may have run) is applied once.
 * KEYS: holds, hold, ver, voucher counter, wallet counter, sequence key, then the buckets.
 * ARGV: sequence, hold id ('' = buckets only), voucher id ('' = none), wallet id, voucher back, wallet
 * back, voucher used, wallet used, excess share, excess cost, idle ttl ms, last (1/0: remove the hold);
 * per bucket: units back, capacity.
 * Returns 'ok', 'gone' when the hold had been reaped, or 'dup' when this sequence was applied before.
 */
const GIVE_BACK = `
local seq = tonumber(ARGV[1])
local holdId, voucherId, walletId = ARGV[2], ARGV[3], ARGV[4]
local backV, backW = tonumber(ARGV[5]), tonumber(ARGV[6])
local usedV, usedW = tonumber(ARGV[7]), tonumber(ARGV[8])
local exShare, exCost, ttl, last = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[12] == '1'
if seq <= tonumber(redis.call('GET', KEYS[6]) or '0') then return 'dup' end
redis.call('SET', KEYS[6], seq, 'PX', ttl)
local function int(x) return string.format('%.0f', x) end
-- a counter grows by what comes back; a charge meeting no counter makes older reads stale
local function move(key, id, amount)
  if amount == 0 then return end
  if redis.call('EXISTS', key) == 1 then
    redis.call('INCRBY', key, int(amount))
    redis.call('PEXPIRE', key, ttl)
  elseif amount < 0 then
    redis.call('HINCRBY', KEYS[3], id, 1)
  end
end
local function charged(key, id, amount)
  if amount > 0 and redis.call('EXISTS', key) == 0 then redis.call('HINCRBY', KEYS[3], id, 1) end
end
local out = 'ok'
if holdId ~= '' then
  local rec = redis.call('HGET', KEYS[2], holdId)
  if rec then
    local heldV, heldW = 0, 0
    for account, amount in string.gmatch(rec, '([^=;]+)=(-?%d+)') do
      if account == voucherId then heldV = tonumber(amount) elseif account == walletId then heldW = tonumber(amount) end
    end
    -- used beyond what the record holds is a charge no hold covered
    local uV, uW = math.min(usedV, math.max(0, heldV)), math.min(usedW, math.max(0, heldW))
    exShare, exCost = exShare + usedV - uV, exCost + usedV - uV + usedW - uW
    heldV, heldW = heldV - uV, heldW - uW
    if last then backV, backW = math.max(0, heldV), math.max(0, heldW)
    else backV, backW = math.min(backV, math.max(0, heldV)), math.min(backW, math.max(0, heldW)) end
    heldV, heldW = heldV - backV, heldW - backW
    if voucherId ~= '' then
      move(KEYS[4], voucherId, backV)
      charged(KEYS[4], voucherId, uV)
    end
    move(KEYS[5], walletId, backW)
    charged(KEYS[5], walletId, uW)
    if last then
      redis.call('HDEL', KEYS[2], holdId)
      redis.call('ZREM', KEYS[1], holdId)
    else
      local r = walletId .. '=' .. int(heldW)
      if voucherId ~= '' then r = r .. ';' .. voucherId .. '=' .. int(heldV) end
      redis.call('HSET', KEYS[2], holdId, r)
    end
  else
    out = 'gone'
    exShare, exCost = exShare + usedV, exCost + usedV + usedW
  end
  if exCost > 0 then
    local fromVoucher = 0
    if voucherId ~= '' and exShare > 0 then
      local v = redis.call('GET', KEYS[4])
      if v then fromVoucher = math.min(exShare, math.max(0, tonumber(v))) else fromVoucher = exShare end
      move(KEYS[4], voucherId, -fromVoucher)
    end
    move(KEYS[5], walletId, fromVoucher - exCost)
  end
end
for i = 7, #KEYS do
  local back, cap = tonumber(ARGV[13 + (i - 7) * 2]), tonumber(ARGV[14 + (i - 7) * 2])
  if back ~= 0 then
    local level = tonumber(redis.call('HGET', KEYS[i], 'level'))
    if level then redis.call('HSET', KEYS[i], 'level', tostring(math.min(cap, level + back))) end
  end
end
return out
`;

/**
 * A fallback product costs more: hold the difference too (prepaid: only if the accounts cover it).
 * KEYS: holds, hold, voucher counter, wallet counter. ARGV: hold id, voucher id ('' = none), more on
 * the voucher, wallet id, more on the wallet, prepaid (1/0).
 * Returns 'ok', 'voucher', 'wallet' or 'gone' (the hold's lease expired).
 */
const EXTEND = `
local holdId, voucherId, moreV, walletId, moreW = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local prepaid = ARGV[6] == '1'
local rec = redis.call('HGET', KEYS[2], holdId)
if not rec then return 'gone' end
local av, aw = tonumber(redis.call('GET', KEYS[3]) or ''), tonumber(redis.call('GET', KEYS[4]) or '')
if prepaid and voucherId ~= '' and moreV > 0 and (av == nil or moreV > av) then return 'voucher' end
if prepaid and moreW > 0 and (aw == nil or moreW > aw) then return 'wallet' end
local function int(x) return string.format('%.0f', x) end
local heldV, heldW = 0, 0
for account, amount in string.gmatch(rec, '([^=;]+)=(-?%d+)') do
  if account == voucherId then heldV = tonumber(amount) elseif account == walletId then heldW = tonumber(amount) end
end
if moreW > 0 and aw ~= nil then redis.call('DECRBY', KEYS[4], int(moreW)) end
if moreV > 0 and av ~= nil then redis.call('DECRBY', KEYS[3], int(moreV)) end
rec = walletId .. '=' .. int(heldW + moreW)
if voucherId ~= '' then rec = rec .. ';' .. voucherId .. '=' .. int(heldV + moreV) end
redis.call('HSET', KEYS[2], holdId, rec)
return 'ok'
`;

/**
 * An admission this replica gave up waiting for (the command timed out): if the script ran after all,
 * its hold is given back now rather than when its lease ends, and — when the call was refused — what it
 * took from the rate-limit buckets too. Sent on the same connection after the admission, so Redis runs
 * it after; an admission that never ran, or refused, placed no hold and took nothing.
 * KEYS: holds, hold, then the buckets. ARGV: hold id, counter key prefix, refused (1/0), then per bucket
 * the amount it took.
 */
const ABANDON = `${COMMON}
local ran = redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1
giveBack(KEYS[1], KEYS[2], ARGV[2], ARGV[1])
if ran and ARGV[3] == '1' then
  for i = 3, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('HINCRBYFLOAT', KEYS[i], 'level', ARGV[i + 1]) end
  end
end
return 'ok'
`;

/** What an organisation has held now, µ₩, after reaping. KEYS: holds, hold. ARGV: counter key prefix. */
const HELD = `${COMMON}
reap(KEYS[1], KEYS[2], ARGV[1], clock())
local total = 0
for _, rec in ipairs(redis.call('HVALS', KEYS[2])) do
  for _, amount in string.gmatch(rec, '([^=;]+)=(-?%d+)') do total = total + tonumber(amount) end
end
return int(total)
`;

/**
 * A deposit, before its transaction commits: bump the account's version, so that a replica that read
 * the ledger before the deposit and has not initialised the counter yet reads again. KEYS: ver.
 * ARGV: account id. Returns the new version.
 */
const FUNDS_PREPARE = `return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)`;

/**
 * The deposit committed: add it to the counter if the counter was initialised before the deposit began
 * (its ledger read cannot include it); a counter initialised since may or may not include it, so it is
 * dropped and initialised again from the ledger. KEYS: ver, iv, counter. ARGV: account id, amount,
 * the version FUNDS_PREPARE returned.
 */
const FUNDS_COMMIT = `
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if redis.call('EXISTS', KEYS[3]) == 0 then return 'absent' end
local iv = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if iv < tonumber(ARGV[3]) then
  redis.call('INCRBY', KEYS[3], ARGV[2])
  return 'added'
end
redis.call('DEL', KEYS[3])
return 'dropped'
`;

export interface Script {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

export const SCRIPTS = {
  admit: script(ADMIT),
  settle: script(SETTLE),
  extend: script(EXTEND),
  giveBack: script(GIVE_BACK),
  abandon: script(ABANDON),
  held: script(HELD),
  fundsPrepare: script(FUNDS_PREPARE),
  fundsCommit: script(FUNDS_COMMIT),
} as const;
