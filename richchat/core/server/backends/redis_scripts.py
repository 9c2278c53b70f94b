"""The Lua scripts of the Redis backend: every change of shared state is one script, so it is
atomic and lands in the event log in the same step (a node that reads the state and then the
log from the position read with it sees every change exactly once).

Keys (``P`` is the cluster's prefix, ``richchat:{CLUSTER}:``; the braces are a Redis Cluster
hash tag, so every key of one chat lives in one slot):

=========================  ======  ==========================================================
key                        type    what
=========================  ======  ==========================================================
``P log``                  stream  every room and presence event, in the one order of the chat
                                   (trimmed to ``LOG_MAXLEN`` entries)
``P hist:ROOM``            stream  the messages of ROOM, under the same ids as in the log
                                   (trimmed to the retention)
``P histrooms``            set     rooms with a history stream
``P msgid``                hash    ROOM -> the last message id given in ROOM
``P names``                hash    name key -> ``NODE:TOKEN`` of the connection holding it
``P users``                hash    name key -> ``NODE US name US entry`` of registered users
``P rooms``                set     rooms with members
``P members:ROOM``         set     name keys of ROOM's members
``P order``                string  the last order number given to a registration or a join
``P uorder``               zset    name key -> order number of the user's registration
``P morder:ROOM``          zset    name key -> order number of the member's join of ROOM
``P topics``               hash    ROOM -> ``setter US text``
``P nodes``                zset    node id -> heartbeat deadline (ms, Redis clock)
``P applied:NODE``         string  the last sequence number of NODE's events applied
``P inbox:NODE``           stream  private messages to users on NODE
``P reaper``               string  the lock of the node reaping dead nodes (a few seconds)
``P id``                   string  the chat's id (what discovery shows for every node)
=========================  ======  ==========================================================

``US`` is the ASCII unit separator (``\\x1f``): it cannot occur in names, rooms or texts
(control characters are neutralised when a line comes in), except as the last field of a
message text, which readers split off last.

Log entries have one field ``e``: ``OP US ORIGIN US fields...`` where ORIGIN is
``NODE:SEQ`` (``reaper:0`` for what the reaper publishes) and OP is one of ``m`` (message:
room, id, ts, name, kind, text), ``j`` (joined: room, name, entry), ``p`` (parted: room,
name, reason), ``t`` (topic: room, setter, text), ``r`` (registered: name, entry), ``d``
(departed: name, reason), ``n`` (renamed: old, new, entry).

Exactly once: a node numbers its events and sends them in batches, one script call each
(atomic: applied whole or not at all); a batch whose last number is not above
``applied:NODE`` was applied before, so a batch sent again after a lost connection (when it is
unknown what Redis did with it) changes nothing twice. Claims and releases carry no number:
they are idempotent by themselves.
A node missing from ``nodes`` was reaped: its events are refused (``reaped``).

Order of members: the log orders registrations and joins, and every node lists users (the
lobby) and a room's members in that order, as one server lists them in the order they came.
A node that starts later learns it from ``uorder`` and ``morder:ROOM`` (the snapshot lists by
them); a rename keeps its number (its place). Users or members without a number (written by
an older version) are listed after the others.
"""

from __future__ import annotations

