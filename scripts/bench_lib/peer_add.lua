-- The Lua peer: the job of EVT.ADD done the way a Redis user would do it.
--
--   EVALSHA <sha> 0 <json>
--
-- Decodes the same JSON event with cjson and counts it into per-second keys, each
-- given EXPIRE 61 so that a second leaves Redis one second after it leaves a
-- 60-second window:
--
--   pt:<sec>  string  INCR          events in that second (the total)
--   pu:<sec>  hash    HINCRBY       user_id            -> events
--   py:<sec>  hash    HINCRBY       event_type         -> events
--   pc:<sec>  hash    HINCRBY       <len>:user_id type -> events of that user and type
--   pv:<sec>  hash    HINCRBYFLOAT  <len>:user_id type -> sum of attributes.value
--
-- <sec> is the event's own timestamp (whole seconds). The peer trusts it: unlike the
-- server it does not reject late events or clamp future ones, so it does a little
-- less work than the server does.
local ok, ev = pcall(cjson.decode, ARGV[1])
if not ok or type(ev) ~= 'table' then
  return redis.error_reply('ERR invalid JSON')
end
local user, ty, ts = ev.user_id, ev.event_type, ev.timestamp
if type(user) ~= 'string' or type(ty) ~= 'string' or type(ts) ~= 'number' then
  return redis.error_reply('ERR event needs user_id and event_type strings and a numeric timestamp')
end
local sec = string.format('%d', math.floor(ts))
local pair = #user .. ':' .. user .. ty
local k = 'pt:' .. sec
redis.call('INCR', k)
redis.call('EXPIRE', k, 61)
k = 'pu:' .. sec
redis.call('HINCRBY', k, user, 1)
redis.call('EXPIRE', k, 61)
k = 'py:' .. sec
redis.call('HINCRBY', k, ty, 1)
redis.call('EXPIRE', k, 61)
k = 'pc:' .. sec
redis.call('HINCRBY', k, pair, 1)
redis.call('EXPIRE', k, 61)
local attrs = ev.attributes
if type(attrs) == 'table' and type(attrs.value) == 'number' then
  k = 'pv:' .. sec
  redis.call('HINCRBYFLOAT', k, pair, attrs.value)
  redis.call('EXPIRE', k, 61)
end
return redis.status_reply('OK')
