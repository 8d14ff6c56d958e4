#!/usr/bin/env python3
"""The AWS-style local run, end to end, with the real Lambda runtime emulator.

Runs inside scripts/test-aws.sh (AWS_ENDPOINT_URL points at moto server):
  1. `opti-aws-setup` creates a fresh table and bucket and seeds the shipped model;
  2. `cargo lambda watch` serves the `upload` and `review` binaries on a free port
     (both built first, so the first invoke does not wait for a compile);
  3. a JPEG is put into the emulated S3 under a key that needs URL-encoding, and
     `cargo lambda invoke upload` sends the S3 notification as S3 would;
  4. the same event again (a retried delivery), then a corrupt object;
  5. `cargo lambda invoke review` with API Gateway HTTP API events carrying a reviewer's
     Cognito claims reads the record and the counts back;
  6. the review function as plain HTTP through the watch's function URL: `/healthz`
     answers, `/stats` without Cognito claims is refused.
Exits non-zero with a message on the first expectation that does not hold.

Usage: scripts/lambda-local.py CARGO_LAMBDA   (cargo from PATH or $CARGO)
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(ROOT, "crates/vision/tests/fixtures/parity/images/synth_09_800x600.jpg")
REVIEWER = {"cognito:username": "rita", "cognito:groups": "[reviewer]", "sub": "s-1"}


def fail(msg):
    print(f"lambda-local: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_event(bucket, key, etag, size):
    """An S3 ObjectCreated notification as S3 sends it: key form-encoded, ETag unquoted."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-26T06:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:camera"},
        "requestParameters": {"sourceIPAddress": "10.0.0.7"}, "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "raw-uploads",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "x"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": urllib.parse.quote_plus(key, safe="/"), "size": size,
                          "eTag": etag.strip('"'), "sequencer": "0A1B2C3D4E5F678901"}},
    }]}


def api_event(path, claims):
    """An API Gateway HTTP API (v2) GET event whose JWT authorizer validated `claims`."""
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "api.example.com"}, "isBase64Encoded": False,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": str(uuid.uuid4()), "routeKey": "$default",
            "stage": "$default", "time": "26/Nov/2026:06:00:00 +0000",
            "timeEpoch": int(time.time() * 1000),
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "10.0.0.9", "userAgent": "lambda-local"},
            "authorizer": {"jwt": {"claims": claims, "scopes": None}},
        },
    }


