-- bench/matcher-floor.lua -- the floor of the matcher's benchmark (called by
-- bench/run-matcher.sh through redis-benchmark; not the matcher's script).
--
-- The least a new need can cost in Redis if its decisions are recorded
-- there, whatever finds its candidates: ONE script call that writes its
-- record and three indexes (cell, department, EPCI), then for each of
-- `proposals` decisions a pair record, the offer's match index, the need's
-- match index (one ZADD for all), the event in the outbox and, unless
-- `explained` is 0, the explanation (mg:mexp:), plus one fairness entry. No
-- read, no check, no candidate search: what the matcher does in its two calls
-- beyond this is what an in-memory design could save.
--
-- ARGV: id (a random integer), record, pair record, event, explanation,
-- proposals, explained (1 or 0). Keys are under fl: so that they never
-- collide with the matcher's.
local id = ARGV[1]
local n = tonumber(id) or 0
local record, pair, event, found = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local proposals, explained = tonumber(ARGV[6]), ARGV[7] == '1'
redis.call('SET', 'fl:need:' .. id, record)
redis.call('ZADD', 'fl:cell:' .. (n % 2700), n, id)
redis.call('ZADD', 'fl:dep:' .. (n % 5), n, id)
redis.call('ZADD', 'fl:epci:' .. (n % 70), n, id)
local records, matches, outbox = {}, {}, {}
for k = 1, proposals do
  local offer = 'o' .. ((n * 7 + k) % 100000)
  records[#records + 1] = 'fl:pair:' .. id .. '|' .. offer
  records[#records + 1] = pair
  if explained then
    records[#records + 1] = 'fl:mexp:' .. id .. '.' .. k
    records[#records + 1] = found
  end
  matches[#matches + 1] = k
  matches[#matches + 1] = offer
  redis.call('ZADD', 'fl:om:' .. offer, n, id)
  outbox[#outbox + 1] = 'fl.' .. id .. '.' .. k
  outbox[#outbox + 1] = event
end
redis.call('MSET', unpack(records))
redis.call('ZADD', 'fl:nm:' .. id, unpack(matches))
redis.call('HSET', 'fl:outbox', unpack(outbox))
redis.call('ZADD', 'fl:fair:' .. (n % 200), n, id)
return 1