#: ARGV: prefix, node, last seq of the batch (0: none), log maxlen, retention, then each
#: event: op, seq, number of fields, fields... Returns one result per event (a message's
#: id, a claim's 1/0, 1 for the rest; ``dup`` for events of a batch applied before), or
#: ``reaped``. One call per batch: the script's fixed cost (about 5 us in Redis 7) is paid once
#: for many events, and a batch is applied whole or not at all.
APPLY = r"""
local p, node, last, maxlen, retention = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
if not redis.call('ZSCORE', p .. 'nodes', node) then return 'reaped' end
local S = '\31'
local applied = p .. 'applied:' .. node
local dup = last > 0 and last <= tonumber(redis.call('GET', applied) or '0')
if last > 0 and not dup then redis.call('SET', applied, last) end
local logkey, users = p .. 'log', p .. 'users'
-- a renamed user keeps its place in an order (zset): the old key's number, under the new key
local function move(zset, old, new)
  local n = redis.call('ZSCORE', zset, old)
  if not n then return end
  redis.call('ZREM', zset, old)
  redis.call('ZADD', zset, n, new)
end
local out = {}
local i = 6
while i <= #ARGV do
  local op, n, a = ARGV[i], tonumber(ARGV[i + 2]), i + 3
  local origin = node .. ':' .. ARGV[i + 1]
  i = a + n
  local r = 1
  if op == 'c' then -- claim: key, owner
    local cur = redis.call('HGET', p .. 'names', ARGV[a])
    if cur and cur ~= ARGV[a + 1] then
      r = 0
    else
      redis.call('HSET', p .. 'names', ARGV[a], ARGV[a + 1])
    end
  elseif op == 'x' then -- release (compare-and-delete): key, owner
    if redis.call('HGET', p .. 'names', ARGV[a]) == ARGV[a + 1] then
      redis.call('HDEL', p .. 'names', ARGV[a])
    end
  elseif dup then
    r = 'dup'
  elseif op == 'm' then -- room, ts, name, kind, text
    local room = ARGV[a]
    r = redis.call('HINCRBY', p .. 'msgid', room, 1)
    local body = room .. S .. r .. S .. ARGV[a + 1] .. S .. ARGV[a + 2] .. S .. ARGV[a + 3]
                 .. S .. ARGV[a + 4]
    local lid = redis.call('XADD', logkey, 'MAXLEN', '~', maxlen, '*', 'e',
                           'm' .. S .. origin .. S .. body)
    redis.call('XADD', p .. 'hist:' .. room, 'MAXLEN', '~', retention, lid, 'm', body)
    if r == 1 then redis.call('SADD', p .. 'histrooms', room) end
  elseif op == 'v' then -- private: target node, ts, sender, to, text
    redis.call('XADD', p .. 'inbox:' .. ARGV[a], 'MAXLEN', '~', 1000, '*', 'e',
               op .. S .. origin .. S .. ARGV[a + 1] .. S .. ARGV[a + 2] .. S .. ARGV[a + 3]
               .. S .. ARGV[a + 4])
  else
    local body
    if op == 'j' then -- room, key, name, entry
      redis.call('SADD', p .. 'rooms', ARGV[a])
      redis.call('SADD', p .. 'members:' .. ARGV[a], ARGV[a + 1])
      redis.call('ZADD', p .. 'morder:' .. ARGV[a], 'NX', redis.call('INCR', p .. 'order'),
                 ARGV[a + 1])
      body = ARGV[a] .. S .. ARGV[a + 2] .. S .. ARGV[a + 3]
    elseif op == 'p' then -- room, key, name, reason
      local members = p .. 'members:' .. ARGV[a]
      redis.call('SREM', members, ARGV[a + 1])
      redis.call('ZREM', p .. 'morder:' .. ARGV[a], ARGV[a + 1])
      if redis.call('SCARD', members) == 0 then redis.call('SREM', p .. 'rooms', ARGV[a]) end
      body = ARGV[a] .. S .. ARGV[a + 2] .. S .. ARGV[a + 3]
    elseif op == 't' then -- room, setter, text
      redis.call('HSET', p .. 'topics', ARGV[a], ARGV[a + 1] .. S .. ARGV[a + 2])
      body = ARGV[a] .. S .. ARGV[a + 1] .. S .. ARGV[a + 2]
    elseif op == 'r' then -- key, name, entry
      redis.call('HSET', users, ARGV[a], node .. S .. ARGV[a + 1] .. S .. ARGV[a + 2])
      redis.call('ZADD', p .. 'uorder', redis.call('INCR', p .. 'order'), ARGV[a])
      body = ARGV[a + 1] .. S .. ARGV[a + 2]
    elseif op == 'd' then -- key, name, reason
      redis.call('HDEL', users, ARGV[a])
      redis.call('ZREM', p .. 'uorder', ARGV[a])
      body = ARGV[a + 1] .. S .. ARGV[a + 2]
    elseif op == 'n' then -- old key, new key, old, new, entry
      redis.call('HDEL', users, ARGV[a])
      redis.call('HSET', users, ARGV[a + 1], node .. S .. ARGV[a + 3] .. S .. ARGV[a + 4])
      if ARGV[a] ~= ARGV[a + 1] then
        move(p .. 'uorder', ARGV[a], ARGV[a + 1])
        for _, room in ipairs(redis.call('SMEMBERS', p .. 'rooms')) do
          if redis.call('SREM', p .. 'members:' .. room, ARGV[a]) == 1 then
            redis.call('SADD', p .. 'members:' .. room, ARGV[a + 1])
            move(p .. 'morder:' .. room, ARGV[a], ARGV[a + 1])
          end
        end
      end
      body = ARGV[a + 2] .. S .. ARGV[a + 3] .. S .. ARGV[a + 4]
    else
      return redis.error_reply('unknown op ' .. op)
    end
    redis.call('XADD', logkey, 'MAXLEN', '~', maxlen, '*', 'e', op .. S .. origin .. S .. body)
  end
  out[#out + 1] = r
end
return out
"""

