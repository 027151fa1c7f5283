/* state.c -- the matcher's Lua script and the way it is called.
 *
 * The script is loaded with SCRIPT LOAD at each (re)connection and run with
 * EVALSHA; a NOSCRIPT answer (Redis restarted, or SCRIPT FLUSH) makes the
 * same call go again as EVAL, which also loads it. Arguments are kept until
 * the reply for that second chance. The Lua source is the model: every key
 * it touches is in docs/redis-keys.md, section "Matcher". */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/log.h"
#include "maillage/mem.h"

const char mg_matcher_script[] =
    "-- The matcher's state (docs/redis-keys.md, \"Matcher\"). ARGV[1] = operation.\n"
    "local op = ARGV[1]\n"
    "local function num(v) return tonumber(v) or 0 end\n"
    "local function str(v) if v then return v end return '' end\n"
    "\n"
    "-- mg:figures, the territory's counts (docs/redis-keys.md, \"Figures\"): field\n"
    "-- <measure>|<cat>|<com> -> count, changed only here, in the same call as the\n"
    "-- state change it counts, and only when that change is applied (the order-\n"
    "-- safety checks below), so a replay, a redelivery or a second instance\n"
    "-- counts nothing twice. Changes are summed per field during the call (an\n"
    "-- update within one cell cancels out) and written at the end; a field that\n"
    "-- reaches 0 is deleted.\n"
    "local figs, fig_fields = {}, {}\n"
    "local function fig(measure, cat, com, d)\n"
    "  if cat == '' or com == '' then return end\n"
    "  local k = measure .. '|' .. cat .. '|' .. com\n"
    "  if not figs[k] then figs[k] = 0; fig_fields[#fig_fields + 1] = k end\n"
    "  figs[k] = figs[k] + d\n"
    "end\n"
    "local function fig_flush()\n"
    "  local ks = {}\n"
    "  for _, k in ipairs(fig_fields) do if figs[k] ~= 0 then ks[#ks + 1] = k end end\n"
    "  if #ks <= 2 then\n"
    "    for _, k in ipairs(ks) do\n"
    "      if redis.call('HINCRBY', 'mg:figures', k, figs[k]) <= 0 then redis.call('HDEL', 'mg:figures', k) end\n"
    "    end\n"
    "    return\n"
    "  end\n"
    "  -- Many cells (an offer proposed to needs of several communes): read them\n"
    "  -- all, then one write and one delete, instead of a call per cell.\n"
    "  -- By slices of 400: unpack() has a limit of a few thousand values.\n"
    "  local put, del = {}, {}\n"
    "  for s = 1, #ks, 400 do\n"
    "    for j, v in ipairs(redis.call('HMGET', 'mg:figures', unpack(ks, s, math.min(s + 399, #ks)))) do\n"
    "      local k = ks[s + j - 1]\n"
    "      local n = num(v) + figs[k]\n"
    "      if n > 0 then put[#put + 1] = k; put[#put + 1] = n else del[#del + 1] = k end\n"
    "    end\n"
    "  end\n"
    "  for s = 1, #put, 400 do redis.call('HSET', 'mg:figures', unpack(put, s, math.min(s + 399, #put))) end\n"
    "  for s = 1, #del, 400 do redis.call('HDEL', 'mg:figures', unpack(del, s, math.min(s + 399, #del))) end\n"
    "end\n"
    "\n"
    "-- The needs of one category and EPCI (mg:coll:<cat>:<epci>) and how many\n"
    "-- each structure has there (mg:coll:<cat>:<epci>:sids): its length is the\n"
    "-- number of distinct structures, kept without scanning the group.\n"
    "local function coll_remove(cat, epci, member)\n"
    "  if redis.call('ZREM', 'mg:coll:' .. cat .. ':' .. epci, member) == 1 then\n"
    "    local sid = string.match(member, '^([^|]*)|')\n"
    "    local hk = 'mg:coll:' .. cat .. ':' .. epci .. ':sids'\n"
    "    if redis.call('HINCRBY', hk, sid, -1) <= 0 then redis.call('HDEL', hk, sid) end\n"
    "  end\n"
    "end\n"
    "\n"
    "local function need_unindex(id, f)\n"
    "  local cat = f.cat\n"
    "  redis.call('ZREM', 'mg:geo:need:' .. cat, id)\n"
    "  if f.epci ~= '' then\n"
    "    coll_remove(cat, f.epci, f.sid .. '|' .. id)\n"
    "  end\n"
    "  redis.call('ZREM', 'mg:exp:need', id)\n"
    "  redis.call('ZREM', 'mg:start:need', id)\n"
    "  redis.call('SREM', 'mg:structure:' .. f.sid .. ':items', 'n:' .. id)\n"
    "end\n"
    "\n"
    "local function need_index(id, f, lon, lat, at)\n"
    "  local cat = f.cat\n"
    "  redis.call('GEOADD', 'mg:geo:need:' .. cat, lon, lat, id)\n"
    "  if f.epci ~= '' then\n"
    "    if redis.call('ZADD', 'mg:coll:' .. cat .. ':' .. f.epci, at, f.sid .. '|' .. id) == 1 then\n"
    "      redis.call('HINCRBY', 'mg:coll:' .. cat .. ':' .. f.epci .. ':sids', f.sid, 1)\n"
    "    end\n"
    "  end\n"
    "  if num(f['until']) >= 0 and f['until'] ~= '' then redis.call('ZADD', 'mg:exp:need', f['until'], id) end\n"
    "  redis.call('SADD', 'mg:structure:' .. f.sid .. ':items', 'n:' .. id)\n"
    "end\n"
    "\n"
    "-- The territory entries of an offer, as index names: dep:<dep>, epci:<epci>,\n"
    "-- com:<com>. (Its own commune needs no entry: the GEO search finds it.)\n"
    "local function offer_terr(f)\n"
    "  local t = {}\n"
    "  for e in string.gmatch(f.terr or '', '%S+') do\n"
    "    if string.sub(e, 1, 4) == 'dep:' or string.sub(e, 1, 5) == 'epci:' then t[#t + 1] = e\n"
    "    elseif e ~= f.com then t[#t + 1] = 'com:' .. e end\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "\n"
    "local function offer_unindex(id, f)\n"
    "  local cat = f.cat\n"
    "  redis.call('ZREM', 'mg:geo:offer:' .. cat, id)\n"
    "  for _, e in ipairs(offer_terr(f)) do redis.call('ZREM', 'mg:idx:offer:' .. cat .. ':terr:' .. e, id) end\n"
    "  redis.call('ZREM', 'mg:exp:offer', id)\n"
    "  redis.call('ZREM', 'mg:start:offer', id)\n"
    "  redis.call('SREM', 'mg:structure:' .. f.sid .. ':items', 'o:' .. id)\n"
    "end\n"
    "\n"
    "local function offer_index(id, f, lon, lat)\n"
    "  local cat = f.cat\n"
    "  redis.call('GEOADD', 'mg:geo:offer:' .. cat, lon, lat, id)\n"
    "  for _, e in ipairs(offer_terr(f)) do redis.call('ZADD', 'mg:idx:offer:' .. cat .. ':terr:' .. e, 0, id) end\n"
    "  if num(f['until']) >= 0 and f['until'] ~= '' then redis.call('ZADD', 'mg:exp:offer', f['until'], id) end\n"
    "  redis.call('SADD', 'mg:structure:' .. f.sid .. ':items', 'o:' .. id)\n"
    "end\n"
    "\n"
    "-- A need or offer record is ONE string (a hash would hold the serialized\n"
    "-- item in a value above hash-max-listpack-value and fall back to a hashtable\n"
    "-- of about 50 bytes per field): the fields below, each followed by '|' (no id\n"
    "-- contains one), then the serialized item. `flags` is \"m=<seq>,m0=<seq>,...\".\n"
    "local FIELDS = {'seq', 'open', 'sid', 'cat', 'com', 'dep', 'epci', 'until', 'at', 'terr', 'flags'}\n"
    "local function rec_parse(v)\n"
    "  local f = {pb = ''}\n"
    "  for _, name in ipairs(FIELDS) do f[name] = '' end\n"
    "  if v then\n"
    "    local pos = 1\n"
    "    for _, name in ipairs(FIELDS) do\n"
    "      local e = string.find(v, '|', pos, true)\n"
    "      if not e then break end\n"
    "      f[name] = string.sub(v, pos, e - 1)\n"
    "      pos = e + 1\n"
    "    end\n"
    "    f.pb = string.sub(v, pos)\n"
    "  end\n"
    "  f.seq = num(f.seq)\n"
    "  return f\n"
    "end\n"
    "\n"
    "local function rec_get(key)\n"
    "  return rec_parse(redis.call('GET', key))\n"
    "end\n"
    "\n"
    "-- open, cat and com of a record without reading its item: the fields before\n"
    "-- them are short (a sequence, a flag, an id of at most 64 characters), so its\n"
    "-- first 256 bytes hold them; if not, the whole record is read.\n"
    "local HEAD = '^[^|]*|([^|]*)|[^|]*|([^|]*)|([^|]*)|'\n"
    "local function rec_head(key)\n"
    "  local open, cat, com = string.match(redis.call('GETRANGE', key, 0, 255), HEAD)\n"
    "  if not open then\n"
    "    local f = rec_get(key)\n"
    "    open, cat, com = f.open, f.cat, f.com\n"
    "  end\n"
    "  return {open = open, cat = cat, com = com}\n"
    "end\n"
    "\n"
    "-- open, sid, at and the item of many records in one call, with one pattern\n"
    "-- match each (candidates need nothing else).\n"
    "local CAND = '^[^|]*|([^|]*)|([^|]*)|[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|([^|]*)|[^|]*|[^|]*|(.*)$'\n"
    "local function rec_many(prefix, ids)\n"
    "  local out = {}\n"
    "  if #ids == 0 then return out end\n"
    "  local keys = {}\n"
    "  for i, id in ipairs(ids) do keys[i] = prefix .. id end\n"
    "  for i, v in ipairs(redis.call('MGET', unpack(keys))) do\n"
    "    local open, sid, at, pb = '', '', '', ''\n"
    "    if v then open, sid, at, pb = string.match(v, CAND) end\n"
    "    out[i] = {open = open or '', sid = sid or '', at = at or '', pb = pb or ''}\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "\n"
    "-- A pair record (mg:pair:<nid>|<oid>) is ONE string, like an item record:\n"
    "-- rev|score|ret|mid|dist|ns|os|cat|dep|at|pcat|pcom, so the records of all\n"
    "-- the candidates of an event are read with one MGET and written with one\n"
    "-- MSET. pcat and pcom, the need's category and commune when the pair was\n"
    "-- first proposed, are the cell where mg:figures counts it (mp, ma); a record\n"
    "-- written before they existed has 10 fields (and is not counted).\n"
    "local PAIR = '^' .. string.rep('([^|]*)|', 11) .. '([^|]*)$'\n"
    "local PAIR10 = '^' .. string.rep('([^|]*)|', 9) .. '([^|]*)$'\n"
    "local function pair_parse(v)\n"
    "  local p = {}\n"
    "  if v then\n"
    "    p = {string.match(v, PAIR)}\n"
    "    if #p == 0 then p = {string.match(v, PAIR10)} end\n"
    "  end\n"
    "  for k = 1, 12 do p[k] = p[k] or '' end\n"
    "  return p\n"
    "end\n"
    "local function pair_many(keys)\n"
    "  local out = {}\n"
    "  for s = 1, #keys, 400 do\n"
    "    for _, v in ipairs(redis.call('MGET', unpack(keys, s, math.min(s + 399, #keys)))) do\n"
    "      out[#out + 1] = pair_parse(v)\n"
    "    end\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "\n"
    "local fairness = {}\n"
    "local function fair_count(sid, since)\n"
    "  local n = fairness[sid]\n"
    "  if not n then\n"
    "    n = redis.call('ZCOUNT', 'mg:fair:' .. sid, since, '+inf')\n"
    "    fairness[sid] = n\n"
    "  end\n"
    "  return n\n"
    "end\n"
    "\n"
    "local function rec_put(key, f)\n"
    "  local parts = {}\n"
    "  for i, name in ipairs(FIELDS) do parts[i] = tostring(f[name] or '') end\n"
    "  redis.call('SET', key, table.concat(parts, '|') .. '|' .. (f.pb or ''))\n"
    "end\n"
    "\n"
    "local function flag_get(f, name)\n"
    "  return num(string.match(',' .. f.flags, ',' .. name .. '=(%d+)'))\n"
    "end\n"
    "\n"
    "local function flag_set(f, name, value)\n"
    "  local out = {}\n"
    "  for k, v in string.gmatch(f.flags, '([^,=]+)=([^,]*)') do\n"
    "    if k ~= name then out[#out + 1] = k .. '=' .. v end\n"
    "  end\n"
    "  out[#out + 1] = name .. '=' .. value\n"
    "  f.flags = table.concat(out, ',')\n"
    "end\n"
    "\n"
    "local function load(key, mflag)\n"
    "  local f = rec_get(key)\n"
    "  f.m = flag_get(f, mflag)\n"
    "  return f\n"
    "end\n"
    "\n"
    "-- Nearest members of a GEO set, widening the circle until `want` are found or\n"
    "-- `radius` is reached: the cost follows the density, not the set's size. The\n"
    "-- first circle is sized from the set's mean density over Normandy (about\n"
    "-- 30,000 km2) to hold about twice `want`: GEOSEARCH reads every member of\n"
    "-- the geohash cells around the circle before sorting, so a circle far too\n"
    "-- wide in a dense set costs thousands of members for `want` results.\n"
    "local function geo_near(key, lon, lat, radius, want, add)\n"
    "  local total = redis.call('ZCARD', key)\n"
    "  if total == 0 then return end\n"
    "  local r = radius\n"
    "  if total > want then r = math.min(radius, math.max(0.5, math.sqrt(2 * want * 30000 / (math.pi * total)))) end\n"
    "  while true do\n"
    "    local res = redis.call('GEOSEARCH', key, 'FROMLONLAT', lon, lat, 'BYRADIUS', r, 'km', 'ASC', 'COUNT', want)\n"
    "    if #res >= want or r >= radius then\n"
    "      for _, m in ipairs(res) do add(m) end\n"
    "      return\n"
    "    end\n"
    "    r = math.min(r * 2, radius)\n"
    "  end\n"
    "end\n"
    "\n"
    "local structures = {}\n"
    "local function structure(sid)\n"
    "  local s = structures[sid]\n"
    "  if not s then\n"
    "    local v = redis.call('HMGET', 'mg:structure:' .. sid, 'pb', 'left')\n"
    "    s = {str(v[1]), str(v[2])}\n"
    "    structures[sid] = s\n"
    "  end\n"
    "  return s\n"
    "end\n"
    "\n"
    "-- Apply a need or an offer (reported/published/updated). Returns {0} when\n"
    "-- there is nothing to match, else the context and the candidates.\n"
    "local function apply_item(kind)\n"
    "  local seq, mflag, id, sid, cat, com, dep, epci = num(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]\n"
    "  local lon, lat, untilday, pb, at, terr = ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15]\n"
    "  local maxc, radius, fair_since, now = num(ARGV[16]), num(ARGV[17]), ARGV[18], num(ARGV[19])\n"
    "  local coll_min, coll_since = num(ARGV[20]), ARGV[21]\n"
    "  -- ARGV[22] circles (offers), [23] collective_distance_km, [24] the day number\n"
    "  -- of valid_from (-1 = none), [25] today's, [26] '1' = match again an item\n"
    "  -- whose valid_from has come (its record is not rewritten).\n"
    "  local coll_km, fromday, today, force = num(ARGV[23]), num(ARGV[24]), num(ARGV[25]), ARGV[26] == '1'\n"
    "  local key = 'mg:' .. kind .. ':' .. id\n"
    "  local cur = load(key, mflag)\n"
    "  if seq < cur.seq or (seq == cur.seq and cur.m == seq and not force) then return {0} end\n"
    "  if seq > cur.seq then\n"
    "    if cur.open == '0' and cur.seq > 0 then\n"
    "      cur.seq = seq\n"
    "      rec_put(key, cur)\n"
    "      return {0}\n"
    "    end\n"
    "    -- Figures: the item leaves its old cell (an update may change its\n"
    "    -- category or commune) and enters its new one; a need without an open\n"
    "    -- match is also unmet.\n"
    "    local measure = (kind == 'need') and 'on' or 'oo'\n"
    "    local unmet = kind == 'need' and redis.call('EXISTS', 'mg:nm:' .. id) == 0\n"
    "    if cur.open == '1' then\n"
    "      if kind == 'need' then need_unindex(id, cur) else offer_unindex(id, cur) end\n"
    "      if cur.at ~= '' then at = cur.at end\n"
    "      fig(measure, cur.cat, cur.com, -1)\n"
    "      if unmet then fig('un', cur.cat, cur.com, -1) end\n"
    "    end\n"
    "    fig(measure, cat, com, 1)\n"
    "    if unmet then fig('un', cat, com, 1) end\n"
    "    local f = {seq = seq, open = '1', sid = sid, cat = cat, com = com, dep = dep, epci = epci, ['until'] = untilday,\n"
    "               at = at, terr = terr, flags = cur.flags, pb = pb}\n"
    "    rec_put(key, f)\n"
    "    if kind == 'need' then need_index(id, f, lon, lat, at) else offer_index(id, f, lon, lat) end\n"
    "    -- Not valid before valid_from: matched again on that day (op 'started').\n"
    "    if fromday > today then redis.call('ZADD', 'mg:start:' .. kind, fromday, id) end\n"
    "    f.m = cur.m\n"
    "    cur = f\n"
    "  end\n"
    "  if cur.open ~= '1' then return {0} end\n"
    "\n"
    "  local seen, ids = {}, {}\n"
    "  local function add(m) if not seen[m] then seen[m] = true; ids[#ids + 1] = m end end\n"
    "  local out = {1, structure(sid)[1], structure(sid)[2], cur.at}\n"
    "  if kind == 'need' then\n"
    "    for _, o in ipairs(redis.call('ZRANGE', 'mg:nm:' .. id, 0, -1)) do add(o) end\n"
    "    geo_near('mg:geo:offer:' .. cat, lon, lat, radius, maxc, add)\n"
    "    local terrs = {'com:' .. com, 'dep:' .. dep}\n"
    "    if epci ~= '' then terrs[3] = 'epci:' .. epci end\n"
    "    local budget = math.max(1, math.floor(maxc / 2))\n"
    "    for _, t in ipairs(terrs) do\n"
    "      for _, o in ipairs(redis.call('ZRANGE', 'mg:idx:offer:' .. cat .. ':terr:' .. t, 0, budget - 1)) do add(o) end\n"
    "    end\n"
    "    local cands = {}\n"
    "    local recs = rec_many('mg:offer:', ids)\n"
    "    local pkeys = {}\n"
    "    for i, oid in ipairs(ids) do\n"
    "      if recs[i].open == '1' then pkeys[#pkeys + 1] = 'mg:pair:' .. id .. '|' .. oid end\n"
    "    end\n"
    "    local prs, k = pair_many(pkeys), 0\n"
    "    for i, oid in ipairs(ids) do\n"
    "      local r = recs[i]\n"
    "      local o = {r.open, r.pb, r.sid, r.at}\n"
    "      if o[1] == '1' then\n"
    "        k = k + 1\n"
    "        local p = prs[k]\n"
    "        local osid = str(o[3])\n"
    "        local s = structure(osid)\n"
    "        local fb = redis.call('HMGET', 'mg:fb:' .. oid, 'cm', 'nr')\n"
    "        local fair = fair_count(osid, fair_since)\n"
    "        cands[#cands + 1] = {oid, str(o[1]), str(o[2]), osid, s[1], s[2], str(o[4]), str(fb[1]), str(fb[2]), fair,\n"
    "                             str(p[1]), str(p[2]), str(p[3])}\n"
    "      end\n"
    "    end\n"
    "    out[5] = cands\n"
    "    -- A collective need: enough distinct structures of one EPCI.\n"
    "    out[6] = {}\n"
    "    if coll_min > 0 and epci ~= '' then\n"
    "      local ck = 'mg:coll:' .. cat .. ':' .. epci\n"
    "      for _, m in ipairs(redis.call('ZRANGEBYSCORE', ck, '-inf', '(' .. coll_since, 'LIMIT', 0, 1000)) do\n"
    "        coll_remove(cat, epci, m)\n"
    "      end\n"
    "      local n = redis.call('HLEN', ck .. ':sids')\n"
    "      local st = redis.call('HMGET', 'mg:collective:' .. cat .. ':' .. epci, 'rev', 'n')\n"
    "      if n >= coll_min and n > num(st[2]) then\n"
    "        out[6] = {num(st[1]), n, redis.call('ZRANGE', ck, 0, 199)}\n"
    "      end\n"
    "    end\n"
    "    -- A collective need by distance: the distinct structures with open needs\n"
    "    -- of the category within coll_km of a centre. A group is centred on the\n"
    "    -- commune of the need that formed it (mg:ncoll:<cat>, kept): a need inside\n"
    "    -- an existing group's circle updates that group; only a need outside\n"
    "    -- every circle can form a new one (and not when its EPCI's signal already\n"
    "    -- covers the same structures).\n"
    "    out[7] = {}\n"
    "    if coll_min > 0 and coll_km > 0 then\n"
    "      local function group(clon, clat)\n"
    "        local gids = redis.call('GEOSEARCH', 'mg:geo:need:' .. cat, 'FROMLONLAT', clon, clat, 'BYRADIUS', coll_km, 'km',\n"
    "                                'ASC', 'COUNT', 1000)\n"
    "        local members, sids, n = {}, {}, 0\n"
    "        for i, r in ipairs(rec_many('mg:need:', gids)) do\n"
    "          if r.open == '1' and num(r.at) >= num(coll_since) then\n"
    "            if #members < 200 then members[#members + 1] = r.sid .. '|' .. gids[i] end\n"
    "            if not sids[r.sid] then sids[r.sid] = true; n = n + 1 end\n"
    "          end\n"
    "        end\n"
    "        return members, sids, n\n"
    "      end\n"
    "      local centres = redis.call('GEOSEARCH', 'mg:ncoll:' .. cat, 'FROMLONLAT', lon, lat, 'BYRADIUS', coll_km, 'km',\n"
    "                                 'ASC', 'WITHCOORD')\n"
    "      for _, c in ipairs(centres) do\n"
    "        local members, _, n = group(c[2][1], c[2][2])\n"
    "        local st = redis.call('HMGET', 'mg:collective:' .. cat .. ':near:' .. c[1], 'rev', 'n')\n"
    "        if n >= coll_min and n > num(st[2]) then\n"
    "          out[7][#out[7] + 1] = {'near:' .. c[1], c[1], num(st[1]), n, members, ''}\n"
    "        end\n"
    "      end\n"
    "      if #centres == 0 then\n"
    "        local members, sids, n = group(lon, lat)\n"
    "        local covered = false\n"
    "        if n >= coll_min and epci ~= '' and (#out[6] > 0 or\n"
    "            num(redis.call('HGET', 'mg:collective:' .. cat .. ':' .. epci, 'rev')) > 0) then\n"
    "          covered = true\n"
    "          for s in pairs(sids) do\n"
    "            if redis.call('HEXISTS', 'mg:coll:' .. cat .. ':' .. epci .. ':sids', s) == 0 then covered = false; break end\n"
    "          end\n"
    "        end\n"
    "        local st = redis.call('HMGET', 'mg:collective:' .. cat .. ':near:' .. com, 'rev', 'n')\n"
    "        if n >= coll_min and not covered and n > num(st[2]) then\n"
    "          out[7][1] = {'near:' .. com, com, num(st[1]), n, members, lon .. ' ' .. lat}\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  else\n"
    "    for _, n in ipairs(redis.call('ZRANGE', 'mg:om:' .. id, 0, -1)) do add(n) end\n"
    "    if radius > 0 then geo_near('mg:geo:need:' .. cat, lon, lat, radius, maxc, add) end\n"
    "    -- Its own commune and each territory entry, as circles (lon,lat,km;...)\n"
    "    -- computed from the commune table: the needs nearest their centre.\n"
    "    local budget = math.max(1, math.floor(maxc / 2))\n"
    "    for clon, clat, ckm in string.gmatch(ARGV[22] or '', '([^,;]+),([^,;]+),([^,;]+)') do\n"
    "      geo_near('mg:geo:need:' .. cat, clon, clat, tonumber(ckm), budget, add)\n"
    "    end\n"
    "    local fb = redis.call('HMGET', 'mg:fb:' .. id, 'cm', 'nr')\n"
    "    out[5] = {str(fb[1]), str(fb[2]), fair_count(sid, fair_since)}\n"
    "    local cands = {}\n"
    "    local recs = rec_many('mg:need:', ids)\n"
    "    local pkeys = {}\n"
    "    for i, nid in ipairs(ids) do\n"
    "      if recs[i].open == '1' then pkeys[#pkeys + 1] = 'mg:pair:' .. nid .. '|' .. id end\n"
    "    end\n"
    "    local prs, k = pair_many(pkeys), 0\n"
    "    for i, nid in ipairs(ids) do\n"
    "      local r = recs[i]\n"
    "      local n = {r.open, r.pb, r.sid, r.at}\n"
    "      if n[1] == '1' then\n"
    "        k = k + 1\n"
    "        local p = prs[k]\n"
    "        local nsid = str(n[3])\n"
    "        local s = structure(nsid)\n"
    "        local top = redis.call('ZREVRANGE', 'mg:nm:' .. nid, 0, 19, 'WITHSCORES')\n"
    "        cands[#cands + 1] = {nid, str(n[1]), str(n[2]), nsid, s[1], s[2], str(n[4]), str(p[1]), str(p[2]),\n"
    "                             str(p[3]), top}\n"
    "      end\n"
    "    end\n"
    "    out[6] = cands\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "\n"
    "-- Close a need or an offer; returns its open pairs (to retire) unless this\n"
    "-- event was completely handled already.\n"
    "local function close_item(kind)\n"
    "  local seq, mflag, id = num(ARGV[2]), ARGV[3], ARGV[4]\n"
    "  local key = 'mg:' .. kind .. ':' .. id\n"
    "  local cur = load(key, mflag)\n"
    "  if seq < cur.seq or (seq == cur.seq and cur.m == seq) then return {0} end\n"
    "  if seq > cur.seq then\n"
    "    if cur.open == '1' then\n"
    "      if kind == 'need' then need_unindex(id, cur) else offer_unindex(id, cur) end\n"
    "      fig(kind == 'need' and 'on' or 'oo', cur.cat, cur.com, -1)\n"
    "      if kind == 'need' and redis.call('EXISTS', 'mg:nm:' .. id) == 0 then fig('un', cur.cat, cur.com, -1) end\n"
    "    end\n"
    "    rec_put(key, {seq = seq, open = '0', flags = cur.flags})\n"
    "  end\n"
    "  local out = {1}\n"
    "  local mk = (kind == 'need') and ('mg:nm:' .. id) or ('mg:om:' .. id)\n"
    "  local others, pkeys = redis.call('ZRANGE', mk, 0, -1), {}\n"
    "  for k, other in ipairs(others) do\n"
    "    if kind == 'offer' then pkeys[k] = 'mg:pair:' .. other .. '|' .. id else pkeys[k] = 'mg:pair:' .. id .. '|' .. other end\n"
    "  end\n"
    "  for k, p in ipairs(pair_many(pkeys)) do\n"
    "    local nid, oid = id, others[k]\n"
    "    if kind == 'offer' then nid, oid = others[k], id end\n"
    "    out[#out + 1] = {nid, oid, p[1], p[2], p[4], p[5], p[6], p[7], p[8], p[9]}\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "\n"
    "if op == 'need' or op == 'offer' or op == 'close_need' or op == 'close_offer' then\n"
    "  local out\n"
    "  if op == 'need' or op == 'offer' then out = apply_item(op) else out = close_item(string.sub(op, 7)) end\n"
    "  fig_flush()\n"
    "  return out\n"
    "end\n"
    "\n"
    "if op == 'member' then\n"
    "  -- ARGV: seq, structure_id, pb (without contact: mg:contact:<sid> is the\n"
    "  -- broker's, written when it journals the event)\n"
    "  local seq, sid = num(ARGV[2]), ARGV[3]\n"
    "  local key = 'mg:structure:' .. sid\n"
    "  if seq <= num(redis.call('HGET', key, 'seq')) then return 0 end\n"
    "  redis.call('HSET', key, 'seq', seq, 'pb', ARGV[4], 'left', 0)\n"
    "  return 1\n"
    "end\n"
    "\n"
    "if op == 'left' then\n"
    "  -- ARGV: seq, mflag, structure_id. Returns {1, items...} to close.\n"
    "  local seq, mflag, sid = num(ARGV[2]), ARGV[3], ARGV[4]\n"
    "  local key = 'mg:structure:' .. sid\n"
    "  local v = redis.call('HMGET', key, 'seq', mflag)\n"
    "  if seq < num(v[1]) or (seq == num(v[1]) and num(v[2]) == seq) then return {0} end\n"
    "  if seq > num(v[1]) then redis.call('HSET', key, 'seq', seq, 'left', 1) end\n"
    "  local out = {1}\n"
    "  for _, item in ipairs(redis.call('SMEMBERS', 'mg:structure:' .. sid .. ':items')) do out[#out + 1] = item end\n"
    "  return out\n"
    "end\n"
    "\n"
    "if op == 'decide' then\n"
    "  -- ARGV: kind ('need', 'offer', 'structure' or ''), id, seq, mflag, now, fair_window_ms,\n"
    "  -- n_pairs, n_coll, n_plain, then 16 per pair, 9 per collective, 2 per plain.\n"
    "  local kind, id, seq, mflag, now, window = ARGV[2], ARGV[3], ARGV[4], ARGV[5], num(ARGV[6]), num(ARGV[7])\n"
    "  local np, nc, nplain = num(ARGV[8]), num(ARGV[9]), num(ARGV[10])\n"
    "  local i, out = 11, {}\n"
    "  -- Writes gathered by key and sent once per key at the end (a call from\n"
    "  -- Lua costs about a microsecond more than the command itself): the pairs\n"
    "  -- of one event share their need (or offer), often their provider.\n"
    "  local outbox, mids, keys, adds = {}, {}, {}, {}\n"
    "  local function push(k, a, b)\n"
    "    local l = adds[k]\n"
    "    if not l then l = {}; adds[k] = l; keys[#keys + 1] = k end\n"
    "    l[#l + 1] = a; l[#l + 1] = b\n"
    "  end\n"
    "  local pkeys = {}\n"
    "  for k = 1, np do pkeys[k] = 'mg:pair:' .. ARGV[i + 16 * (k - 1)] .. '|' .. ARGV[i + 16 * (k - 1) + 1] end\n"
    "  local curs = pair_many(pkeys)\n"
    "  -- The needs that gain or lose an open match (a proposal, a retirement),\n"
    "  -- and how many they lose: a need is unmet (figure `un`) exactly when it has\n"
    "  -- none, known at the end from its count and what this call changed.\n"
    "  local nm_removed, nm_needs = {}, {}\n"
    "  local function nm_touch(nid)\n"
    "    if not nm_removed[nid] then\n"
    "      nm_removed[nid] = 0\n"
    "      nm_needs[#nm_needs + 1] = nid\n"
    "    end\n"
    "  end\n"
    "  for k = 1, np do\n"
    "    local nid, oid, prev, new, score, ret, mid, eid, env = ARGV[i], ARGV[i + 1], num(ARGV[i + 2]), ARGV[i + 3],\n"
    "      ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]\n"
    "    local dist, ns, os, cat, dep = ARGV[i + 9], ARGV[i + 10], ARGV[i + 11], ARGV[i + 12], ARGV[i + 13]\n"
    "    -- com: the need's commune; found: the serialized MatchFound (mg:mexp).\n"
    "    local com, found = ARGV[i + 14], ARGV[i + 15]\n"
    "    i = i + 16\n"
    "    local cur = curs[k]\n"
    "    if num(cur[1]) == prev then\n"
    "      local at, pcat, pcom = cur[10], cur[11], cur[12]\n"
    "      if prev == 0 then\n"
    "        at, pcat, pcom = now, cat, com\n"
    "        fig('mp', pcat, pcom, 1)\n"
    "      end\n"
    "      mids[#mids + 1] = pkeys[k]\n"
    "      mids[#mids + 1] = table.concat({new, score, ret, mid, dist, ns, os, cat, dep, at, pcat, pcom}, '|')\n"
    "      mids[#mids + 1] = 'mg:mexp:' .. mid\n"
    "      mids[#mids + 1] = found\n"
    "      if prev == 0 then mids[#mids + 1] = 'mg:mid:' .. mid; mids[#mids + 1] = nid .. '|' .. oid end\n"
    "      if ret == '1' then\n"
    "        nm_touch(nid)\n"
    "        nm_removed[nid] = nm_removed[nid] + redis.call('ZREM', 'mg:nm:' .. nid, oid)\n"
    "        redis.call('ZREM', 'mg:om:' .. oid, nid)\n"
    "      else\n"
    "        if prev == 0 or cur[3] == '1' then nm_touch(nid) end\n"
    "        push('mg:nm:' .. nid, score, oid)\n"
    "        push('mg:om:' .. oid, score, nid)\n"
    "        if prev == 0 or cur[3] == '1' then push('mg:fair:' .. os, now, mid) end\n"
    "      end\n"
    "      outbox[#outbox + 1] = eid; outbox[#outbox + 1] = env\n"
    "      out[#out + 1] = eid\n"
    "    end\n"
    "  end\n"
    "  -- In slices: unpack() is bounded by the Lua stack. Returns the sum of the\n"
    "  -- integer replies (ZADD: members added).\n"
    "  local function bulk(cmd, key, l)\n"
    "    local total = 0\n"
    "    for s = 1, #l, 400 do\n"
    "      local e = math.min(s + 399, #l)\n"
    "      local r\n"
    "      if key then r = redis.call(cmd, key, unpack(l, s, e)) else r = redis.call(cmd, unpack(l, s, e)) end\n"
    "      if type(r) == 'number' then total = total + r end\n"
    "    end\n"
    "    return total\n"
    "  end\n"
    "  bulk('MSET', nil, mids)\n"
    "  local added = {}\n"
    "  for _, k in ipairs(keys) do\n"
    "    added[k] = bulk('ZADD', k, adds[k])\n"
    "    if string.sub(k, 1, 8) == 'mg:fair:' then redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. (now - window)) end\n"
    "  end\n"
    "  bulk('HSET', 'mg:matcher:outbox', outbox)\n"
    "  -- Only an open need counts as unmet: a closed one left its cells when it\n"
    "  -- closed, before the retirements of its matches (this call). Its category\n"
    "  -- and commune are read from the head of its record.\n"
    "  for _, nid in ipairs(nm_needs) do\n"
    "    local has = redis.call('ZCARD', 'mg:nm:' .. nid)\n"
    "    local had = has - (added['mg:nm:' .. nid] or 0) + nm_removed[nid]\n"
    "    if (had > 0) ~= (has > 0) then\n"
    "      local f = rec_head('mg:need:' .. nid)\n"
    "      if f.open == '1' then fig('un', f.cat, f.com, has > 0 and -1 or 1) end\n"
    "    end\n"
    "  end\n"
    "  for _ = 1, nc do\n"
    "    -- `group` is an EPCI or near:<com> (a group by distance, whose `centre`\n"
    "    -- \"lon lat\" is given when it is formed); `pb` the serialized\n"
    "    -- CollectiveNeedDetected (what the gateway shows).\n"
    "    local cat, group, prev, new, n, eid, env, centre, pb = ARGV[i], ARGV[i + 1], num(ARGV[i + 2]), ARGV[i + 3],\n"
    "      ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]\n"
    "    i = i + 9\n"
    "    local ck = 'mg:collective:' .. cat .. ':' .. group\n"
    "    if num(redis.call('HGET', ck, 'rev')) == prev then\n"
    "      redis.call('HSET', ck, 'rev', new, 'n', n, 'at', now, 'pb', pb)\n"
    "      redis.call('SADD', 'mg:collectives', ck)\n"
    "      local clon, clat = string.match(centre, '^(%S+) (%S+)$')\n"
    "      if clon then redis.call('GEOADD', 'mg:ncoll:' .. cat, clon, clat, string.sub(group, 6)) end\n"
    "      redis.call('HSET', 'mg:matcher:outbox', eid, env)\n"
    "      out[#out + 1] = eid\n"
    "    end\n"
    "  end\n"
    "  for _ = 1, nplain do\n"
    "    redis.call('HSET', 'mg:matcher:outbox', ARGV[i], ARGV[i + 1])\n"
    "    out[#out + 1] = ARGV[i]\n"
    "    i = i + 2\n"
    "  end\n"
    "  if kind == 'structure' then\n"
    "    redis.call('HSET', 'mg:structure:' .. id, mflag, seq)\n"
    "  elseif kind ~= '' then\n"
    "    local f = rec_get('mg:' .. kind .. ':' .. id)\n"
    "    if f.seq > 0 then\n"
    "      flag_set(f, mflag, seq)\n"
    "      rec_put('mg:' .. kind .. ':' .. id, f)\n"
    "    end\n"
    "  end\n"
    "  fig_flush()\n"
    "  return out\n"
    "end\n"
    "\n"
    "if op == 'feedback' then\n"
    "  -- ARGV: match_id, staff_id, outcome ('cm' or 'nr' or '')\n"
    "  local mid, staff, outcome = ARGV[2], ARGV[3], ARGV[4]\n"
    "  local pair = redis.call('GET', 'mg:mid:' .. mid)\n"
    "  if not pair then return 0 end\n"
    "  local oid = string.match(pair, '|(.*)$')\n"
    "  -- Each staff member's last outcome on this pair (kept apart from the pair\n"
    "  -- record, which is rewritten whole at each revision).\n"
    "  local pk = 'mg:pfb:' .. pair\n"
    "  local before = str(redis.call('HGET', pk, 'fb:' .. staff))\n"
    "  if before == outcome then return 0 end\n"
    "  if before ~= '' then redis.call('HINCRBY', 'mg:fb:' .. oid, before, -1) end\n"
    "  if outcome ~= '' then redis.call('HINCRBY', 'mg:fb:' .. oid, outcome, 1) end\n"
    "  redis.call('HSET', pk, 'fb:' .. staff, outcome)\n"
    "  -- The match's first \"mise en relation faite\", whoever gives it (`acc`\n"
    "  -- stays when it is taken back): figure `ma`, in the pair's cell.\n"
    "  if outcome == 'cm' and redis.call('HSETNX', pk, 'acc', 1) == 1 then\n"
    "    local p = pair_parse(redis.call('GET', 'mg:pair:' .. pair))\n"
    "    fig('ma', p[11], p[12], 1)\n"
    "    fig_flush()\n"
    "  end\n"
    "  return 1\n"
    "end\n"
    "\n"
    "if op == 'coop' then\n"
    "  -- ARGV: seq, proposal_id, field ('pb' or 'ans:<structure>'), value\n"
    "  local seq, key = num(ARGV[2]), 'mg:coop:' .. ARGV[3]\n"
    "  if ARGV[4] == 'pb' then\n"
    "    if seq <= num(redis.call('HGET', key, 'seq')) then return 0 end\n"
    "    redis.call('HSET', key, 'seq', seq, 'pb', ARGV[5])\n"
    "  else\n"
    "    redis.call('HSET', key, ARGV[4], ARGV[5])\n"
    "  end\n"
    "  return 1\n"
    "end\n"
    "\n"
    "if op == 'started' then\n"
    "  -- ARGV: mflag, today (day number), limit. The open items whose valid_from\n"
    "  -- day came after this instance's last completed round (mg:start:done) and\n"
    "  -- is at most today: {{needs: {id, seq, at, item}...}, {offers: ...}}.\n"
    "  -- Entries are kept 30 days past their day (for a late instance), then trimmed.\n"
    "  local mflag, today, limit = ARGV[2], num(ARGV[3]), num(ARGV[4])\n"
    "  local done = redis.call('HGET', 'mg:start:done', mflag)\n"
    "  local out = {}\n"
    "  for k, kind in ipairs({'need', 'offer'}) do\n"
    "    local sk = 'mg:start:' .. kind\n"
    "    redis.call('ZREMRANGEBYSCORE', sk, '-inf', '(' .. (today - 30))\n"
    "    local list = {}\n"
    "    for _, id in ipairs(redis.call('ZRANGEBYSCORE', sk, done and ('(' .. done) or '-inf', today, 'LIMIT', 0, limit)) do\n"
    "      local f = rec_get('mg:' .. kind .. ':' .. id)\n"
    "      if f.open == '1' then list[#list + 1] = {id, f.seq, f.at, f.pb} end\n"
    "    end\n"
    "    out[k] = list\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "\n"
    "if op == 'expired' then\n"
    "  -- ARGV: last expired day, limit. Returns {needs: id, sid...}, {offers: id, sid...}\n"
    "  local out = {}\n"
    "  for k, kind in ipairs({'need', 'offer'}) do\n"
    "    local list = {}\n"
    "    for _, id in ipairs(redis.call('ZRANGEBYSCORE', 'mg:exp:' .. kind, '-inf', ARGV[2], 'LIMIT', 0, num(ARGV[3]))) do\n"
    "      list[#list + 1] = id\n"
    "      list[#list + 1] = rec_get('mg:' .. kind .. ':' .. id).sid\n"
    "    end\n"
    "    out[k] = list\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "\n"
    "return redis.error_reply('unknown operation ' .. tostring(op))\n";