class Watch:
    def __init__(self, cargo_lambda, env, port, log_path):
        self.cargo_lambda, self.env, self.port = cargo_lambda, env, port
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [cargo_lambda, "lambda", "watch", "--ignore-changes", "--quiet",
             "-A", "127.0.0.1", "-P", str(port)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.log_path = log_path

    def wait_ready(self, seconds=120):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(f"cargo lambda watch exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.3)
        fail(f"cargo lambda watch did not listen on {self.port}:\n{self.tail()}")

    def invoke(self, function, payload):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(payload, f)
        try:
            out = subprocess.run(
                [self.cargo_lambda, "lambda", "invoke", function, "--data-file", f.name,
                 "-A", "127.0.0.1", "-P", str(self.port), "--output-format", "json"],
                cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600)
        finally:
            os.unlink(f.name)
        if out.returncode != 0:
            fail(f"cargo lambda invoke {function}: {out.stderr.strip()}\n{self.tail()}")
        try:
            return json.loads(out.stdout)
        except json.JSONDecodeError:
            fail(f"cargo lambda invoke {function} printed no JSON: {out.stdout!r}")

    def tail(self):
        self.log.flush()
        with open(self.log_path) as f:
            return "".join(f.readlines()[-30:])

    def stop(self):
        # The whole process group (watch and the function binaries it started), even
        # when the leader has already exited.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:
                time.sleep(0.5)  # children that got SIGTERM with the leader
        self.log.close()
        os.unlink(self.log_path)


def api_get(watch, path):
    resp = watch.invoke("review", api_event(path, REVIEWER))
    body = resp.get("body") or ""
    if resp.get("isBase64Encoded"):
        import base64
        body = base64.b64decode(body).decode()
    return resp.get("statusCode"), json.loads(body) if body else None


def main():
    # A killed run (CI timeout, Ctrl-C) still stops the emulator: exit through `finally`.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: sys.exit(128 + s))
    if len(sys.argv) != 2:
        fail("usage: scripts/lambda-local.py CARGO_LAMBDA")
    cargo_lambda = sys.argv[1]
    cargo = os.environ.get("CARGO", "cargo")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    expect(endpoint, "AWS_ENDPOINT_URL is not set (run through scripts/test-aws.sh)")
    tag = uuid.uuid4().hex[:8]
    env = dict(os.environ, OPTI_TABLE=f"local-{tag}", OPTI_BUCKET=f"local-{tag}",
               OPTI_SEED_MODEL_KEY="seed/model.onnx", RUST_LOG="info")
    started = time.time()

    def run(*cmd):
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)

    run(cargo, "run", "--quiet", "-p", "opti-lambda", "--bin", "opti-aws-setup")
    # `cargo lambda watch` runs `cargo run --bin NAME` for each function on first invoke;
    # built here, that run finds them up to date.
    run(cargo, "build", "--quiet", "-p", "opti-fn-upload", "--bin", "upload")
    run(cargo, "build", "--quiet", "-p", "opti-fn-review", "--bin", "review")

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = env["OPTI_BUCKET"]
    with open(IMAGE, "rb") as f:
        jpeg = f.read()
    key = "raw/cam-7/line-2/part=7@0600.jpg"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=jpeg, ContentType="image/jpeg")["ETag"]
    bad_key = "raw/cam-7/torn.jpg"
    bad_etag = s3.put_object(Bucket=bucket, Key=bad_key, Body=jpeg[: len(jpeg) // 3],
                             ContentType="image/jpeg")["ETag"]

    watch = Watch(cargo_lambda, env, free_port(), os.path.join(tempfile.gettempdir(),
                                                               f"lambda-watch-{tag}.log"))
    try:
        watch.wait_ready()
        event = s3_event(bucket, key, etag, len(jpeg))
        first = watch.invoke("upload", event)
        expect(isinstance(first, list) and len(first) == 1 and first[0].get("outcome") == "created",
               f"upload: expected one created record, got {first}")
        record_id, status = first[0]["id"], first[0]["status"]
        expect(status in ("auto_validated", "pending_review"), f"upload: a readable image got status {status}")
        print(f"upload: {key!r} -> {record_id} ({status})")

        again = watch.invoke("upload", event)
        expect(again == [{"outcome": "duplicate", "id": record_id}],
               f"upload: the retried event should find {record_id}, got {again}")
        print("upload: the same event again -> duplicate, nothing new")

        torn = watch.invoke("upload", s3_event(bucket, bad_key, bad_etag, len(jpeg) // 3))
        expect(len(torn) == 1 and torn[0].get("status") == "rejected",
               f"upload: a truncated JPEG should be recorded as rejected, got {torn}")
        print(f"upload: truncated JPEG -> {torn[0]['id']} (rejected)")

        code, body = api_get(watch, f"/inspections/{record_id}")
        expect(code == 200, f"review: GET /inspections/{record_id} answered {code}: {body}")
        expect(body.get("id") == record_id and body.get("status") == status,
               f"review: the record read back differs: {body}")
        expect(body.get("camera_id") == "cam-7", f"review: camera from the key expected cam-7: {body}")
        code, stats = api_get(watch, "/stats")
        expect(code == 200, f"review: GET /stats answered {code}: {stats}")
        expect(stats.get("total") == 2, f"review: two records expected in /stats, got {stats}")
        resp = watch.invoke("review", api_event("/stats", {"cognito:username": "eve",
                                                           "cognito:groups": "[visitors]"}))
        expect(resp.get("statusCode") in (401, 403),
               f"review: a caller without a role should be refused, got {resp.get('statusCode')}")
        print(f"review: record and /stats read back through API Gateway events (total {stats['total']})")

        # The same function as a plain HTTP endpoint: cargo lambda watch's function URL.
        url = f"http://127.0.0.1:{watch.port}/lambda-url/review/healthz"
        with urllib.request.urlopen(url, timeout=120) as resp:
            health = json.loads(resp.read())
        expect(resp.status == 200 and health.get("status") == "ok",
               f"review: GET {url} answered {resp.status}: {health}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{watch.port}/lambda-url/review/stats",
                                   timeout=120)
            fail("review: /stats over the function URL (no Cognito claims) should be refused")
        except urllib.error.HTTPError as e:
            expect(e.code == 401, f"review: /stats without claims answered {e.code}, not 401")
        print("review: /healthz over the function URL, /stats without claims refused (401)")
    finally:
        watch.stop()
    print(f"lambda-local: OK in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
