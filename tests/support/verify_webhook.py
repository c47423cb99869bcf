"""Verifies signed webhooks with the Standard Webhooks reference implementation (PyPI
`standardwebhooks`, pinned in requirements.txt), independently of Clairon's own signing code.

Reads one JSON object on stdin: {"secret": "whsec_...", "headers": {"webhook-id": ...,
"webhook-timestamp": ..., "webhook-signature": ...}, "body": "<the raw body as sent>"}.
Prints "verified" and exits 0 when the signature verifies (and the timestamp is within the
library's tolerance); prints the library's error and exits 1 otherwise.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    request = json.load(sys.stdin)
    try:
        Webhook(request["secret"]).verify(request["body"].encode("utf-8"), request["headers"])
    except Exception as error:  # the library raises WebhookVerificationError
        print(f"{type(error).__name__}: {error}")
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