/* ---- arguments ------------------------------------------------------------ */

void mg_args_init(mg_args_t *a) {
    memset(a, 0, sizeof(*a));
}

void mg_args_bytes(mg_args_t *a, const void *data, size_t len) {
    if (a->argc == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->argv = mg_realloc(a->argv, (size_t)a->cap * sizeof(*a->argv));
        a->lens = mg_realloc(a->lens, (size_t)a->cap * sizeof(*a->lens));
    }
    char *copy = mg_malloc(len + 1);
    if (len) memcpy(copy, data, len);
    copy[len] = '\0';
    a->argv[a->argc] = copy;
    a->lens[a->argc] = len;
    a->argc++;
}

void mg_args_str(mg_args_t *a, const char *s) {
    if (!s) s = "";
    mg_args_bytes(a, s, strlen(s));
}

void mg_args_int(mg_args_t *a, long long v) {
    /* By hand: several per pair of every event, and printf is slow. */
    char buf[24], *p = buf + sizeof(buf);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    mg_args_bytes(a, p, (size_t)(buf + sizeof(buf) - p));
}

void mg_args_double(mg_args_t *a, double v) {
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%.6f", v);
    mg_args_bytes(a, buf, (size_t)n);
}

static void s_args_reserve(mg_args_t *a, int n) {
    if (a->cap >= n) return;
    while (a->cap < n) a->cap = a->cap ? a->cap * 2 : 32;
    a->argv = mg_realloc(a->argv, (size_t)a->cap * sizeof(*a->argv));
    a->lens = mg_realloc(a->lens, (size_t)a->cap * sizeof(*a->lens));
}

