//! A real `opti`-style server for tests: LocalStore on a temp dir, the shipped model,
//! the Router on a free loopback port, a clock the test can move, and a blocking client.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;

use opti_api::auth::{add_user, TokenAuthenticator};
use opti_api::model::ModelSlot;
use opti_api::{AppState, HmacBlobUrls, Inspector, Ports, Settings};
use opti_core::ports::{BlobStore, ConfigStore, InspectionStore, ModelRegistry};
use opti_core::routing::{RoutingDecision, RoutingPolicy};
use opti_core::types::{Inspection, ModelRecord, ModelStatus, Role, StatusCounts};
use opti_sim::{encode_image, generate, ImageFormat, SimParams};
use opti_store::local::LocalStore;
use serde_json::Value;
use time::OffsetDateTime;

/// The model the tests run: the shipped one unless OPTI_TEST_MODEL names another.
pub fn model_path() -> PathBuf {
    std::env::var_os("OPTI_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/default/model.onnx")
        })
}

const SIM_SEED: u64 = 7;

/// A generated part as the camera's JPEG.
pub fn sim_image(index: u64) -> Vec<u8> {
    let sample = generate(SIM_SEED, index, &SimParams::default());
    encode_image(&sample.image, ImageFormat::Jpeg { quality: 90 }).expect("encode")
}

/// Whether generated part `index` has a defect.
pub fn sim_defective(index: u64) -> bool {
    !generate(SIM_SEED, index, &SimParams::default())
        .labels
        .is_empty()
}

