#!/usr/bin/env python3
"""Signs requests with botocore's SigV4Auth at a fixed time, for the Swift signer's byte-for-byte test.

stdin: a JSON list of {"method", "url", "headers": [[name, value], ...], "body": base64,
"accessKey", "secretKey", "token" (or null), "region", "service", "time": "YYYYMMDDTHHMMSSZ"}.
stdout: a JSON list, in order, of {"authorization", "amzDate", "securityToken" (or null),
"signedHeaders", "canonicalRequest"}. Only fake test credentials ever pass through here.
"""
import base64
import datetime
import json
import sys
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(case):
    fixed = datetime.datetime.strptime(case["time"], "%Y%m%dT%H%M%SZ")
    request = AWSRequest(method=case["method"], url=case["url"], data=base64.b64decode(case["body"]))
    for name, value in case["headers"]:
        request.headers[name] = value  # HTTPHeaders appends, so repeated names stay repeated
    auth = botocore.auth.SigV4Auth(Credentials(case["accessKey"], case["secretKey"], case["token"]),
                                   case["service"], case["region"])
    captured = []
    original = auth.canonical_request

    def capture(req):  # the canonical request add_auth signs (before Authorization is added)
        captured.append(original(req))
        return captured[-1]

    auth.canonical_request = capture
    # botocore reads the clock through this one function (naive UTC datetime).
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: fixed):
        auth.add_auth(request)
    canonical = captured[0]
    authorization = request.headers["Authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0]
    return {"authorization": authorization, "amzDate": request.headers["X-Amz-Date"],
            "securityToken": request.headers.get("X-Amz-Security-Token"), "signedHeaders": signed,
            "canonicalRequest": canonical}


def main():
    cases = json.load(sys.stdin)
    json.dump([sign(c) for c in cases], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
