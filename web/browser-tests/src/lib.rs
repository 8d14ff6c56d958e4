//! Harness of the browser tests: a real `opti serve` (fresh SQLite data dir, the shipped
//! model, the built web/dist) on a free port with parts streamed by `opti simulate`, a
//! chromedriver per test, headless Chromium sessions of a chosen window size, waits,
//! keyboard and mouse input, and screenshots under test-output/web.
//!
//! What a test needs is looked up by [`Setup::detect`]: `OPTI_BIN` (default: the `opti`
//! next to the test binary, i.e. `target/<profile>/opti`), `WEB_DIST` (default web/dist),
//! `OPTI_MODEL` (default models/default/model.onnx), `CHROMIUM`, `CHROMEDRIVER` (default:
//! found on PATH), `TEST_OUTPUT` (default test-output/web); the retraining journey also
//! needs the trainer's Python with Ultralytics (`OPTI_PYTHON`, default the venv of
//! `make venv`) and `OPTI_TRAINER_DIR` (default trainer/). When something is missing the
//! test prints a `SKIPPED` line and passes, unless `OPTI_REQUIRE_BROWSER=1` (set by
//! `make test-web`), where it fails.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{
    InputSource, KeyAction, KeyActions, MouseActions, PointerAction, MOUSE_BUTTON_LEFT,
};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Parts streamed into every test server.
pub const PARTS: u32 = 14;

/// How long a wait for the UI lasts before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The tools and files a browser test needs.
#[derive(Debug, Clone)]
pub struct Setup {
    pub opti: PathBuf,
    pub web_dist: PathBuf,
    pub model: PathBuf,
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    /// Where screenshots go (test-output/web).
    pub out: PathBuf,
}

fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().unwrap_or(here)
}

fn path_from_env(var: &str, default: PathBuf) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => {
            let p = PathBuf::from(v);
            if p.is_absolute() {
                p
            } else {
                root().join(p)
            }
        }
        _ => default,
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1" || v == "true")
}

impl Setup {
    /// Everything the browser tests need, or `None` (after printing `SKIPPED <test>: why`)
    /// when something is missing. Panics instead when `OPTI_REQUIRE_BROWSER=1`.
    pub fn detect(test: &str) -> Option<Setup> {
        let require = flag("OPTI_REQUIRE_BROWSER");
        if flag("OPTI_SKIP_BROWSER") && !require {
            println!("SKIPPED {test}: OPTI_SKIP_BROWSER=1 (make test runs it in test-web)");
            return None;
        }
        let beside_tests = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("opti")))
            .unwrap_or_else(|| root().join("target/debug/opti"));
        let setup = Setup {
            opti: path_from_env("OPTI_BIN", beside_tests),
            web_dist: path_from_env("WEB_DIST", root().join("web/dist")),
            model: path_from_env("OPTI_MODEL", root().join("models/default/model.onnx")),
            chromium: path_from_env(
                "CHROMIUM",
                on_path("chromium").unwrap_or_else(|| PathBuf::from("/usr/bin/chromium")),
            ),
            chromedriver: path_from_env(
                "CHROMEDRIVER",
                on_path("chromedriver").unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver")),
            ),
            out: path_from_env("TEST_OUTPUT", root().join("test-output/web")),
        };
        let mut missing = Vec::new();
        let checks = [
            (
                &setup.opti,
                "the opti binary (cargo test --workspace --no-run builds it)",
            ),
            (&setup.model, "the shipped model"),
            (&setup.chromium, "chromium (scripts/ensure-browser.sh)"),
            (
                &setup.chromedriver,
                "chromedriver (scripts/ensure-browser.sh)",
            ),
        ];
        for (path, what) in checks {
            if !path.is_file() {
                missing.push(format!("{what} at {}", path.display()));
            }
        }
        if !setup.web_dist.join("index.html").is_file() {
            missing.push(format!(
                "the built UI at {} (make web)",
                setup.web_dist.display()
            ));
        }
        if missing.is_empty() {
            return Some(setup);
        }
        let why = missing.join("; ");
        if require {
            panic!("browser test {test} cannot run (OPTI_REQUIRE_BROWSER=1): missing {why}");
        }
        println!("SKIPPED {test}: missing {why}");
        None
    }
}

/// The trainer a retraining server runs: its Python (with Ultralytics) and trainer/.
#[derive(Debug, Clone)]
pub struct Trainer {
    pub python: PathBuf,
    pub dir: PathBuf,
}

