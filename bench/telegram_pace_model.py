#!/usr/bin/env python3
"""A model of the replay's Telegram pacing, in simulated time: where the seconds go, without a
build. Not a measurement (`bench/telegram_pace.py` is); a way to compare pacing and claim
orders before building one.

What it models (simplifications in brackets):
- the dataset's notices as `domain/src/rules.rs` makes them: artists then coordinators not
  already artists, `assigned` without artists skipped; priority `critical` for a `cancelled`
  less than 48 h before the start, `high` for other cancellations and modifications, `normal`
  otherwise. Each notice has an email delivery and, when the recipient has a chat, a Telegram
  one [in-app deliveries are published at commit, not claimed; emails cost nothing of their own];
- the drain loop of `bootstrap/src/startup.rs`: one dispatcher claiming up to 64 due deliveries
  a round in the order priority, `next_attempt_at` (a new delivery's is its creation, before any
  put-back's), id; each round costs `--round-ms` plus the sends it waits for [no 429s];
- `adapters/src/channels/pacing.rs`: each chat's slots one second apart, the bot's periods of
  1/30 s with one message each, a slot within 50 ms waited for in place, a later one put back,
  the governor's 30/s spacing and `leave()`'s one second per chat at send time.

    python3 bench/telegram_pace_model.py --dataset tests/data/planning-spring-2027.json

prints, for each round cost, the first-to-last span of the Telegram messages for the bot's
periods given first come, first served (`fcfs`, main before issue 12's longest queue first) and
longest queue first (`lqf`), with today's claim order and with put-back deliveries claimed before
the fresh ones of their priority (`putbacks-first`).
"""
import argparse
import collections
import datetime
import json

CHAT_INTERVAL = 1.0
PERIOD = 1 / 30
TOLERANCE = 0.020
INLINE_WAIT = 0.050
CANDIDATES = 32


def notices(dataset):
    chats = {r["id"]: r.get("telegram_chat_id") for r in dataset["recipients"]}
    out = []
    for e in dataset["events"]:
        artists = e.get("artist_ids", [])
        coordinators = [c for c in e.get("coordinator_ids", []) if c not in artists]
        if e["event"] == "assigned" and not artists:
            continue
        if e["event"] == "cancelled":
            starts = datetime.datetime.fromisoformat(e["planning"]["starts_at"])
            occurred = datetime.datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00"))
            priority = 3 if starts - occurred < datetime.timedelta(hours=48) else 2
        else:
            priority = 2 if e["event"] == "modified" else 1
        out.extend((priority, chats.get(r)) for r in artists + coordinators)
    return out


class Pacer:
    """`DestinationPacer::reserve`/`leave` with a bot calendar; `lqf` as in pacing.rs."""

    def __init__(self, lqf):
        self.lqf, self.lanes, self.origin, self.holders = lqf, {}, None, {}

    def period_of(self, at):
        return int((at - self.origin) / PERIOD + 1e-9)

    def start_of(self, period):
        return self.origin + period * PERIOD

    def movable(self, holder, chat, queue, now):
        dest, ticket = holder
        lane = self.lanes.get(dest)
        if dest == chat or not lane or ticket not in lane["reserved"]:
            return False
        slot = lane["reserved"][ticket]
        return (len(lane["reserved"]) < queue and slot > now + INLINE_WAIT + TOLERANCE
                and abs(lane["next"] - (slot + CHAT_INTERVAL)) < 1e-9)

    def reserve(self, chat, ticket, now):
        lane = self.lanes.setdefault(chat, {"next": now, "reserved": {}, "last": None})
        if ticket in lane["reserved"]:
            slot = lane["reserved"][ticket]
            if slot <= now + TOLERANCE:
                del lane["reserved"][ticket]
                return 0.0
            return slot - now
        if self.origin is None:
            self.origin = now
        current = self.period_of(now)
        self.holders = {p: h for p, h in self.holders.items() if p >= current}
        at = max(lane["next"], now)
        wanted = self.period_of(at)
        free = wanted
        while free in self.holders:
            free += 1
        given = free
        if self.lqf:
            queue = len(lane["reserved"]) + 1
            for period in range(wanted, min(free, wanted + CANDIDATES)):
                holder = self.holders[period]
                if self.movable(holder, chat, queue, now):
                    moved = self.lanes[holder[0]]
                    moved["reserved"][holder[1]] = self.start_of(free)
                    moved["next"] = self.start_of(free) + CHAT_INTERVAL
                    self.holders[free] = holder
                    given = period
                    break
        self.holders[given] = (chat, ticket)
        slot = max(at, self.start_of(given))
        lane["next"] = slot + CHAT_INTERVAL
        if slot <= now + TOLERANCE:
            return 0.0
        lane["reserved"][ticket] = slot
        return slot - now

    def leave(self, chat, now):
        lane = self.lanes[chat]
        at = now if lane["last"] is None else max(lane["last"] + CHAT_INTERVAL, now)
        lane["last"] = at
        return at - now


def replay(made, lqf, putbacks_first, round_cost, batch=64):
    pacer = Pacer(lqf)
    # [due at, id, chat or None (email), priority, put back?]
    pending = []
    for priority, chat in made:
        pending.append([0.0, len(pending), None, priority, False])
        if chat:
            pending.append([0.0, len(pending), chat, priority, False])
    now, sends, bot_free = 0.0, [], 0.0
    while pending:
        due = [d for d in pending if d[0] <= now + 1e-12]
        if not due:
            now = min(d[0] for d in pending)
            continue
        due.sort(key=lambda d: (-d[3], not (putbacks_first and d[4]), d[0], d[1]))
        claimed = due[:batch]
        taken = {d[1] for d in claimed}
        pending = [d for d in pending if d[1] not in taken]
        ends, back, admitted = [now + round_cost], [], []
        inline = []
        for d in claimed:
            if d[2] is None:
                continue
            wait = pacer.reserve(d[2], d[1], now)
            if wait == 0:
                admitted.append((now, d))
            elif wait <= INLINE_WAIT:
                inline.append((now + wait, d))
            else:
                back.append((now + max(wait, 0.010), d))
        for at, d in sorted(inline, key=lambda x: x[0]):
            wait = pacer.reserve(d[2], d[1], at)
            (admitted if wait == 0 else back).append((at if wait == 0 else at + wait, d))
        for at, d in sorted(admitted, key=lambda x: x[0]):
            at = max(at, bot_free)
            bot_free = at + PERIOD
            gap = pacer.leave(d[2], at)
            sends.append((at + gap, d[2]))
            ends.append(at + gap)
        for at, d in back:
            d[0], d[4] = at, True
            pending.append(d)
        now = max(ends)
    sends.sort()
    return sends[-1][0] - sends[0][0], len(sends)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--round-ms", type=float, nargs="*", default=[15, 30, 60, 100, 200])
    args = ap.parse_args()
    with open(args.dataset) as f:
        made = notices(json.load(f))
    per_chat = collections.Counter(chat for _, chat in made if chat)
    bound = max(max(per_chat.values()) - 1, sum(per_chat.values()) / 30)
    print(f"{sum(per_chat.values())} Telegram messages, {len(per_chat)} chats, bound {bound:.1f} s")
    for ms in args.round_ms:
        row = []
        for order in ("today", "putbacks-first"):
            for lqf in (False, True):
                span, _ = replay(made, lqf, order == "putbacks-first", ms / 1000)
                row.append(f"{order}/{'lqf' if lqf else 'fcfs'} {span:.1f} s")
        print(f"round {ms:g} ms: " + ", ".join(row))


if __name__ == "__main__":
    main()
