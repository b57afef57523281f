#!/usr/bin/env python3
"""Client half of koobridge's license service, in Python.

Activates or checks a KooGallery license code through the vendor's
koobridge and verifies the signed license token (a compact JWS, alg EdDSA,
RFC 8037) with the service's published Ed25519 keys. Needs the
`cryptography` package (Debian: python3-cryptography).

    license_client.py --url https://licenses.vendor.example activate PL0001 'MAC|DISK|BOARD|CPU'
    license_client.py --url https://licenses.vendor.example check PL0001 'MAC|DISK|BOARD|CPU'

Prints the token's claims as JSON. Exit 0 when the license may be used, 2
when it may not (frozen, released, expired, offline grace over, or the
service refused), 1 on any other error.
"""

import argparse
import base64
import datetime
import json
import sys
import urllib.error
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class BadToken(Exception):
    """The token does not verify, or was issued for another license or device."""


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def call(url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def verify(token, keys, code, fingerprint):
    """Returns the claims of token after checking its signature and binding."""
    try:
        header_b64, payload_b64, sig_b64 = token.split(".")
        header = json.loads(b64url(header_b64))
    except ValueError as e:
        raise BadToken("malformed token: %s" % e)
    if header.get("alg") != "EdDSA":
        raise BadToken("unexpected alg %r" % header.get("alg"))
    jwk = next((k for k in keys["keys"] if k.get("kid") == header.get("kid")), None)
    if jwk is None or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise BadToken("unknown key %r" % header.get("kid"))
    public = Ed25519PublicKey.from_public_bytes(b64url(jwk["x"]))
    try:
        public.verify(b64url(sig_b64), (header_b64 + "." + payload_b64).encode("ascii"))
    except InvalidSignature:
        raise BadToken("signature does not verify")
    claims = json.loads(b64url(payload_b64))
    if claims.get("license") != code or claims.get("fingerprint") != fingerprint:
        raise BadToken("issued for another license or device")
    return claims


def rfc3339(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def usable(claims, now):
    """None when the software may run, else the reason it may not."""
    if claims["status"] != "active":
        return "license %s is %s" % (claims["license"], claims["status"])
    if claims.get("expires") and now >= rfc3339(claims["expires"]):
        return "license %s expired at %s" % (claims["license"], claims["expires"])
    if now >= rfc3339(claims["validUntil"]):
        return "license %s was last confirmed too long ago" % claims["license"]
    return None


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("op", choices=["activate", "check"])
    p.add_argument("license")
    p.add_argument("fingerprint")
    a = p.parse_args(argv)
    base = a.url.rstrip("/")
    try:
        answer = call(base + "/api/v1/licenses/" + a.op, "POST",
                      {"license": a.license, "deviceFingerprint": a.fingerprint})
        keys = call(base + "/api/v1/licenses/keys")
        claims = verify(answer["token"], keys, a.license, a.fingerprint)
    except urllib.error.HTTPError as e:
        print("license service: HTTP %d: %s" % (e.code, e.read().decode(errors="replace")), file=sys.stderr)
        return 2 if e.code < 500 else 1
    except (urllib.error.URLError, BadToken, KeyError, ValueError) as e:
        print("license check failed: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(claims))
    reason = usable(claims, datetime.datetime.now(datetime.timezone.utc))
    if reason:
        print(reason, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