/// A multipart body with a `file` part and optional `camera_id`; returns (content type, body).
pub fn multipart(bytes: &[u8], filename: &str, camera: Option<&str>) -> (String, Vec<u8>) {
    let boundary = "----opti-test-boundary-7d1f";
    let mut body = Vec::new();
    if let Some(c) = camera {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"camera_id\"\r\n\r\n{c}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub struct TestServer {
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub store: Arc<LocalStore>,
    pub slot: Arc<ModelSlot>,
    pub base: String,
    pub admin_token: String,
    clock_offset: Arc<AtomicI64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    agent: ureq::Agent,
    users: AtomicU32,
    /// Wires retraining into the state at each launch (`None`: retraining off).
    learning: Option<LearningFactory>,
}

/// Builds the retraining wiring for a launched server from its store.
pub type LearningFactory =
    Arc<dyn Fn(Arc<LocalStore>) -> Arc<opti_api::learning::Learning> + Send + Sync>;

impl TestServer {
    pub fn start() -> Self {
        Self::start_inner(None)
    }

    /// A server with retraining wired in by `learning` (rebuilt at each restart, after
    /// which interrupted jobs are recovered as `opti serve` does).
    pub fn start_with_learning(learning: LearningFactory) -> Self {
        Self::start_inner(Some(learning))
    }

    fn start_inner(learning: Option<LearningFactory>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LocalStore::open(dir.path()).expect("open store"));
        let admin_token = rt
            .block_on(add_user(
                store.as_ref(),
                "admin",
                Role::Admin,
                OffsetDateTime::now_utc(),
            ))
            .expect("admin")
            .1;
        // A fresh connection per request: the server may close a connection after
        // refusing a request whose body it did not read (e.g. 415 before reading an
        // upload), and a pooled one would then fail the next request with "peer
        // disconnected" (a client-side race, not what the test checks).
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build()
            .into();
        let mut server = Self {
            rt,
            dir,
            store,
            slot: Arc::new(ModelSlot::new()),
            base: String::new(),
            admin_token,
            clock_offset: Arc::new(AtomicI64::new(0)),
            shutdown: None,
            agent,
            users: AtomicU32::new(0),
            learning,
        };
        server.launch();
        server
    }

    /// Builds the state (as `opti serve` does) and serves it on a free port.
    fn launch(&mut self) {
        let bytes =
            std::fs::read(model_path()).expect("the shipped model (models/default/model.onnx)");
        let slot = Arc::new(ModelSlot::new());
        let ports = Ports {
            inspections: self.store.clone(),
            audit: self.store.clone(),
            config: self.store.clone(),
            models: self.store.clone(),
            users: self.store.clone(),
            blobs: self.store.clone(),
            drift: self.store.clone(),
        };
        self.rt
            .block_on(opti_api::model::ensure_active_model(&ports, &slot, || {
                Ok((bytes, Value::Null))
            }))
            .expect("active model");
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        self.base = format!("http://127.0.0.1:{port}");
        let urls = Arc::new(HmacBlobUrls::new(
            b"test-signing-key-0123456789abcdef!".to_vec(),
            self.base.clone(),
        ));
        let offset = self.clock_offset.clone();
        let mut state = AppState::new(
            ports,
            Arc::new(TokenAuthenticator::new(self.store.clone())),
            slot.clone(),
            urls.clone(),
            Some(urls),
            Settings::default(),
            Arc::new(move || {
                OffsetDateTime::now_utc() + time::Duration::seconds(offset.load(Ordering::SeqCst))
            }),
        );
        if let Some(factory) = &self.learning {
            state = state.with_learning(factory(self.store.clone()));
            self.rt
                .block_on(opti_api::learning::recover_interrupted_jobs(&state))
                .expect("job recovery");
        }
        self.rt
            .block_on(opti_api::ingest::recover_unrecorded(&state))
            .expect("recovery");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = opti_api::router(state);
        self.rt.spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        self.shutdown = Some(tx);
        self.slot = slot;
    }

    /// Stops the server, reopens the store from disk and starts again on a new port.
    pub fn restart(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.store = Arc::new(LocalStore::open(self.dir.path()).expect("reopen store"));
        self.launch();
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::seconds(self.clock_offset.load(Ordering::SeqCst))
    }

    pub fn advance_clock(&self, seconds: i64) {
        self.clock_offset.fetch_add(seconds, Ordering::SeqCst);
    }

    /// A new user of `role` with a unique name; returns its token.
    pub fn token(&self, role: &str) -> String {
        let n = self.users.fetch_add(1, Ordering::SeqCst);
        self.named_token(role, &format!("{role}-{n}"))
    }

    pub fn named_token(&self, role: &str, name: &str) -> String {
        let role = Role::parse(role).expect("role");
        self.rt
            .block_on(add_user(
                self.store.as_ref(),
                name,
                role,
                OffsetDateTime::now_utc(),
            ))
            .expect("add user")
            .1
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
        content_type: Option<&str>,
    ) -> (u16, String) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let req = req.body(body.to_vec()).expect("request");
        match self.agent.run(req) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                (status, text)
            }
            // The server may close the connection early on an oversized body.
            Err(e) => (0, format!("transport error: {e}")),
        }
    }

    fn json_of(&self, (s, text): (u16, String)) -> (u16, Value) {
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (s, v)
    }

    pub fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.json_of(self.raw("GET", path, Some(token), b"", None))
    }

    pub fn post_json(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("json");
        self.json_of(self.raw("POST", path, Some(token), &bytes, Some("application/json")))
    }

    pub fn put_json(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("json");
        self.json_of(self.raw("PUT", path, Some(token), &bytes, Some("application/json")))
    }

    pub fn upload(
        &self,
        token: &str,
        bytes: &[u8],
        filename: &str,
        camera: Option<&str>,
    ) -> (u16, Value) {
        let (ct, body) = multipart(bytes, filename, camera);
        self.json_of(self.raw("POST", "/upload/", Some(token), &body, Some(&ct)))
    }

    pub fn put_url(&self, url: &str, bytes: &[u8], content_type: &str) -> (u16, Value) {
        self.json_of(self.raw("PUT", url, None, bytes, Some(content_type)))
    }

    pub fn get_bytes(&self, url: &str) -> (u16, Vec<u8>) {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        match self.agent.get(&url).call() {
            Ok(mut resp) => {
                let s = resp.status().as_u16();
                (s, resp.body_mut().read_to_vec().unwrap_or_default())
            }
            Err(e) => panic!("GET {url}: {e}"),
        }
    }

    /// Counts by status, number of audit events and blob keys: what "unchanged" means.
    pub fn snapshot(&self) -> (StatusCounts, usize, Vec<String>) {
        self.rt.block_on(async {
            let counts = self.store.count_by_status().await.expect("counts");
            let mut audit = 0;
            let mut q = opti_core::ports::AuditQuery {
                limit: 500,
                ..Default::default()
            };
            loop {
                let page = opti_core::ports::AuditLog::list_audit(self.store.as_ref(), &q)
                    .await
                    .expect("audit");
                audit += page.items.len();
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
            let blobs = self.store.list_blobs("raw/").await.expect("blobs");
            (counts, audit, blobs)
        })
    }

    /// Generated part indices: two defective and two clean ones.
    pub fn sample_indices(&self) -> Vec<(u64, bool)> {
        let mut defective = Vec::new();
        let mut clean = Vec::new();
        for i in 0..64 {
            let d = sim_defective(i);
            if d && defective.len() < 2 {
                defective.push((i, true));
            } else if !d && clean.len() < 2 {
                clean.push((i, false));
            }
        }
        defective.into_iter().chain(clean).collect()
    }

    /// What the routing policy says for this image under the stored config.
    pub fn expected_routing(&self, id: &Value, image: &[u8]) -> RoutingDecision {
        let config = self
            .rt
            .block_on(self.store.get_config())
            .expect("config")
            .value;
        let inspected = self.slot.inspect(image).expect("inspect");
        RoutingPolicy::new(&config).route(id.as_str().unwrap_or_default(), &inspected.output)
    }

    /// Uploads a part with every part forced to review; returns its id.
    pub fn pending_inspection(&self) -> String {
        let stored = self.rt.block_on(self.store.get_config()).expect("config");
        let mut forced = stored.value.clone();
        forced.threshold = 1.0;
        forced.audit_rate = 0.0;
        let v = self
            .rt
            .block_on(self.store.put_config(&forced, stored.version))
            .expect("put")
            .version;
        let camera = self.token("camera");
        let (s, body) = self.upload(&camera, &sim_image(1), "pending.jpg", Some("line-q"));
        assert_eq!(s, 201, "{body}");
        assert_eq!(body["status"], "pending_review", "{body}");
        self.rt
            .block_on(self.store.put_config(&stored.value, v))
            .expect("restore");
        body["id"].as_str().unwrap_or_default().to_string()
    }

    /// Stores an auto-validated inspection with this confidence, `minute` minutes after a
    /// fixed start, straight into the store (for windows and statistics).
    pub fn insert_inspection(&self, camera: &str, confidence: f32, minute: i64) -> Inspection {
        let at = OffsetDateTime::UNIX_EPOCH
            + time::Duration::days(20_000)
            + time::Duration::minutes(minute);
        let key = format!("raw/{camera}/synthetic-{minute}.jpg");
        let record = Inspection {
            id: opti_core::types::inspection_id(&format!("blob:{key}")),
            ingest_key: format!("blob:{key}"),
            image_key: key,
            camera_id: camera.to_string(),
            filename: None,
            captured_at: None,
            created_at: at,
            updated_at: at,
            model_version: "test".into(),
            detections: Vec::new(),
            decision: Some(opti_core::types::Decision::Clean),
            confidence,
            threshold_used: 0.6,
            status: opti_core::types::Status::AutoValidated,
            audit_sample: false,
            claim: None,
            review: None,
            rejection_reason: None,
            image_stats: None,
            version: 1,
        };
        self.rt
            .block_on(self.store.create_inspection(&record))
            .expect("insert")
            .0
    }

    pub fn store_inspection(&self, id: &str) -> Inspection {
        self.rt
            .block_on(self.store.get_inspection(id))
            .expect("inspection")
    }

    /// Registers the shipped model's bytes again as a candidate version.
    pub fn register_candidate(&self, version: &str, parent: &str) -> String {
        self.rt.block_on(async {
            let parent_record = self.store.get_model(parent).await.expect("parent");
            let bytes = self
                .store
                .get_blob(&parent_record.artifact_key)
                .await
                .expect("bytes");
            let key = format!("models/{version}/model.onnx");
            self.store
                .put_blob(&key, &bytes, "application/octet-stream")
                .await
                .expect("put");
            let record = ModelRecord {
                version: version.to_string(),
                parent: Some(parent.to_string()),
                status: ModelStatus::Candidate,
                artifact_key: key,
                record_version: 1,
                created_at: OffsetDateTime::now_utc(),
                ..parent_record
            };
            self.store.register_model(&record).await.expect("register");
        });
        version.to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
