#!/usr/bin/env python3
"""A real SMTP server for Clairon's tests: it stores what it accepts and can refuse on cue.

Usage:
    python3 tests/support/smtp_sink.py --port 0 --maildir DIR [--script 451,250,550 ...]

It listens on 127.0.0.1 (port 0 picks a free one) with aiosmtpd (RFC 5321 server, 8BITMIME and
SMTPUTF8 offered), prints ``LISTENING <port>`` on stdout once it accepts connections, then prints
nothing more. Each DATA transaction takes the next reply code of the script (default 250):

- 250 accepts the message and writes ``DIR/<n>.eml`` (the raw bytes as received, after
  dot-unstuffing, RFC 5321 §4.5.2) and ``DIR/<n>.json`` (``{"mail_from": ..., "rcpt_tos": [...]}``),
  n counting accepted messages from 1; the JSON is written first and both files appear
  atomically (written aside, then renamed), so a reader that sees ``<n>.eml`` can read both;
- 451 answers "451 4.3.0 Try again later", 550 "550 5.1.1 Mailbox unavailable", and other 4xx/5xx
  codes a generic text with an RFC 3463 enhanced status.

Every DATA transaction, accepted or not, is appended to ``DIR/attempts.jsonl`` as
``{"attempt": k, "code": c, "mail_from": ..., "rcpt_tos": [...]}``. Logs go to stderr. It runs
until killed. It needs ``pip install aiosmtpd``.
"""

import argparse
import asyncio
import json
import logging
import os
import sys

try:
    from aiosmtpd.smtp import SMTP
except ImportError:  # pragma: no cover - reported to the Rust launcher through stderr
    sys.stderr.write(
        "smtp_sink.py: No module named 'aiosmtpd': install it with `pip install aiosmtpd`\n"
    )
    sys.exit(3)

REPLIES = {
    250: "250 2.0.0 OK: message accepted",
    421: "421 4.3.2 Service not available",
    450: "450 4.2.1 Mailbox busy, try again later",
    451: "451 4.3.0 Try again later",
    452: "452 4.3.1 Insufficient system storage",
    550: "550 5.1.1 Mailbox unavailable",
    552: "552 5.3.4 Message too big for system",
    554: "554 5.7.1 Message rejected",
}


def reply_for(code):
    if code in REPLIES:
        return REPLIES[code]
    return f"{code} {code // 100}.0.0 Scripted reply"


def parse_script(raw_values):
    codes = []
    for raw in raw_values:
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                code = int(item)
            except ValueError:
                raise argparse.ArgumentTypeError(f"not a reply code: {item!r}")
            if not (200 <= code <= 299 or 400 <= code <= 599):
                raise argparse.ArgumentTypeError(f"not a 2xx, 4xx or 5xx reply code: {code}")
            codes.append(code)
    return codes


def write_atomically(path, data):
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class SinkHandler:
    def __init__(self, maildir, script):
        self.maildir = maildir
        self.script = list(script)
        self.attempts = 0
        self.accepted = 0

    async def handle_DATA(self, server, session, envelope):
        code = self.script[self.attempts] if self.attempts < len(self.script) else 250
        self.attempts += 1
        mail_from = envelope.mail_from
        rcpt_tos = list(envelope.rcpt_tos)
        if 200 <= code <= 299:
            self.accepted += 1
            number = self.accepted
            side = json.dumps({"mail_from": mail_from, "rcpt_tos": rcpt_tos}).encode("utf-8")
            write_atomically(os.path.join(self.maildir, f"{number}.json"), side)
            write_atomically(os.path.join(self.maildir, f"{number}.eml"), envelope.original_content)
        with open(os.path.join(self.maildir, "attempts.jsonl"), "a", encoding="utf-8") as log:
            log.write(
                json.dumps(
                    {
                        "attempt": self.attempts,
                        "code": code,
                        "mail_from": mail_from,
                        "rcpt_tos": rcpt_tos,
                    }
                )
                + "\n"
            )
        logging.info("DATA #%d from %s to %s -> %d", self.attempts, mail_from, rcpt_tos, code)
        return reply_for(code)


async def serve(port, maildir, script):
    handler = SinkHandler(maildir, script)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, hostname="smtp-sink.test"),
        host="127.0.0.1",
        port=port,
    )
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"LISTENING {bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 picks one")
    parser.add_argument("--maildir", required=True, help="directory for accepted messages")
    parser.add_argument(
        "--script",
        action="append",
        default=[],
        help="reply codes for successive DATA transactions, comma-separated (default 250)",
    )
    args = parser.parse_args()
    try:
        script = parse_script(args.script)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    os.makedirs(args.maildir, exist_ok=True)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="smtp_sink %(levelname)s %(message)s"
    )
    try:
        asyncio.run(serve(args.port, args.maildir, script))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
