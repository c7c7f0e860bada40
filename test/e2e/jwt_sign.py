#!/usr/bin/python3
"""Signs a JWT with PyJWT, an implementation independent of ours (the JWT e2e test).

Usage: jwt_sign.py ALG KEY_FILE|secret:TEXT|- CLAIMS_JSON   prints the token
       jwt_sign.py HS256 hmac-with-file:PUBLIC_KEY_FILE CLAIMS_JSON   the confusion attack
       jwt_sign.py --verify TOKEN PUBLIC_KEY_FILE ALG   prints the verified claims as JSON
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt

if sys.argv[1] == "--verify":
    token, key_file, alg = sys.argv[2:5]
    with open(key_file) as f:
        claims = jwt.decode(token, f.read(), algorithms=[alg])
    print(json.dumps(claims, sort_keys=True))
    sys.exit(0)

alg, key_file, claims = sys.argv[1:4]
if alg == "HS256" and key_file.startswith("hmac-with-file:"):
    # The algorithm-confusion attack: HS256 with a public key's PEM as the secret. PyJWT refuses
    # to make such a token, so it is made here by hand.
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    with open(key_file[len("hmac-with-file:"):], "rb") as f:
        secret = f.read()
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(claims.encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    print(signing_input + "." + b64(mac))
    sys.exit(0)
if alg == "none":
    key = None
elif key_file.startswith("secret:"):
    key = key_file[len("secret:"):]
else:
    with open(key_file) as f:
        key = f.read()
print(jwt.encode(json.loads(claims), key, algorithm=alg))
