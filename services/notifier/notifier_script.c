/* notifier_script.c -- the notifier's one Lua script: every change it makes
 * to Redis is one call of it, so each step is atomic (documented in
 * docs/redis-keys.md, section "Notifier"). ARGV[1] names the operation. */
#include "notifier.h"

#include "maillage/staff.h"
#include "maillage/token.h"

/* clang-format off */
const char mg_notifier_script[] =
    "local op = ARGV[1]\n"
    "local function nkey(nid) return 'mg:notif:' .. nid end\n"
    /* The field/value pairs of ARGV from `from` for HSET, or nil when they
     * name another structure (`sid`) than the record's `owner`, or an event
     * (`seq`) not after its `last`: as the matcher, a need or offer belongs
     * to its structure, and an older event retried later changes nothing. */
    "local function record_pairs(from, owner, last)\n"
    "  local h = {}\n"
    "  for j = from, #ARGV, 2 do\n"
    "    if ARGV[j] == 'sid' and owner and owner ~= ARGV[j+1] then return nil end\n"
    "    if ARGV[j] == 'seq' and last and tonumber(ARGV[j+1]) <= tonumber(last) then return nil end\n"
    "    h[#h+1] = ARGV[j]; h[#h+1] = ARGV[j+1]\n"
    "  end\n"
    "  return h\n"
    "end\n"
    /* Mark notification `nid` failed at `now` (ms) for `why`, out of the
     * queue and into mg:notifier:failed, which keeps the ids of the last
     * `keep` ms (the records themselves expire by then). */
    "local function mark_failed(nid, now, why, keep)\n"
    "  redis.call('HSET', nkey(nid), 'state', 'failed', 'failed_at', now, 'last_error', why)\n"
    "  redis.call('ZREM', 'mg:notifier:queue', nid)\n"
    "  redis.call('ZADD', 'mg:notifier:failed', now, nid)\n"
    "  redis.call('ZREMRANGEBYSCORE', 'mg:notifier:failed', '-inf', '(' .. (tonumber(now) - tonumber(keep)))\n"
    "end\n"
    /* Whether match `mid`'s latest revision handled was a retirement
     * (mg:notifier:match:<mid>, "<revision>|<1 if retired>", op 'match'). */
    "local function match_retired(mid)\n"
    "  local g = redis.call('GET', 'mg:notifier:match:' .. mid)\n"
    "  return g and string.sub(g, -2) == '|1'\n"
    "end\n"
    /* The items (a match...) of the notifications `nids`, as a set. */
    "local function items_of(nids)\n"
    "  local has = {}\n"
    "  for _, nid in ipairs(nids) do\n"
    "    local item = redis.call('HGET', nkey(nid), 'item')\n"
    "    if item then has[item] = true end\n"
    "  end\n"
    "  return has\n"
    "end\n"
    /* Add notification `nid` to `staff`'s inbox, trimmed to inbox_max.
     * Positions strictly increase in creation order, even within one
     * millisecond or under a test clock: the live stream resumes after a
     * position and must never find a newer entry behind it. */
    "local function inbox_add(staff, nid, now, inbox_max)\n"
    "  local ib = 'mg:inbox:' .. staff\n"
    "  local at, top = now, redis.call('ZRANGE', ib, -1, -1, 'WITHSCORES')\n"
    "  if top[2] and tonumber(top[2]) >= at then at = tonumber(top[2]) + 1 end\n"
    "  redis.call('ZADD', ib, at, nid)\n"
    "  redis.call('SADD', 'mg:inboxes', staff)\n"
    "  local over = redis.call('ZCARD', ib) - inbox_max\n"
    "  if over > 0 then redis.call('ZPOPMIN', ib, over) end\n"
    "end\n"
    /* Bring into `staff`'s inbox the notifications `nids` that are not there
     * (`in_inbox`), once per item (a match...): an item the inbox has, by
     * another channel's copy, is passed over. What was waiting for a
     * channel turned off (`delivered`: it is delivered so, to the inbox), or
     * could not be sent (it stays failed), stays within the staff page's
     * reach, for `ttl` ms from now, as a new entry (its record lives as long
     * as the entry: the staff op trims entries by age). Returns how many
     * were added (then announced). */
    "local function inbox_bring(staff, nids, now, inbox_max, delivered, ttl)\n"
    "  local has, added = nil, 0\n"
    "  for _, nid in ipairs(nids) do\n"
    "    local key = nkey(nid)\n"
    "    local f = redis.call('HMGET', key, 'item', 'in_inbox')\n"
    "    if f[1] and f[2] ~= '1' then\n"
    "      has = has or items_of(redis.call('ZRANGE', 'mg:inbox:' .. staff, 0, -1))\n"
    "      if not has[f[1]] then\n"
    "        has[f[1]] = true\n"
    "        redis.call('HSET', key, 'in_inbox', '1', 'read', '0')\n"
    "        redis.call('PEXPIRE', key, ttl)\n"
    "        if delivered then\n"
    "          redis.call('HSET', key, 'channel', 'inbox', 'state', 'delivered', 'delivered_at', now)\n"
    "        end\n"
    "        inbox_add(staff, nid, now, inbox_max)\n"
    "        added = added + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if added > 0 then redis.call('PUBLISH', '" MG_STAFF_INBOX_CHANNEL "', staff) end\n"
    "  return added\n"
    "end\n"
    MG_TOKEN_REVOKE_STAFF_LUA
    /* create: now, ttl_ms, inbox_max, need_done, collective, revision, n,
     * then per notification: nid, staff, channel, route
     * (inbox|queue|digest), due, score, npairs, then npairs field/value
     * pairs. The record's existence is the idempotency key: a notification
     * already created is left alone, so a redelivered event creates
     * nothing. A collective need's revision (`collective` not empty) creates
     * nothing once a later one was handled (mg:notifier:collective_rev):
     * redundant matchers each send their own revisions, not always in
     * order. Returns the indexes (1-based) of the notifications created.
     * Each staff member who got a new inbox entry is announced once on
     * MG_STAFF_INBOX_CHANNEL (the gateway's live stream). */
    "if op == 'create' then\n"
    "  local now, ttl, inbox_max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "  local need_done, collective, revision, n = ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])\n"
    "  local i, created, announced, announce = 9, {}, {}, {}\n"
    "  if collective ~= '' then\n"
    "    local seen = tonumber(redis.call('HGET', 'mg:notifier:collective_rev', collective))\n"
    "    if seen and seen > revision then return created end\n"
    "    redis.call('HSET', 'mg:notifier:collective_rev', collective, revision)\n"
    "  end\n"
    "  -- A match retired before its proposal is notified (events handled out\n"
    "  -- of order, a redelivery): nothing to tell.\n"
    "  for j = 0, (n > 0 and tonumber(ARGV[i+6]) or 0) - 1 do\n"
    "    local mid = ARGV[i+7+2*j] == 'item' and string.match(ARGV[i+8+2*j], '^match:(.*)$')\n"
    "    if mid and match_retired(mid) then return created end\n"
    "  end\n"
    "  for k = 1, n do\n"
    "    local nid, staff, channel, route = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]\n"
    "    local due, score, np = tonumber(ARGV[i+4]), ARGV[i+5], tonumber(ARGV[i+6])\n"
    "    local key = nkey(nid)\n"
    "    if redis.call('EXISTS', key) == 0 then\n"
    "      local h = {'staff', staff, 'channel', channel, 'created_at', now, 'attempts', 0, 'score', score}\n"
    "      for j = 0, np - 1 do h[#h+1] = ARGV[i+7+2*j]; h[#h+1] = ARGV[i+8+2*j] end\n"
    "      if route == 'inbox' then\n"
    "        h[#h+1] = 'state'; h[#h+1] = 'delivered'; h[#h+1] = 'delivered_at'; h[#h+1] = now\n"
    "        h[#h+1] = 'read'; h[#h+1] = '0'\n"
    "      elseif route == 'queue' then\n"
    "        h[#h+1] = 'state'; h[#h+1] = 'pending'\n"
    "      else\n"
    "        h[#h+1] = 'state'; h[#h+1] = 'digest'\n"
    "      end\n"
    "      redis.call('HSET', key, unpack(h))\n"
    "      redis.call('PEXPIRE', key, ttl)\n"
    "      if route == 'inbox' then\n"
    "        inbox_add(staff, nid, now, inbox_max)\n"
    "        if not announced[staff] then announced[staff] = true; announce[#announce+1] = staff end\n"
    "      elseif route == 'queue' then\n"
    "        redis.call('ZADD', 'mg:notifier:queue', due, nid)\n"
    "      else\n"
    "        local pend = 'mg:digest:' .. staff .. ':' .. channel\n"
    "        redis.call('ZADD', pend, score, nid)\n"
    "        redis.call('PEXPIRE', pend, ttl)\n"
    "        redis.call('SADD', 'mg:digest:waiting', staff)\n"
    "      end\n"
    "      created[#created+1] = k\n"
    "    end\n"
    "    i = i + 7 + 2 * np\n"
    "  end\n"
    "  if need_done ~= '' then\n"
    "    -- (A close applied since its due_needs read stays: closed is final.)\n"
    "    local nk = 'mg:notifier:need:' .. need_done\n"
    "    if redis.call('HGET', nk, 'state') ~= 'closed' then redis.call('HSET', nk, 'state', 'notified') end\n"
    "    redis.call('ZREM', 'mg:notifier:needs', need_done)\n"
    "  end\n"
    "  for _, staff in ipairs(announce) do redis.call('PUBLISH', '" MG_STAFF_INBOX_CHANNEL "', staff) end\n"
    "  return created\n"
    "end\n"
    /* claim: now, lease_ms, limit, the notifier's id, then the ids it is
     * sending now. One being sent whose lease ran out (a mail waiting for a
     * free mail worker of outbound.h starts its timeout only then) first
     * gets a new lease: it is not sent twice, nor counted as another
     * attempt. Only the notifier holding mg:notifier:active claims (another
     * one, a notifier that lost its place while paused or cut off, gets
     * nothing but those leases renewed): due notifications of the queue are
     * pushed lease_ms into the future (so a crashed sender's are retried
     * after the lease, never twice at once) and at most `limit` returned
     * with their record and, for a digest, its items (title, summary,
     * score, link) by score, then oldest first; with the queue's earliest
     * due time after the claim (-1: empty), when to claim next. */
    "if op == 'claim' then\n"
    "  local now, lease, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "  for i = 6, #ARGV do\n"
    "    local at = redis.call('ZSCORE', 'mg:notifier:queue', ARGV[i])\n"
    "    if at and tonumber(at) <= now then redis.call('ZADD', 'mg:notifier:queue', now + lease, ARGV[i]) end\n"
    "  end\n"
    "  if redis.call('GET', 'mg:notifier:active') ~= ARGV[5] then limit = 0 end\n"
    "  local due = limit > 0 and redis.call('ZRANGEBYSCORE', 'mg:notifier:queue', '-inf', now, 'LIMIT', 0, limit) or {}\n"
    "  local out = {}\n"
    "  for _, nid in ipairs(due) do\n"
    "    local key = nkey(nid)\n"
    "    if redis.call('EXISTS', key) == 0 then\n"
    "      redis.call('ZREM', 'mg:notifier:queue', nid)\n"
    "    else\n"
    "      redis.call('ZADD', 'mg:notifier:queue', now + lease, nid)\n"
    "      redis.call('HINCRBY', key, 'attempts', 1)\n"
    "      local rec = redis.call('HGETALL', key)\n"
    "      local items = {}\n"
    "      local ik = redis.call('HGET', key, 'items_key')\n"
    "      if ik then\n"
    "        -- By score, then oldest first: the same order in each channel's digest.\n"
    "        local members, rows = redis.call('ZREVRANGE', ik, 0, -1, 'WITHSCORES'), {}\n"
    "        for j = 1, #members, 2 do\n"
    "          local f = redis.call('HMGET', nkey(members[j]), 'title', 'summary', 'link', 'created_at')\n"
    "          rows[#rows+1] = {f[1] or '', f[2] or '', members[j+1], f[3] or '',\n"
    "                           tonumber(members[j+1]) or 0, tonumber(f[4]) or 0, members[j]}\n"
    "        end\n"
    "        table.sort(rows, function(x, y)\n"
    "          if x[5] ~= y[5] then return x[5] > y[5] end\n"
    "          if x[6] ~= y[6] then return x[6] < y[6] end\n"
    "          return x[7] < y[7]\n"
    "        end)\n"
    "        for _, r in ipairs(rows) do\n"
    "          items[#items+1] = r[1]; items[#items+1] = r[2]; items[#items+1] = r[3]; items[#items+1] = r[4]\n"
    "        end\n"
    "      end\n"
    "      out[#out+1] = {nid, rec, items}\n"
    "    end\n"
    "  end\n"
    "  local first = redis.call('ZRANGE', 'mg:notifier:queue', 0, 0, 'WITHSCORES')\n"
    "  return {out, tonumber(first[2]) or -1}\n"
    "end\n"
    /* result: now, nid, outcome (delivered|retry|failed), next_due, error,
     * ttl_ms (of mg:notifier:failed, mark_failed()), inbox_max, to_inbox. A failed message
     * whose recipient is still on the staff (to_inbox = 1) is brought into
     * their inbox, a digest's items one by one: what could not be sent is
     * not lost to them. A delivered message keeps its record (the
     * idempotency key, its state for the CLI and the staff page) but not its
     * body, nor do a digest's items: nothing reads them again, and they were
     * most of the notifier's memory in Redis (an entry of the inbox keeps
     * its own). Delivered is final: the result of another send of it (a
     * second notifier's, after a lease ran out) changes nothing. */
    "if op == 'result' then\n"
    "  local now, nid, outcome = ARGV[2], ARGV[3], ARGV[4]\n"
    "  local key = nkey(nid)\n"
    "  if redis.call('EXISTS', key) == 0 or redis.call('HGET', key, 'state') == 'delivered' then\n"
    "    redis.call('ZREM', 'mg:notifier:queue', nid); return 0\n"
    "  end\n"
    "  if outcome == 'delivered' then\n"
    "    redis.call('HSET', key, 'state', 'delivered', 'delivered_at', now)\n"
    "    redis.call('ZREM', 'mg:notifier:queue', nid)\n"
    "    local f = redis.call('HMGET', key, 'staff', 'items_key')\n"
    "    local sent = f[2] and redis.call('ZRANGE', f[2], 0, -1) or {}\n"
    "    sent[#sent+1] = nid\n"
    "    for _, id in ipairs(sent) do\n"
    "      if not redis.call('ZSCORE', 'mg:inbox:' .. (f[1] or ''), id) then\n"
    "        redis.call('HDEL', nkey(id), 'text', 'html', 'vars', 'json')\n"
    "      end\n"
    "    end\n"
    "  elseif outcome == 'retry' then\n"
    "    redis.call('HSET', key, 'last_error', ARGV[6])\n"
    "    redis.call('ZADD', 'mg:notifier:queue', ARGV[5], nid)\n"
    "  else\n"
    "    mark_failed(nid, now, ARGV[6], ARGV[7])\n"
    "    if ARGV[9] == '1' then\n"
    "      local f = redis.call('HMGET', key, 'staff', 'items_key')\n"
    "      local nids = f[2] and redis.call('ZREVRANGE', f[2], 0, -1) or {nid}\n"
    "      inbox_bring(f[1], nids, tonumber(now), tonumber(ARGV[8]), false, tonumber(ARGV[7]))\n"
    "    end\n"
    "  end\n"
    "  return 1\n"
    "end\n"
    /* queued_for: staff, now -> {nid, due, kind, item, ...}: what waits in
     * the queue for `staff` after now. requeue: nid, was, due -> 1 if moved
     * from `was` to `due` (0: it left the queue or moved meanwhile). */
    "if op == 'queued_for' then\n"
    "  local out = {}\n"
    "  local q = redis.call('ZRANGEBYSCORE', 'mg:notifier:queue', '(' .. ARGV[3], '+inf', 'WITHSCORES')\n"
    "  for i = 1, #q, 2 do\n"
    "    local r = redis.call('HMGET', nkey(q[i]), 'staff', 'kind', 'item')\n"
    "    if r[1] == ARGV[2] then\n"
    "      out[#out + 1] = q[i]; out[#out + 1] = q[i + 1]; out[#out + 1] = r[2] or ''; out[#out + 1] = r[3] or ''\n"
    "    end\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "if op == 'requeue' then\n"
    "  if tonumber(redis.call('ZSCORE', 'mg:notifier:queue', ARGV[2]) or '-1') ~= tonumber(ARGV[3]) then return 0 end\n"
    "  redis.call('ZADD', 'mg:notifier:queue', 'XX', ARGV[4], ARGV[2])\n"
    "  return 1\n"
    "end\n"
    /* hold: nid, due. A claimed notification that must not go now (its
     * recipient's quiet hours) goes back to the queue at `due`; the claim's
     * attempt is given back, since nothing was sent (one delivered
     * meanwhile, by another notifier, stays out). */
    "if op == 'hold' then\n"
    "  local key = nkey(ARGV[2])\n"
    "  if redis.call('EXISTS', key) == 0 or redis.call('HGET', key, 'state') == 'delivered' then\n"
    "    redis.call('ZREM', 'mg:notifier:queue', ARGV[2]); return 0\n"
    "  end\n"
    "  redis.call('ZADD', 'mg:notifier:queue', ARGV[3], ARGV[2])\n"
    "  redis.call('HINCRBY', key, 'attempts', -1)\n"
    "  return 1\n"
    "end\n"
    /* digest: now, due (in the queue), ttl, staff, channel, date, nid, npairs, pairs. At most one
     * digest per (staff, channel, local date): the first call of the day
     * takes the day's slot even when nothing is pending (what arrives later
     * goes into the next day's digest). Its items move out of the pending set
     * into mg:digest:items:<nid>. An empty date flushes: the pending items
     * go now, whatever the day's slot (a member who left digest mode).
     * Returns 1 if queued. */
    "if op == 'digest' then\n"
    "  local now, due, ttl, staff, channel, date, nid = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7], ARGV[8]\n"
    "  local pend = 'mg:digest:' .. staff .. ':' .. channel\n"
    "  if date ~= '' then\n"
    "    local lastk = 'mg:digest:last:' .. staff .. ':' .. channel\n"
    "    if redis.call('GET', lastk) == date then return 0 end\n"
    "    redis.call('SET', lastk, date, 'EX', 259200)\n"
    "  end\n"
    "  -- What no longer is an opportunity leaves it: a match retired since\n"
    "  -- (match_retired()), a collective need's revision that a later one\n"
    "  -- replaced (mg:notifier:collective_rev).\n"
    "  for _, m in ipairs(redis.call('ZRANGE', pend, 0, -1)) do\n"
    "    local item = redis.call('HGET', nkey(m), 'item') or ''\n"
    "    local mid = string.match(item, '^match:(.*)$')\n"
    "    local cid, rev = string.match(item, '^cn:(.*):(%d+)$')\n"
    "    if (mid and match_retired(mid)) or\n"
    "        (cid and (tonumber(redis.call('HGET', 'mg:notifier:collective_rev', cid)) or 0) > tonumber(rev)) then\n"
    "      redis.call('ZREM', pend, m)\n"
    "      redis.call('HSET', nkey(m), 'state', 'dropped')\n"
    "    end\n"
    "  end\n"
    "  if redis.call('ZCARD', pend) == 0 then return 0 end\n"
    "  local key = nkey(nid)\n"
    "  if redis.call('EXISTS', key) == 1 then return 0 end\n"
    "  local items = 'mg:digest:items:' .. nid\n"
    "  redis.call('RENAME', pend, items)\n"
    "  redis.call('PEXPIRE', items, ttl)\n"
    "  local h = {'staff', staff, 'channel', channel, 'created_at', now, 'attempts', 0, 'state', 'pending',\n"
    "             'items_key', items, 'count', redis.call('ZCARD', items)}\n"
    "  local np = tonumber(ARGV[9])\n"
    "  for j = 0, np - 1 do h[#h+1] = ARGV[10+2*j]; h[#h+1] = ARGV[11+2*j] end\n"
    "  redis.call('HSET', key, unpack(h))\n"
    "  redis.call('PEXPIRE', key, ttl)\n"
    "  redis.call('ZADD', 'mg:notifier:queue', due, nid)\n"
    "  return 1\n"
    "end\n"
    /* digest_move: now, inbox_max, ttl_ms, then (staff, from, to) triples. What
     * waits for the digest of a channel now off joins the pending set of
     * channel `to` (its score kept, and the later expiry of the two), or,
     * with `to` empty (no e-mail nor webhook left), goes to the inbox
     * (inbox_bring()). An item (a match...) waits once per channel: one that
     * `to` has already (its other channel's copy) is not moved. Returns the
     * items moved. */
    "if op == 'digest_move' then\n"
    "  local now, inbox_max, inbox_ttl, total = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), 0\n"
    "  for j = 5, #ARGV - 2, 3 do\n"
    "    local staff = ARGV[j]\n"
    "    local from = 'mg:digest:' .. staff .. ':' .. ARGV[j+1]\n"
    "    local count = redis.call('ZCARD', from)\n"
    "    if count > 0 and ARGV[j+2] ~= '' then\n"
    "      local to = 'mg:digest:' .. staff .. ':' .. ARGV[j+2]\n"
    "      -- They wait for the next slot: one the other channel took today is\n"
    "      -- taken for this one too (else they would go at once, off-hour).\n"
    "      local fromlast = redis.call('GET', 'mg:digest:last:' .. staff .. ':' .. ARGV[j+1])\n"
    "      local tolast = 'mg:digest:last:' .. staff .. ':' .. ARGV[j+2]\n"
    "      if fromlast and (redis.call('GET', tolast) or '') < fromlast then\n"
    "        redis.call('SET', tolast, fromlast, 'EX', 259200)\n"
    "      end\n"
    "      local ttl = math.max(redis.call('PTTL', from), redis.call('PTTL', to))\n"
    "      local has = items_of(redis.call('ZRANGE', to, 0, -1))\n"
    "      local m = redis.call('ZRANGE', from, 0, -1, 'WITHSCORES')\n"
    "      for k = 1, #m, 2 do\n"
    "        local item = redis.call('HGET', nkey(m[k]), 'item')\n"
    "        if item and not has[item] then\n"
    "          has[item] = true\n"
    "          redis.call('ZADD', to, m[k+1], m[k])\n"
    "          total = total + 1\n"
    "        end\n"
    "      end\n"
    "      if ttl > 0 then redis.call('PEXPIRE', to, ttl) end\n"
    "    elseif count > 0 then\n"
    "      total = total + inbox_bring(staff, redis.call('ZRANGE', from, 0, -1), now, inbox_max, true, inbox_ttl)\n"
    "    end\n"
    "    if count > 0 then redis.call('DEL', from) end\n"
    "  end\n"
    "  return total\n"
    "end\n"
    /* digest_drop: now, ttl_ms (of mg:notifier:failed), then the ids of the
     * staff. What waits for the digest of someone no longer on the staff
     * (mg:digest:waiting names who may have something waiting) is marked
     * failed, as their immediate messages are when their turn comes: a
     * removed member gets no more, and it no longer shows as waiting.
     * Returns the items failed. */
    "if op == 'digest_drop' then\n"
    "  local now, keep, staff, total = tonumber(ARGV[2]), tonumber(ARGV[3]), {}, 0\n"
    "  for i = 4, #ARGV do staff[ARGV[i]] = true end\n"
    "  for _, id in ipairs(redis.call('SMEMBERS', 'mg:digest:waiting')) do\n"
    "    local left = 0\n"
    "    for _, channel in ipairs({'email', 'webhook'}) do\n"
    "      local pend = 'mg:digest:' .. id .. ':' .. channel\n"
    "      if staff[id] then\n"
    "        left = left + redis.call('ZCARD', pend)\n"
    "      else\n"
    "        for _, nid in ipairs(redis.call('ZRANGE', pend, 0, -1)) do\n"
    "          if redis.call('EXISTS', nkey(nid)) == 1 then\n"
    "            mark_failed(nid, now, 'recipient no longer on the staff', keep)\n"
    "            total = total + 1\n"
    "          end\n"
    "        end\n"
    "        redis.call('DEL', pend)\n"
    "      end\n"
    "    end\n"
    "    if left == 0 then redis.call('SREM', 'mg:digest:waiting', id) end\n"
    "  end\n"
    "  return total\n"
    "end\n"
    /* need: id, first_at, valid_from (start of its day in ms, 0 for none),
     * '1' for a report (need.reported: it only creates, as the matcher reads
     * it), then field/value pairs. A need seen for the first time is watched for
     * an answer from the later of the two (an update moves that while it is
     * watched); one already answered, closed or notified stays so (a replay
     * cannot bring it back). */
    "if op == 'need' then\n"
    "  local key = 'mg:notifier:need:' .. ARGV[2]\n"
    "  local cur = redis.call('HMGET', key, 'sid', 'seq', 'state', 'first_at')\n"
    "  if ARGV[5] == '1' and cur[2] then return 0 end\n"
    "  local state, h = cur[3], record_pairs(6, cur[1], cur[2])\n"
    "  if not h then return 0 end\n"
    "  if #h > 0 then redis.call('HSET', key, unpack(h)) end\n"
    "  if not state then\n"
    "    redis.call('HSET', key, 'state', 'open', 'first_at', ARGV[3])\n"
    "    redis.call('ZADD', 'mg:notifier:needs', math.max(tonumber(ARGV[3]), tonumber(ARGV[4])), ARGV[2])\n"
    "  elseif state == 'open' then\n"
    "    local first = tonumber(cur[4]) or tonumber(ARGV[3])\n"
    "    redis.call('ZADD', 'mg:notifier:needs', 'XX', math.max(first, tonumber(ARGV[4])), ARGV[2])\n"
    "  end\n"
    "  return 1\n"
    "end\n"
    "if op == 'need_state' then\n"
    "  local key = 'mg:notifier:need:' .. ARGV[2]\n"
    "  -- A close (ARGV[4], ARGV[5]) is void, as for the matcher, when it is\n"
    "  -- conditional (if_unchanged_since) and a later event changed the need, or\n"
    "  -- when it names another structure than the need's.\n"
    "  local cond, sid = tonumber(ARGV[4] or '0') or 0, ARGV[5] or ''\n"
    "  local cur = redis.call('HMGET', key, 'seq', 'sid', 'state')\n"
    "  if cond > 0 and cur[1] and tonumber(cur[1]) ~= cond then return 0 end\n"
    "  if sid ~= '' and cur[2] and cur[2] ~= sid then return 0 end\n"
    "  -- A close is final; an answer does not hide that the need was notified\n"
    "  -- as unanswered (the gateway reads `closed` for a collective need's list).\n"
    "  local state = cur[3]\n"
    "  if state ~= 'closed' and (ARGV[3] == 'closed' or state ~= 'notified') then\n"
    "    redis.call('HSET', key, 'state', ARGV[3])\n"
    "  end\n"
    "  redis.call('ZREM', 'mg:notifier:needs', ARGV[2])\n"
    "  return 1\n"
    "end\n"
    /* due_needs: cutoff, limit -> {id, HGETALL, structure name, structure
     * networks} of the needs without an answer since cutoff. */
    "if op == 'due_needs' then\n"
    "  local ids = redis.call('ZRANGEBYSCORE', 'mg:notifier:needs', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))\n"
    "  local out = {}\n"
    "  for _, id in ipairs(ids) do\n"
    "    local key = 'mg:notifier:need:' .. id\n"
    "    local sid = redis.call('HGET', key, 'sid') or ''\n"
    "    local st = redis.call('HMGET', 'mg:notifier:structure:' .. sid, 'name', 'networks')\n"
    "    out[#out+1] = {id, redis.call('HGETALL', key), st[1] or '', st[2] or ''}\n"
    "  end\n"
    "  return out\n"
    "end\n"
    /* put: key, '1' for a report (it only creates), field/value pairs (a
     * structure, offer or proposal the messages name later). A record with
     * a `sid` (an offer's provider) keeps it: a put naming another is
     * refused, as in the matcher; so is a record's `seq` not after the one
     * it has (an older event retried later), and a report (offer.published)
     * of a record already there (a report journaled after its own update,
     * as the matcher reads it). */
    /* structure: key, name, networks (its record's, comma-separated),
     * commune, the network a member.joined names ('' for an update). A
     * structure is a member of the networks it joined until it leaves,
     * whatever its record lists: `joined` keeps them, `listed` the record's,
     * and `networks` is both. */
    "if op == 'structure' then\n"
    "  -- `list` (comma-separated) with `item`, added unless it is there.\n"
    "  local function with(list, item)\n"
    "    if item == '' or string.find(',' .. list .. ',', ',' .. item .. ',', 1, true) then return list end\n"
    "    return list == '' and item or list .. ',' .. item\n"
    "  end\n"
    "  local joined = with(redis.call('HGET', ARGV[2], 'joined') or '', ARGV[6])\n"
    "  local nets = ARGV[4]\n"
    "  for net in string.gmatch(joined, '[^,]+') do nets = with(nets, net) end\n"
    "  redis.call('HSET', ARGV[2], 'name', ARGV[3], 'networks', nets, 'commune', ARGV[5], 'joined', joined,\n"
    "             'listed', ARGV[4])\n"
    "  return 1\n"
    "end\n"
    /* structure_left: key. A member.left: the networks it joined are its no
     * more; those its record lists stay (its name on later messages). */
    "if op == 'structure_left' then\n"
    "  if redis.call('EXISTS', ARGV[2]) == 0 then return 0 end\n"
    "  local listed = redis.call('HGET', ARGV[2], 'listed') or redis.call('HGET', ARGV[2], 'networks') or ''\n"
    "  redis.call('HSET', ARGV[2], 'networks', listed, 'joined', '')\n"
    "  return 1\n"
    "end\n"
    /* match: match id, revision, '1' if retired, ttl_ms. A revision after
     * the first (a retirement, or the pair proposed again): the latest one
     * handled is kept (mg:notifier:match:<mid>), so that a digest leaves a
     * retired match out and a proposal notified late is not. */
    "if op == 'match' then\n"
    "  local k = 'mg:notifier:match:' .. ARGV[2]\n"
    "  local cur = redis.call('GET', k)\n"
    "  if cur and (tonumber(string.match(cur, '^(%d+)')) or 0) >= tonumber(ARGV[3]) then return 0 end\n"
    "  redis.call('SET', k, ARGV[3] .. '|' .. ARGV[4], 'PX', ARGV[5])\n"
    "  return 1\n"
    "end\n"
    "if op == 'put' then\n"
    "  if ARGV[3] == '1' and redis.call('EXISTS', ARGV[2]) == 1 then return 0 end\n"
    "  local cur = redis.call('HMGET', ARGV[2], 'sid', 'seq')\n"
    "  local h = record_pairs(4, cur[1], cur[2])\n"
    "  if not h then return 0 end\n"
    "  redis.call('HSET', ARGV[2], unpack(h))\n"
    "  return 1\n"
    "end\n"
    /* get: '|', key, field, field, ..., '|', key, fields... -> one HMGET per
     * key, in order. */
    "if op == 'get' then\n"
    "  local out, key, fields = {}, nil, {}\n"
    "  for j = 2, #ARGV + 1 do\n"
    "    local a = ARGV[j]\n"
    "    if a == nil or a == '|' then\n"
    "      if key then out[#out+1] = redis.call('HMGET', key, unpack(fields)) end\n"
    "      key, fields = nil, {}\n"
    "    elseif not key then key = a\n"
    "    else fields[#fields+1] = a end\n"
    "  end\n"
    "  return out\n"
    "end\n"
    /* active: id, ttl_ms, gone. Only the notifier holding mg:notifier:active
     * sends (claims the queue, makes the digests, looks for unanswered
     * needs): it takes it when it is free, or held by `gone` (a notifier of
     * the same machine whose process has ended), and keeps it for ttl_ms;
     * with ttl_ms 0 it lets it go. Returns the holder. */
    "if op == 'active' then\n"
    "  local k, id, ttl, gone = 'mg:notifier:active', ARGV[2], tonumber(ARGV[3]), ARGV[4]\n"
    "  local holder = redis.call('GET', k)\n"
    "  if ttl == 0 then\n"
    "    if holder == id then redis.call('DEL', k) end\n"
    "    return ''\n"
    "  end\n"
    "  if not holder or holder == id or holder == gone then\n"
    "    redis.call('SET', k, id, 'PX', ttl)\n"
    "    return id\n"
    "  end\n"
    "  return holder\n"
    "end\n"
    /* staff: now, ttl_ms. Every staff member as {id, HGETALL}, by id; and
     * every inbox (the staff's, those of mg:inboxes: the default recipient
     * undeclared, a member removed), each once, trimmed of the entries older
     * than ttl_ms (their records have expired: the counts of the CLI and the
     * gateway are ZCARDs); one left empty leaves mg:inboxes. */
    "if op == 'staff' then\n"
    "  local out, ids = {}, redis.call('SMEMBERS', 'mg:staff')\n"
    "  local before, inboxes = '(' .. (tonumber(ARGV[2]) - tonumber(ARGV[3])), {}\n"
    "  table.sort(ids)\n"
    "  for _, id in ipairs(ids) do\n"
    "    out[#out+1] = {id, redis.call('HGETALL', 'mg:staff:' .. id)}\n"
    "    inboxes[id] = true\n"
    "  end\n"
    "  for _, id in ipairs(redis.call('SMEMBERS', 'mg:inboxes')) do inboxes[id] = true end\n"
    "  for id in pairs(inboxes) do\n"
    "    redis.call('ZREMRANGEBYSCORE', 'mg:inbox:' .. id, '-inf', before)\n"
    "    if redis.call('EXISTS', 'mg:inbox:' .. id) == 0 then redis.call('SREM', 'mg:inboxes', id) end\n"
    "  end\n"
    "  return out\n"
    "end\n"
    /* staff_sync: n, then per [staff.<id>] section of the config: id, npairs,
     * pairs. The config owns the records it wrote (origin=config): they are
     * written again as the config says, and removed when their section is
     * gone. A record added or edited with `maillage staff` (origin=cli, or
     * no origin) and an id removed with it (mg:staff_removed) are left alone.
     * A removed id's tokens are revoked, as `maillage staff remove` does.
     * Returns {written ids, ids kept as the CLI left them, ids removed}. */
    "if op == 'staff_sync' then\n"
    "  local n, i = tonumber(ARGV[2]), 3\n"
    "  local declared, written, kept, dropped = {}, {}, {}, {}\n"
    "  for k = 1, n do\n"
    "    local id, np = ARGV[i], tonumber(ARGV[i+1])\n"
    "    local key = 'mg:staff:' .. id\n"
    "    declared[id] = true\n"
    "    local origin = redis.call('HGET', key, 'origin')\n"
    "    local fresh = redis.call('EXISTS', key) == 0\n"
    "    if redis.call('SISMEMBER', 'mg:staff_removed', id) == 1 or (not fresh and origin ~= 'config') then\n"
    "      kept[#kept+1] = id\n"
    "    else\n"
    "      local h = {'origin', 'config'}\n"
    "      for j = 0, np - 1 do h[#h+1] = ARGV[i+2+2*j]; h[#h+1] = ARGV[i+3+2*j] end\n"
    "      redis.call('DEL', key)\n"
    "      redis.call('HSET', key, unpack(h))\n"
    "      redis.call('SADD', 'mg:staff', id)\n"
    "      written[#written+1] = id\n"
    "    end\n"
    "    i = i + 2 + 2 * np\n"
    "  end\n"
    "  for _, id in ipairs(redis.call('SMEMBERS', 'mg:staff')) do\n"
    "    if not declared[id] and redis.call('HGET', 'mg:staff:' .. id, 'origin') == 'config' then\n"
    "      redis.call('DEL', 'mg:staff:' .. id)\n"
    "      redis.call('SREM', 'mg:staff', id)\n"
    "      revoke_staff_tokens(id)\n"
    "      dropped[#dropped+1] = id\n"
    "    end\n"
    "  end\n"
    "  return {written, kept, dropped}\n"
    "end\n"
    "return redis.error_reply('unknown operation ' .. tostring(op))\n";
/* clang-format on */
