#!/usr/bin/env python3
"""Verify a koobridge webhook delivery, with the Python standard library only.

A delivery is a POST whose header

    Koobridge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

signs the raw request body. Recompute the HMAC over the bytes exactly as
received (before any JSON parsing), compare in constant time, reject a t
more than 5 minutes from your clock, and drop repeated Koobridge-Delivery
ids (store them under a unique constraint).

Command line (body on standard input; exit 0 valid, 1 invalid):

    WEBHOOK_SECRET=... python3 verify.py --header 't=...,v1=...' < body.json
"""

import argparse
import hashlib
import hmac
import os
import sys
import time

TOLERANCE_SECONDS = 5 * 60


def verify(secret, header, body, now=None):
    """Return True if header is a valid signature of body under secret at now.

    secret and body may be str or bytes; now is Unix seconds (default: the clock).
    """
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if isinstance(body, str):
        body = body.encode("utf-8")
    if now is None:
        now = time.time()
    ts, sigs = None, []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            ts = value
        elif key == "v1":
            sigs.append(value)
    if ts is None or not (ts.isascii() and ts.isdigit()) or not sigs:
        return False
    if abs(now - int(ts)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret, ts.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected.encode("ascii"), s.lower().encode("utf-8")) for s in sigs)


def main():
    parser = argparse.ArgumentParser(description="Verify one koobridge webhook delivery read from standard input.")
    parser.add_argument("--secret", default=os.environ.get("WEBHOOK_SECRET"),
                        help="the shared secret (default $WEBHOOK_SECRET)")
    parser.add_argument("--header", required=True, help="the Koobridge-Signature header value")
    parser.add_argument("--now", type=float, default=None, help="the current time in Unix seconds")
    args = parser.parse_args()
    if not args.secret:
        parser.error("no secret: set --secret or WEBHOOK_SECRET")
    body = sys.stdin.buffer.read()
    if verify(args.secret, args.header, body, args.now):
        print("valid")
        return 0
    print("invalid signature", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
