"""The few S3 calls the stack makes to its local SeaweedFS (create the broker's bucket, check that an
object can be written), signed with AWS Signature V4 by hand: no S3 library is a dependency."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

REGION = "us-east-1"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign(method: str, url: str, creds: Credentials, body: bytes = b"", region: str = REGION,
         now: dt.datetime | None = None) -> dict:
    """The headers that authenticate one request (path-style URL)."""
    u = urllib.parse.urlsplit(url)
    now = now or dt.datetime.now(dt.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": u.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    query = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                     for k, v in sorted(urllib.parse.parse_qsl(u.query, keep_blank_values=True)))
    canonical = "\n".join([method, urllib.parse.quote(u.path or "/", safe="/-_.~"), query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + creds.secret_key).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    return headers


def request(method: str, url: str, creds: Credentials, body: bytes = b"", timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body if method in ("PUT", "POST") else None, method=method,
                                 headers=sign(method, url, creds, body))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def bucket_problem(endpoint: str, bucket: str, creds: Credentials) -> str | None:
    """Creates the bucket if missing and checks that an object can be written and deleted in it.
    Returns None when the object store is ready for the broker, else what failed (it may still be
    starting)."""
    try:
        status, body = request("PUT", f"{endpoint}/{bucket}", creds)
        if status not in (200, 204) and b"BucketAlreadyOwnedByYou" not in body:
            return f"create bucket {bucket}: HTTP {status} {body[:200]!r}"
        probe = f"{endpoint}/{bucket}/.fyp-ready"
        for method, ok in (("PUT", (200,)), ("DELETE", (200, 204))):
            status, body = request(method, probe, creds, b"ok" if method == "PUT" else b"")
            if status not in ok:
                return f"{method} {probe}: HTTP {status} {body[:200]!r}"
        return None
    except OSError as e:
        return f"{endpoint}: {e}"