#: ARGV: prefix, node, ttl ms. Joins the cluster (or keeps the membership alive): 1, or 0 when
#: the node was reaped meanwhile and must not come back under the same id (``join`` = 1 adds
#: it anyway: the first heartbeat of a new node).
HEARTBEAT = r"""
local p, node, ttl, join = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if join ~= '1' and not redis.call('ZSCORE', p .. 'nodes', node) then return 0 end
redis.call('ZADD', p .. 'nodes', now + ttl, node)
return 1
"""

#: ARGV: prefix, node (the reaper), lock ms, log maxlen. The node holding the lock removes
#: every node whose heartbeat deadline passed: its users leave their rooms and the chat
#: (events in the log, as if they had disconnected), their names are free. Returns the
#: number of nodes reaped.
REAP = r"""
local p, me, lock_ms, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local S = '\31'
local lock = redis.call('GET', p .. 'reaper')
if lock and lock ~= me then return 0 end
redis.call('SET', p .. 'reaper', me, 'PX', lock_ms)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', p .. 'nodes', '-inf', now)
if #dead == 0 then return 0 end
local function log(op, body)
  redis.call('XADD', p .. 'log', 'MAXLEN', '~', maxlen, '*', 'e',
             op .. S .. 'reaper:0' .. S .. body)
end
local gone = {}
for _, node in ipairs(dead) do
  gone[node] = true
  redis.call('ZREM', p .. 'nodes', node)
  redis.call('DEL', p .. 'applied:' .. node, p .. 'inbox:' .. node)
end
local users = redis.call('HGETALL', p .. 'users')
local rooms = redis.call('SMEMBERS', p .. 'rooms')
for i = 1, #users, 2 do
  local key, value = users[i], users[i + 1]
  local s1 = string.find(value, S, 1, true)
  local node = string.sub(value, 1, s1 - 1)
  if gone[node] then
    local s2 = string.find(value, S, s1 + 1, true)
    local name = string.sub(value, s1 + 1, s2 - 1)
    for _, room in ipairs(rooms) do
      local members = p .. 'members:' .. room
      if redis.call('SREM', members, key) == 1 then
        redis.call('ZREM', p .. 'morder:' .. room, key)
        if redis.call('SCARD', members) == 0 then redis.call('SREM', p .. 'rooms', room) end
        log('p', room .. S .. name .. S .. 'connection lost')
      end
    end
    redis.call('HDEL', p .. 'users', key)
    redis.call('ZREM', p .. 'uorder', key)
    log('d', name .. S .. 'connection lost')
  end
end
local names = redis.call('HGETALL', p .. 'names')
for i = 1, #names, 2 do
  local owner = names[i + 1]
  local node = string.sub(owner, 1, (string.find(owner, ':', 1, true) or 0) - 1)
  if gone[node] then redis.call('HDEL', p .. 'names', names[i]) end
end
return #dead
"""

#: ARGV: prefix. The state of the chat and the log position it is the state at, in one step:
#: {last log id, users (flat key/value), {{room, {member keys}, {member keys in join
#: order}}...}, topics (flat), rooms with history, user keys in registration order}. (The
#: hash and the sets come in no particular order; the zsets give the chat's one order.)
SNAPSHOT = r"""
local p = ARGV[1]
local last = redis.call('XREVRANGE', p .. 'log', '+', '-', 'COUNT', 1)
local lid = '0-0'
if #last > 0 then lid = last[1][1] end
local rooms = {}
for _, room in ipairs(redis.call('SMEMBERS', p .. 'rooms')) do
  table.insert(rooms, {room, redis.call('SMEMBERS', p .. 'members:' .. room),
                       redis.call('ZRANGE', p .. 'morder:' .. room, 0, -1)})
end
return {lid, redis.call('HGETALL', p .. 'users'), rooms, redis.call('HGETALL', p .. 'topics'),
        redis.call('SMEMBERS', p .. 'histrooms'), redis.call('ZRANGE', p .. 'uorder', 0, -1)}
"""

#: ARGV: prefix, node. A node that stops cleanly leaves at once (nothing for the reaper).
LEAVE = r"""
local p, node = ARGV[1], ARGV[2]
redis.call('ZREM', p .. 'nodes', node)
redis.call('DEL', p .. 'applied:' .. node, p .. 'inbox:' .. node)
return 1
"""
