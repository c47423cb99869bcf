#!/usr/bin/env python3
"""Telegram pacing benchmark: how long `clairon replay` takes to deliver the dataset's Telegram
messages, against the bound the Bot API's limits set (1 message/s per chat, 30/s per bot).

A Bot API stand-in on 127.0.0.1 answers `sendMessage` as the real API does (a Message object)
and answers 429 with `parameters.retry_after` to a message that breaks a limit, so a sender that
goes faster than allowed is caught, not rewarded. Then it runs the replay and prints the figures.

    cargo build --release -p clairon-bootstrap --locked
    python3 bench/telegram_pace.py --bin target/release/clairon \
        --dataset tests/data/planning-spring-2027.json

`--detail` adds where the time went: the bot's sends per second since the first message, and
for the five busiest chats when their first and last messages left and every gap between two of
their messages longer than 1.1 s (a second lost). `--sends FILE` writes every accepted send as
`[seconds since the first, chat id]`, one JSON array.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
sent = []  # (monotonic s, chat id)
refused = collections.Counter()
last_per_chat = {}
bot_window = collections.deque()


class BotApi(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def answer(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not self.path.endswith("/sendMessage"):
            return self.answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        body = json.loads(raw)
        chat = str(body["chat_id"])
        now = time.monotonic()
        with lock:
            while bot_window and now - bot_window[0] >= 1.0:
                bot_window.popleft()
            # 0.95 s: a little slack for the two clocks' jitter, as the real API has.
            too_soon = chat in last_per_chat and now - last_per_chat[chat] < 0.95
            # 31: evenly spaced sends (one every 33 ms) put 31 in a window of exactly 1 s.
            if too_soon or len(bot_window) >= 31:
                refused["chat" if too_soon else "bot"] += 1
                return self.answer(429, {"ok": False, "error_code": 429,
                                         "description": "Too Many Requests: retry after 1",
                                         "parameters": {"retry_after": 1}})
            last_per_chat[chat] = now
            bot_window.append(now)
            sent.append((now, chat))
            n = len(sent)
        chat_id = int(chat) if chat.lstrip("-").isdigit() else chat
        self.answer(200, {"ok": True, "result": {
            "message_id": n, "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"}, "text": body.get("text", "")}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--detail", action="store_true",
                    help="print the per-second histogram and the busiest chats' lost seconds")
    ap.add_argument("--sends", help="write every accepted send to this JSON file")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    args.dataset = os.path.abspath(args.dataset)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BotApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ,
                   CLAIRON_DATABASE_URL=f"sqlite://{tmp}/bench.db",
                   CLAIRON_EMAIL_OUTBOX_DIR=f"{tmp}/mail",
                   CLAIRON_TELEGRAM_BOT_TOKEN="123456:bench",
                   CLAIRON_TELEGRAM_API_URL=f"http://127.0.0.1:{server.server_port}",
                   # Every modification sent at once, as before coalescing (issue 13): the
                   # figure is the pace of the same 483 messages.
                   CLAIRON_COALESCE_SECS="0",
                   CLAIRON_LOG="warn")
        start = time.monotonic()
        out = subprocess.run([args.bin, "replay", args.dataset], env=env, cwd=tmp,
                             capture_output=True, text=True)
        wall = time.monotonic() - start
    if out.returncode != 0:
        sys.exit(f"replay failed ({out.returncode}):\n{out.stderr[-3000:]}")
    per_chat = collections.Counter(chat for _, chat in sent)
    busiest = max(per_chat.values())
    # The fastest the limits allow: the busiest chat's messages 1 s apart, and 30/s in all.
    bound = max(busiest - 1, len(sent) / 30)
    span = sent[-1][0] - sent[0][0]
    print(out.stdout.strip())
    print(json.dumps({
        "telegram_messages": len(sent), "chats": len(per_chat), "busiest_chat": busiest,
        "first_to_last_s": round(span, 1), "replay_wall_s": round(wall, 1),
        "bound_s": round(bound, 1), "over_bound_pct": round(100 * (span / bound - 1), 1),
        "refused_429": dict(refused)}, indent=2))
    first = sent[0][0]
    if args.sends:
        with open(args.sends, "w") as f:
            json.dump([[round(t - first, 4), chat] for t, chat in sent], f)
    if args.detail:
        per_second = collections.Counter(int(t - first) for t, _ in sent)
        print("sends per second:", [per_second[s] for s in range(int(span) + 1)])
        times = collections.defaultdict(list)
        for t, chat in sent:
            times[chat].append(t - first)
        for chat, _ in per_chat.most_common(5):
            ts = times[chat]
            lost = [round(b - a, 2) for a, b in zip(ts, ts[1:]) if b - a > 1.1]
            print(f"chat {chat}: {len(ts)} messages, first {ts[0]:.2f} s, last {ts[-1]:.2f} s, "
                  f"gaps over 1.1 s: {lost}")


if __name__ == "__main__":
    main()