void mg_args_move(mg_args_t *dst, mg_args_t *src) {
    if (src->argc == 0) return;
    s_args_reserve(dst, dst->argc + src->argc);
    memcpy(dst->argv + dst->argc, src->argv, (size_t)src->argc * sizeof(*src->argv));
    memcpy(dst->lens + dst->argc, src->lens, (size_t)src->argc * sizeof(*src->lens));
    dst->argc += src->argc;
    src->argc = 0; /* the strings are dst's now */
}

void mg_args_clear(mg_args_t *a) {
    for (int i = 0; i < a->argc; i++) free(a->argv[i]);
    free(a->argv);
    free(a->lens);
    memset(a, 0, sizeof(*a));
}

/* ---- the script ------------------------------------------------------------- */

struct mg_script {
    mg_redis_t *redis;
    const char *source;
    char sha[41];
};

typedef struct {
    mg_script_t *script;
    mg_args_t args; /* ARGV[0..] = EVALSHA, sha, 0, then the script's ARGV */
    mg_redis_reply_fn cb;
    void *privdata;
    int second_chance;
} s_call_t;

mg_script_t *mg_script_new(mg_redis_t *redis, const char *source) {
    mg_script_t *s = mg_calloc(1, sizeof(*s));
    s->redis = redis;
    s->source = source;
    return s;
}

