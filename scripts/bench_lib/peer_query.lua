-- The Lua peer's queries: sum the per-second buckets peer_add.lua writes.
--
--   EVALSHA <sha> 0 total <now> [<seconds>]                  -> integer
--   EVALSHA <sha> 0 user  <now> <user_id> [<seconds>]        -> integer
--   EVALSHA <sha> 0 type  <now> <event_type> [<seconds>]     -> integer
--   EVALSHA <sha> 0 sum   <now> <user_id> <type> [<seconds>] -> bulk string (float)
--
-- <now> is passed in (the benchmark drives a manual clock); the window is the
-- <seconds> (default 60) seconds ending at <now>, one bucket read per second.
local kind, now = ARGV[1], tonumber(ARGV[2])
if now == nil then
  return redis.error_reply('ERR now must be a number')
end
local function span(i)
  local s = tonumber(ARGV[i] or '60')
  if s == nil or s < 1 or s > 60 then
    return nil
  end
  return s
end
local function each_second(seconds, f)
  for sec = now - seconds + 1, now do
    f(string.format('%d', sec))
  end
end
if kind == 'total' then
  local seconds = span(3)
  if not seconds then return redis.error_reply('ERR bad window') end
  local n = 0
  each_second(seconds, function(sec) n = n + (tonumber(redis.call('GET', 'pt:' .. sec)) or 0) end)
  return n
elseif kind == 'user' or kind == 'type' then
  local id = ARGV[3]
  local seconds = span(4)
  if id == nil or not seconds then return redis.error_reply('ERR usage') end
  local prefix = kind == 'user' and 'pu:' or 'py:'
  local n = 0
  each_second(seconds, function(sec) n = n + (tonumber(redis.call('HGET', prefix .. sec, id)) or 0) end)
  return n
elseif kind == 'sum' then
  local user, ty = ARGV[3], ARGV[4]
  local seconds = span(5)
  if user == nil or ty == nil or not seconds then return redis.error_reply('ERR usage') end
  local pair = #user .. ':' .. user .. ty
  local s = 0
  each_second(seconds, function(sec) s = s + (tonumber(redis.call('HGET', 'pv:' .. sec, pair)) or 0) end)
  return tostring(s)
end
return redis.error_reply('ERR unknown query ' .. tostring(kind))