impl Trainer {
    /// The trainer's Python and folder, or `None` (after printing `SKIPPED <test>: why`)
    /// when the Python, Ultralytics in it, or trainer/ is missing. Panics instead when
    /// `OPTI_REQUIRE_BROWSER=1`, like the other prerequisites of the browser tests.
    pub fn detect(test: &str) -> Option<Trainer> {
        let venv = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/opti-quality/venv/bin/python"))
            .unwrap_or_else(|| PathBuf::from("/nonexistent/python"));
        let trainer = Trainer {
            python: path_from_env("OPTI_PYTHON", venv),
            dir: path_from_env("OPTI_TRAINER_DIR", root().join("trainer")),
        };
        let why = if !trainer.python.is_file() {
            Some(format!(
                "the trainer's Python at {} (make venv, or set OPTI_PYTHON)",
                trainer.python.display()
            ))
        } else if !trainer.dir.join("opti_trainer/__main__.py").is_file() {
            Some(format!("the trainer at {}", trainer.dir.display()))
        } else {
            // find_spec looks Ultralytics up without importing it (an import takes seconds).
            let found = Command::new(&trainer.python)
                .args([
                    "-c",
                    "import importlib.util, sys; sys.exit(importlib.util.find_spec('ultralytics') is None)",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            (!found).then(|| format!("Ultralytics in {} (make venv)", trainer.python.display()))
        };
        let Some(why) = why else {
            return Some(trainer);
        };
        if flag("OPTI_REQUIRE_BROWSER") {
            panic!("browser test {test} cannot run (OPTI_REQUIRE_BROWSER=1): missing {why}");
        }
        println!("SKIPPED {test}: missing {why}");
        None
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free local port");
    listener.local_addr().expect("its address").port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A running `opti serve` with its own temporary data dir, and a JSON client for its API.
pub struct Server {
    child: Child,
    /// e.g. `http://127.0.0.1:41234`.
    pub base: String,
    pub data: PathBuf,
    /// The admin token `opti serve` wrote into the data dir.
    pub admin: String,
    opti: PathBuf,
    agent: ureq::Agent,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts `opti serve` (extra arguments appended), waits for `/healthz`, sets a
    /// threshold no decision reaches (every part goes to a human) and streams [`PARTS`]
    /// simulated parts, mostly defective so that there are boxes to edit.
    pub fn start(setup: &Setup, extra: &[&str]) -> Server {
        let server = Server::start_bare(setup, free_port(), &setup.web_dist, extra);
        server.feed(setup);
        server
    }

    /// Starts `opti serve` on `port` serving the UI in `web_dist`, with no parts.
    pub fn start_bare(setup: &Setup, port: u16, web_dist: &Path, extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("opti-browser-")
            .tempdir()
            .expect("a temp dir");
        let data = dir.path().join("data");
        let log = File::create(dir.path().join("serve.log")).expect("serve.log");
        let child = Command::new(&setup.opti)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .args(["--port", &port.to_string()])
            .arg("--model")
            .arg(&setup.model)
            .arg("--web-dir")
            .arg(web_dist)
            .args(extra)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", setup.opti.display()));
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data,
            admin: String::new(),
            opti: setup.opti.clone(),
            agent: agent(),
            dir,
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = server.agent.get(format!("{}/healthz", server.base)).call() {
                if r.status().is_success() {
                    break;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("opti serve exited ({status}):\n{}", server.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "opti serve did not answer /healthz in 90 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server.admin = std::fs::read_to_string(server.data.join("admin.token"))
            .expect("admin.token in the data dir")
            .trim()
            .to_string();
        server
    }

    /// Sets a threshold no decision reaches and streams [`PARTS`] simulated parts.
    pub fn feed(&self, setup: &Setup) {
        let server = self;
        let (status, body) = server.call(
            "PUT",
            "/config",
            &server.admin,
            Some(json!({"threshold": 1.0})),
        );
        assert_eq!(status, 200, "PUT /config: {body}");
        let camera = server.add_user("camera", "cam-a");
        let out = Command::new(&setup.opti)
            .args(["simulate", "--count", &PARTS.to_string(), "--seed", "11"])
            .args(["--target", &format!("{}/upload/", server.base)])
            .args(["--rate", "100", "--token", &camera, "--camera-id", "line-a"])
            // A stream's default is 85 % clean parts, which an accurate model leaves
            // without boxes; the journeys need boxes to edit.
            .args(["--clean-fraction", "0.3"])
            .arg("--ground-truth")
            .arg(server.dir.path().join("truth.jsonl"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("opti simulate");
        assert!(
            out.status.success(),
            "opti simulate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A scratch folder of this server's temp dir (removed with it).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("scratch folder");
        p
    }

    /// A CORS preflight for `path` from `origin`: the `Access-Control-Allow-Origin` answer.
    pub fn preflight(&self, path: &str, origin: &str, method: &str) -> Option<String> {
        let resp = self
            .agent
            .options(format!("{}{path}", self.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .call()
            .unwrap_or_else(|e| panic!("OPTIONS {path}: {e}"));
        resp.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// What `opti serve` printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Adds a user with `opti users add`; returns the token.
    pub fn add_user(&self, role: &str, name: &str) -> String {
        let out = Command::new(&self.opti)
            .args(["users", "add", "--data-dir"])
            .arg(&self.data)
            .args(["--role", role, "--name", name])
            .output()
            .expect("opti users add");
        assert!(
            out.status.success(),
            "opti users add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("a token line")
            .trim()
            .to_string()
    }

    /// One API call as `token`: the status and the JSON body (`null` when empty).
    pub fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {token}");
        let result = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Authorization", &auth)
                .header("Accept", "application/json")
                .call(),
            (m, body) => {
                let text = body.map(|b| b.to_string()).unwrap_or_default();
                let req = match m {
                    "PUT" => self.agent.put(&url),
                    "POST" => self.agent.post(&url),
                    other => panic!("method {other} not supported by the test client"),
                };
                req.header("Authorization", &auth)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json")
                    .send(text.as_bytes())
            }
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// `GET path` as admin (or `token`), asserting 200.
    pub fn get_as(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.call("GET", path, token, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `GET path` as admin, asserting 200.
    pub fn get(&self, path: &str) -> Value {
        self.get_as(path, &self.admin)
    }

    /// The pending review items, most uncertain first.
    pub fn pending(&self) -> Vec<Value> {
        self.get("/inspections?status=pending_review&limit=200")["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chromedriver on a free port (one per test; it serves several browser sessions).
pub struct WebDriver {
    child: Child,
    pub url: String,
}

impl WebDriver {
    /// Starts chromedriver and waits until it reports ready.
    pub fn start(setup: &Setup) -> WebDriver {
        let port = free_port();
        let child = Command::new(&setup.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", setup.chromedriver.display()));
        let mut driver = WebDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let agent = agent();
        let started = Instant::now();
        loop {
            let ready = agent
                .get(format!("{}/status", driver.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver not ready in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session whose page (viewport) is `size` CSS pixels.
pub struct Browser {
    pub client: Client,
    pub base: String,
    pub size: (u32, u32),
    out: PathBuf,
}

impl Browser {
    /// Opens a browser on `driver` for the server at `base`.
    pub async fn open(setup: &Setup, driver: &WebDriver, base: &str, size: (u32, u32)) -> Browser {
        let (w, h) = size;
        let caps = json!({
            "goog:chromeOptions": {
                "binary": setup.chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         format!("--window-size={w},{h}"), "--force-device-scale-factor=1",
                         "--hide-scrollbars=false"],
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("a chromium session from chromedriver");
        let browser = Browser {
            client,
            base: base.to_string(),
            size,
            out: setup.out.clone(),
        };
        browser.fit_viewport().await;
        browser
    }

    /// Sizes the window so that the page itself (innerWidth × innerHeight) is `size`.
    async fn fit_viewport(&self) {
        let (w, h) = self.size;
        self.client
            .set_window_size(w, h)
            .await
            .expect("window size");
        let inner = self
            .script("return [window.innerWidth, window.innerHeight]", vec![])
            .await;
        let (iw, ih) = (
            inner[0].as_u64().unwrap_or(0),
            inner[1].as_u64().unwrap_or(0),
        );
        if (iw, ih) != (u64::from(w), u64::from(h)) && iw > 0 && ih > 0 {
            let ow = u64::from(w) + (u64::from(w)).saturating_sub(iw);
            let oh = u64::from(h) + (u64::from(h)).saturating_sub(ih);
            self.client
                .set_window_size(ow as u32, oh as u32)
                .await
                .expect("window size");
        }
    }

    /// Ends the session.
    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Opens `path` of the server.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// Runs `js` in the page and returns its result.
    pub async fn script(&self, js: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(js, args)
            .await
            .unwrap_or_else(|e| panic!("script {js}: {e}"))
    }

    /// Waits until `check` holds, polling; fails the test (with a screenshot) after [`PATIENCE`].
    pub async fn until<F>(&self, what: &str, check: F)
    where
        F: AsyncFnMut() -> bool,
    {
        self.until_within(what, PATIENCE, check).await;
    }

    /// Waits until `check` holds, polling; fails the test (with a screenshot) after `patience`.
    pub async fn until_within<F>(&self, what: &str, patience: Duration, mut check: F)
    where
        F: AsyncFnMut() -> bool,
    {
        let started = Instant::now();
        loop {
            if check().await {
                return;
            }
            if started.elapsed() > patience {
                let name = format!(
                    "FAILED-{}",
                    what.chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                        .collect::<String>()
                );
                self.shot(&name).await;
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                panic!("waited {patience:?} for: {what} (page {url}; screenshot {name})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The elements matching `css` now (possibly none).
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.all(css).await.len()
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                return e;
            }
            if started.elapsed() > PATIENCE {
                self.until(&format!("element {css}"), async || false).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the first element matching `css` now, if there is one.
    pub async fn try_text(&self, css: &str) -> Option<String> {
        let e = self.client.find(Locator::Css(css)).await.ok()?;
        e.text().await.ok()
    }

    /// The text of the first element matching `css` (waiting for it).
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    /// An attribute of the first element matching `css` now.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.client.find(Locator::Css(css)).await.ok()?;
        e.attr(name).await.ok().flatten()
    }

    /// Clicks the first element matching `css` (waiting for it).
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `text` into the first element matching `css` (waiting for it).
    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Replaces the value of the field `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear()
            .await
            .unwrap_or_else(|err| panic!("clear {css}: {err}"));
        e.send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("typing into {css}: {err}"));
    }

    /// Presses `keys` one after the other on whatever has the focus (each a character,
    /// or a WebDriver key code such as `'\u{e00c}'` for Escape).
    pub async fn keys(&self, keys: &str) {
        let mut seq = KeyActions::new("keyboard".to_string());
        for k in keys.chars() {
            seq = seq
                .then(KeyAction::Down { value: k })
                .then(KeyAction::Up { value: k });
        }
        self.client
            .perform_actions(seq)
            .await
            .unwrap_or_else(|e| panic!("keys {keys:?}: {e}"));
    }

    /// Drags with the mouse from a point of `element` given in fractions of its size
    /// (0..1 each) by `delta` CSS pixels.
    pub async fn drag(&self, element: &Element, start: (f64, f64), delta: (f64, f64)) {
        let r = self
            .script(
                "const b = arguments[0].getBoundingClientRect(); return [b.left, b.top, b.width, b.height];",
                vec![serde_json::to_value(element).expect("element reference")],
            )
            .await;
        let f = |i: usize| r[i].as_f64().unwrap_or(0.0);
        let (x, y) = (f(0) + start.0 * f(2), f(1) + start.1 * f(3));
        let step = Some(Duration::from_millis(50));
        let mouse = MouseActions::new("mouse".to_string())
            .then(PointerAction::MoveTo {
                duration: None,
                x: x.round(),
                y: y.round(),
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::MoveBy {
                duration: step,
                x: (delta.0 / 2.0).round(),
                y: (delta.1 / 2.0).round(),
            })
            .then(PointerAction::MoveTo {
                duration: step,
                x: (x + delta.0).round(),
                y: (y + delta.1).round(),
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client
            .perform_actions(mouse)
            .await
            .unwrap_or_else(|e| panic!("drag: {e}"));
    }

    /// Signs in with `token` on the login page (typed, then Enter) and waits for the user name.
    pub async fn login(&self, token: &str) {
        self.goto("/login").await;
        self.type_into("#token", token).await;
        self.click("#signin").await;
        self.until("signed in", async || self.count("#whoami").await > 0)
            .await;
    }

    /// Saves a screenshot as `test-output/web/<name>-<w>x<h>.png`.
    pub async fn shot(&self, name: &str) {
        let (w, h) = self.size;
        self.shot_at(&format!("{name}-{w}x{h}.png")).await;
    }

    /// Saves a screenshot at `test-output/web/<relative>`.
    pub async fn shot_at(&self, relative: &str) {
        let path = self.out.join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Waits for the annotator of `id` with its image decoded.
    pub async fn open_annotator(&self, id: &str) {
        self.goto(&format!("/review/{id}")).await;
        self.find("#annotator").await;
        self.until("the part image decoded", async || {
            self.script(
                "const i = document.getElementById('annotate-image'); return !!(i && i.complete && i.naturalWidth > 0);",
                vec![],
            )
            .await
                == json!(true)
        })
        .await;
    }
}

/// WebDriver key codes.
pub mod key {
    pub const ESCAPE: char = '\u{e00c}';
    pub const TAB: char = '\u{e004}';
    pub const ENTER: char = '\u{e007}';
}

/// A normalised point of the image that no box in `detections` covers (drawing starts there).
pub fn free_point(detections: &[Value]) -> (f64, f64) {
    let grid = [0.08, 0.3, 0.5, 0.7, 0.9];
    for y in grid {
        for x in grid {
            let covered = detections.iter().any(|d| {
                let b = |i: usize| d["bbox"][i].as_f64().unwrap_or(0.0);
                b(0) <= x && x <= b(2) && b(1) <= y && y <= b(3)
            });
            if !covered {
                return (x, y);
            }
        }
    }
    panic!("no free spot on the image")
}