void mg_script_destroy(mg_script_t **script_p) {
    if (!script_p || !*script_p) return;
    free(*script_p);
    *script_p = NULL;
}

static void s_on_loaded(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_script_t *s = privdata;
    (void)redis;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(s->sha, reply->str, 40);
        s->sha[40] = '\0';
    } else if (reply) {
        mg_error("matcher: SCRIPT LOAD refused: %s", reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
}

void mg_script_redis_up(mg_script_t *s) {
    const char *argv[3] = {"SCRIPT", "LOAD", s->source};
    size_t lens[3] = {6, 4, strlen(s->source)};
    mg_redis_command_argv(s->redis, s_on_loaded, s, 3, argv, lens);
}

static int s_send(s_call_t *call);

static void s_on_reply(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_call_t *call = privdata;
    (void)redis;
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 && !call->second_chance) {
        call->second_chance = 1;
        free(call->args.argv[0]);
        free(call->args.argv[1]);
        call->args.argv[0] = mg_strdup("EVAL");
        call->args.lens[0] = 4;
        call->args.argv[1] = mg_strdup(call->script->source);
        call->args.lens[1] = strlen(call->script->source);
        if (s_send(call) == 0) return;
        reply = NULL; /* Redis went away meanwhile */
    }
    call->cb(redis, reply, call->privdata);
    mg_args_clear(&call->args);
    free(call);
}

static int s_send(s_call_t *call) {
    return mg_redis_command_argv(call->script->redis, s_on_reply, call, call->args.argc,
                                 (const char **)call->args.argv, call->args.lens);
}

int mg_script_call(mg_script_t *s, mg_args_t *args, mg_redis_reply_fn cb, void *privdata) {
    s_call_t *call = mg_calloc(1, sizeof(*call));
    call->script = s;
    call->cb = cb;
    call->privdata = privdata;
    mg_args_init(&call->args);
    int sha_known = s->sha[0] != '\0';
    call->second_chance = !sha_known;
    mg_args_str(&call->args, sha_known ? "EVALSHA" : "EVAL");
    mg_args_str(&call->args, sha_known ? s->sha : s->source);
    mg_args_str(&call->args, "0");
    mg_args_move(&call->args, args);
    mg_args_clear(args);
    if (s_send(call) != 0) {
        mg_args_clear(&call->args);
        free(call);
        return -1;
    }
    return 0;
}
