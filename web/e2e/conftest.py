"""Fixtures of the browser tests: a real `opti serve` (fresh SQLite data dir, the shipped
model, the built web/dist) on a free port, users made with `opti users add`, parts streamed
by `opti simulate --target` with a camera token, and headless Chromium via chromedriver.

Environment: OPTI_BIN (default target/debug/opti), WEB_DIST (default web/dist),
OPTI_MODEL (default models/default/model.onnx), TEST_OUTPUT (default test-output/web).
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
PARTS = 14


def _path(env, default):
    p = Path(os.environ.get(env, default))
    return p if p.is_absolute() else ROOT / p


class Server:
    """A running `opti serve` and a JSON client for its API."""

    def __init__(self, opti, data, port, proc):
        self.opti, self.data, self.port, self.proc = opti, data, port, proc
        self.base = f"http://127.0.0.1:{port}"
        self.admin = (data / "admin.token").read_text().strip()

    def add_user(self, role, name):
        out = subprocess.run(
            [str(self.opti), "users", "add", "--data-dir", str(self.data), "--role", role, "--name", name],
            check=True, capture_output=True, text=True,
        ).stdout
        return out.strip().splitlines()[-1].strip()

    def call(self, method, path, token, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, path, token=None):
        status, body = self.call("GET", path, token or self.admin)
        assert status == 200, (path, status, body)
        return body

    def pending(self, token=None):
        return self.get("/inspections?status=pending_review&limit=200", token)["items"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    opti = _path("OPTI_BIN", "target/debug/opti")
    web = _path("WEB_DIST", "web/dist")
    model = _path("OPTI_MODEL", "models/default/model.onnx")
    assert opti.is_file(), f"{opti} missing: build it (cargo build --bin opti)"
    assert (web / "index.html").is_file(), f"{web} missing: build the UI (make web)"
    tmp = Path(tempfile.mkdtemp(prefix="opti-web-e2e-"))
    data, port = tmp / "data", _free_port()
    log = open(tmp / "serve.log", "w")
    proc = subprocess.Popen(
        [str(opti), "serve", "--data-dir", str(data), "--port", str(port),
         "--model", str(model), "--web-dir", str(web)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((tmp / "serve.log").read_text())
            time.sleep(0.2)
    srv = Server(opti, data, port, proc)
    # Every part goes to a human in these tests: a threshold no decision reaches.
    status, body = srv.call("PUT", "/config", srv.admin, {"threshold": 1.0})
    assert status == 200, body
    camera = srv.add_user("camera", "cam-a")
    subprocess.run(
        [str(opti), "simulate", "--count", str(PARTS), "--seed", "11", "--target", base + "/upload/",
         "--rate", "100", "--token", camera, "--camera-id", "line-a",
         # Mostly defective parts: the journeys need items with boxes to edit (a stream's
         # default is 85 % clean parts, which an accurate model leaves without boxes).
         "--clean-fraction", "0.3",
         "--ground-truth", str(tmp / "truth.jsonl")],
        check=True, capture_output=True,
    )
    yield srv
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def out_dir():
    d = _path("TEST_OUTPUT", "test-output/web")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _chrome(width, height):
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_window_size(width, height)
    return driver


@pytest.fixture
def browser_factory():
    made = []

    def make(width=1366, height=768):
        d = _chrome(width, height)
        made.append(d)
        return d

    yield make
    for d in made:
        d.quit()


def wait_for(driver, predicate, timeout=20, message="condition"):
    return WebDriverWait(driver, timeout).until(lambda d: predicate(d), message)
