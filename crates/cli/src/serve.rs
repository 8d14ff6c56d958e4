//! `opti serve`: the whole product on one machine — API and web UI on one port, embedded
//! storage (SQLite + files) in the data directory, the shipped model, and with `--demo` a
//! simulated camera feeding it through the real upload path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::{header, HeaderValue, Method};
use axum::Router;
use opti_api::auth::{add_user, TokenAuthenticator};
use opti_api::model::{ensure_active_model, ModelSlot};
use opti_api::{AppState, HmacBlobUrls, Ports, Settings};
use opti_core::ports::UserStore;
use opti_core::types::Role;
use opti_store::local::LocalStore;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};

/// The CORS layer for `--cors-origin`: exactly these origins may call the API from a
/// browser (bearer token in the `Authorization` header, no cookies), with the methods and
/// headers the web UI sends; preflights are answered before authentication. `None`
/// without origins. An origin that is not `scheme://host[:port]` is refused.
pub fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let mut allowed = Vec::with_capacity(origins.len());
    for origin in origins {
        let o = origin.trim();
        let rest = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
            .with_context(|| {
                format!("--cors-origin {o:?}: an origin starts with http:// or https://")
            })?;
        if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) {
            anyhow::bail!(
                "--cors-origin {o:?}: an origin is scheme://host[:port], without path, \
                 wildcard or trailing slash"
            );
        }
        allowed.push(
            HeaderValue::from_str(o)
                .with_context(|| format!("--cors-origin {o:?}: not a valid header value"))?,
        );
    }
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([Method::GET, Method::POST, Method::PUT])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .max_age(Duration::from_secs(600)),
    ))
}

/// Options of `opti serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Where the database, blobs, tokens and signing key live.
    #[arg(long, default_value = "data", env = "OPTI_DATA_DIR")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 8080, env = "OPTI_PORT")]
    pub port: u16,
    /// Address to listen on; use 0.0.0.0 to accept cameras on the network.
    #[arg(long, default_value = "127.0.0.1", env = "OPTI_HOST")]
    pub host: String,
    /// The ONNX model to register at first start (later starts use the registry's active model).
    #[arg(long, env = "OPTI_MODEL")]
    pub model: Option<PathBuf>,
    /// Threads one inference may use. Inferences already run one per core in parallel
    /// (as many slots as cores); above 1, an image that finds the thread pool free is
    /// split over it: a lone image 1.37× faster at 2 threads (shipped model), but a busy
    /// line then runs more compute threads than cores (about a fifth fewer images/s at 2).
    /// See docs/operations.md and docs/BENCHMARKS.md.
    #[arg(long, default_value_t = 1, env = "OPTI_INFERENCE_THREADS")]
    pub inference_threads: usize,
    /// Folder with the built web UI (index.html).
    #[arg(long, env = "OPTI_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Base URL cameras use to reach this server (for presigned upload URLs).
    #[arg(long, env = "OPTI_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Origin of a web UI served from elsewhere (e.g. the S3/CloudFront site whose
    /// `config.js` points `apiBase` here) that browsers may let call this API:
    /// `https://site.example.com` or `http://host:port`, no path. Repeatable or
    /// comma-separated. Without it only the UI served by this server (same origin) can call.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        env = "OPTI_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Also run a simulated camera that uploads generated parts.
    #[arg(long)]
    pub demo: bool,
    /// Seed of the demo camera's simulated line.
    #[arg(long, default_value_t = 2026)]
    pub demo_seed: u64,
    /// Seconds between two demo uploads.
    #[arg(long, default_value_t = 2.0)]
    pub demo_interval: f64,
    /// Largest accepted upload, in MiB.
    #[arg(long, default_value_t = 20)]
    pub max_upload_mib: usize,
    /// Seconds between scheduled drift evaluations (0: off). Each window with new data
    /// stores a report in the drift history; a new alarm episode is logged and sent to
    /// `--drift-webhook`.
    #[arg(long, default_value_t = 300, env = "OPTI_DRIFT_INTERVAL")]
    pub drift_interval: u64,
    /// URL that gets a JSON POST when a drift alarm episode opens (once per episode).
    #[arg(long, env = "OPTI_DRIFT_WEBHOOK")]
    pub drift_webhook: Option<String>,
    #[command(flatten)]
    pub retrain: RetrainArgs,
}

/// How `opti serve` retrains (`POST /retrain` and the automatic trigger).
#[derive(clap::Args, Debug, Clone)]
pub struct RetrainArgs {
    /// Turn retraining off (`POST /retrain` answers 503).
    #[arg(long, env = "OPTI_NO_RETRAIN")]
    pub no_retrain: bool,
    /// Python with the trainer's requirements [default: the venv of `make venv`, else python3].
    #[arg(long, env = "OPTI_PYTHON")]
    pub python: Option<PathBuf>,
    /// Folder holding the `opti_trainer` package [default: ./trainer or beside the executable].
    #[arg(long, env = "OPTI_TRAINER_DIR")]
    pub trainer_dir: Option<PathBuf>,
    /// Epochs of a fine-tune.
    #[arg(long, default_value_t = 10, env = "OPTI_RETRAIN_EPOCHS")]
    pub retrain_epochs: u32,
    /// Training image size.
    #[arg(long, default_value_t = 320, env = "OPTI_RETRAIN_IMGSZ")]
    pub retrain_imgsz: u32,
    #[arg(long, default_value_t = 16, env = "OPTI_RETRAIN_BATCH")]
    pub retrain_batch: u32,
    /// Replayed images of the shipped line per new training image (against forgetting).
    #[arg(long, default_value_t = 2.0, env = "OPTI_REPLAY_RATIO")]
    pub replay_ratio: f64,
    /// At most this many replayed images per fine-tune.
    #[arg(long, default_value_t = 400, env = "OPTI_REPLAY_MAX")]
    pub replay_max: usize,
    /// Images of the shipped line's val split in the gate's `line:shipped` slice (0: none).
    #[arg(long, default_value_t = 60, env = "OPTI_GATE_REFERENCE_IMAGES")]
    pub gate_reference_images: u64,
    /// Extra Ultralytics train argument for fine-tunes, e.g. `--trainer-set lr0=0.001`
    /// (repeatable). Applied after the built-in recipe (`optimizer=AdamW lr0=0.0003
    /// warmup_epochs=0`), so a key given here replaces the recipe's.
    #[arg(long = "trainer-set", value_name = "KEY=VALUE")]
    pub trainer_set: Vec<String>,
}

fn find_trainer_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    find_in_checkout(Path::new("trainer"), |p| {
        p.join("opti_trainer").join("__main__.py").is_file()
    })
    .and_then(|p| std::fs::canonicalize(p).ok())
}

/// `rel` under the current directory, else under one of the four folders above the
/// executable (`target/{debug,release}/opti` in a checkout): the first that `found`
/// accepts.
fn find_in_checkout(rel: &Path, found: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let mut candidates = vec![rel.to_path_buf()];
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(4) {
            candidates.push(dir.join(rel));
        }
    }
    candidates.into_iter().find(|p| found(p))
}

fn default_python() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/opti-quality/venv/bin/python"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// The retraining wiring of the local mode: the Python trainer as a subprocess, the
/// shipped line as replay data and as the gate's `line:shipped` slice.
fn local_learning(
    args: &RetrainArgs,
    data_dir: &Path,
    store: &Arc<LocalStore>,
) -> Result<Option<Arc<opti_api::learning::Learning>>> {
    use opti_api::learning::{Learning, LearningOptions, SubprocessTrainer};
    if args.no_retrain {
        return Ok(None);
    }
    let Some(trainer_dir) = find_trainer_dir(args.trainer_dir.as_deref()) else {
        tracing::warn!("trainer/ not found (set OPTI_TRAINER_DIR): retraining is off");
        return Ok(None);
    };
    anyhow::ensure!(
        args.retrain_epochs >= 1 && args.retrain_imgsz >= 32 && args.retrain_batch >= 1,
        "--retrain-epochs, --retrain-imgsz (≥ 32) and --retrain-batch must be positive"
    );
    anyhow::ensure!(
        args.replay_ratio.is_finite() && args.replay_ratio >= 0.0,
        "--replay-ratio must be ≥ 0"
    );
    let data_dir = std::fs::canonicalize(data_dir)
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    let line = Arc::new(crate::replay::ShippedLine::new(
        data_dir.join("replay").join("line-v1"),
        args.gate_reference_images,
    ));
    let trainer = SubprocessTrainer {
        python: args.python.clone().unwrap_or_else(default_python),
        trainer_dir,
        work_root: data_dir.join("runs"),
        replay: Some(line.clone()),
        replay_ratio: args.replay_ratio,
        replay_max: args.replay_max,
        extra: opti_api::learning::FINE_TUNE_RECIPE
            .iter()
            .map(|s| (*s).to_owned())
            .chain(args.trainer_set.iter().cloned())
            .collect(),
    };
    Ok(Some(Arc::new(Learning {
        jobs: store.clone(),
        trainer: Arc::new(trainer),
        reference: (args.gate_reference_images > 0).then_some(line as _),
        options: LearningOptions {
            epochs: args.retrain_epochs,
            imgsz: args.retrain_imgsz,
            batch: args.retrain_batch,
            ..LearningOptions::default()
        },
    })))
}

/// Stores the shipped model's training weights (`model.pt` beside the ONNX) for the
/// active version when it is the shipped model and they are not stored yet: fine-tuning
/// starts from them.
async fn attach_shipped_weights(
    state: &AppState,
    active: &str,
    model_arg: Option<&Path>,
) -> Result<()> {
    let key = opti_api::learning::weights_key(active);
    if state.ports.blobs.blob_size(&key).await?.is_some() {
        return Ok(());
    }
    let Ok(onnx_path) = default_model_path(model_arg) else {
        return Ok(());
    };
    let pt = onnx_path.with_file_name("model.pt");
    let Ok(onnx) = std::fs::read(&onnx_path) else {
        return Ok(());
    };
    if opti_api::model::version_for(&onnx, "default") != active || !pt.is_file() {
        return Ok(());
    }
    let bytes = std::fs::read(&pt).with_context(|| format!("reading {}", pt.display()))?;
    state
        .ports
        .blobs
        .put_blob(&key, &bytes, "application/octet-stream")
        .await?;
    Ok(())
}

/// Options of `opti users add`.
#[derive(clap::Args, Debug)]
pub struct UsersAddArgs {
    #[arg(long, default_value = "data", env = "OPTI_DATA_DIR")]
    pub data_dir: PathBuf,
    #[arg(long, value_parser = ["camera", "reviewer", "admin"])]
    pub role: String,
    #[arg(long)]
    pub name: String,
}

/// `opti users …`
#[derive(clap::Subcommand, Debug)]
pub enum UsersCommand {
    /// Create a user and print its bearer token (the last line of the output).
    Add(UsersAddArgs),
    /// List users and their roles.
    List {
        #[arg(long, default_value = "data", env = "OPTI_DATA_DIR")]
        data_dir: PathBuf,
    },
}

/// Runs `opti users …`.
pub fn users(cmd: UsersCommand) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match cmd {
            UsersCommand::Add(a) => {
                let role =
                    Role::parse(&a.role).context("role must be camera, reviewer or admin")?;
                let store = LocalStore::open(&a.data_dir)
                    .with_context(|| format!("opening {}", a.data_dir.display()))?;
                let (user, token) =
                    add_user(&store, &a.name, role, time::OffsetDateTime::now_utc())
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!("created {} {}", user.role.as_str(), user.name);
                println!("{token}");
            }
            UsersCommand::List { data_dir } => {
                let store = LocalStore::open(&data_dir)
                    .with_context(|| format!("opening {}", data_dir.display()))?;
                for u in store.list_users().await? {
                    println!("{:<10} {}", u.role.as_str(), u.name);
                }
            }
        }
        Ok(())
    })
}

/// Finds the shipped model: `--model`, else `models/default/model.onnx` next to the
/// current directory or above the executable.
pub fn default_model_path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    find_in_checkout(Path::new("models/default/model.onnx"), Path::is_file)
        .context("no model found: pass --model PATH or set OPTI_MODEL (the shipped one is models/default/model.onnx)")
}

fn find_web_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    find_in_checkout(Path::new("web/dist"), |p| p.join("index.html").is_file())
}

/// Reads the signing key, or creates one at first start. A key too short to be safe (a
/// torn write, a hand edit) is refused rather than used.
fn read_or_create_secret(path: &Path) -> Result<Vec<u8>> {
    if path.exists() {
        let key = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if key.len() < opti_api::signing::MIN_SECRET_BYTES {
            anyhow::bail!(
                "{} holds only {} bytes; delete it to have a new key made (signed URLs already handed out stop working)",
                path.display(),
                key.len()
            );
        }
        return Ok(key);
    }
    let key = opti_api::auth::new_token().into_bytes();
    write_private(path, &key)?;
    Ok(key)
}

/// Writes `bytes` to `path` readable by the owner only, atomically (temp file, fsync,
/// rename), so a crash leaves the old file or the new one, never a torn one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Runs `opti serve` until Ctrl-C or SIGTERM.
pub fn serve(args: ServeArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve_async(args))
}

async fn serve_async(args: ServeArgs) -> Result<()> {
    if let Some(url) = &args.drift_webhook {
        crate::drift_watch::check_webhook(url)?;
    }
    let store = LocalStore::open(&args.data_dir)
        .with_context(|| format!("opening data dir {}", args.data_dir.display()))?;
    let store = Arc::new(store);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    anyhow::ensure!(
        (1..=cores).contains(&args.inference_threads),
        "--inference-threads must be between 1 and the {cores} cores this process may use, got {}",
        args.inference_threads
    );
    let slot = Arc::new(
        ModelSlot::with_cache_dir(args.data_dir.join("model-cache"))
            .with_threads(args.inference_threads),
    );

    let secret = read_or_create_secret(&args.data_dir.join("signing.key"))?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}:{}", display_host(&args.host), args.port));
    let local_urls = Arc::new(HmacBlobUrls::new(secret, public_url.clone()));
    let ports = Ports {
        inspections: store.clone(),
        audit: store.clone(),
        config: store.clone(),
        models: store.clone(),
        users: store.clone(),
        blobs: store.clone(),
        drift: store.clone(),
    };
    let mut state = AppState::new(
        ports,
        Arc::new(TokenAuthenticator::new(store.clone())),
        slot.clone(),
        local_urls.clone(),
        Some(local_urls),
        Settings {
            max_upload_bytes: args.max_upload_mib * 1024 * 1024,
            ..Settings::default()
        },
        Arc::new(time::OffsetDateTime::now_utc),
    );

    let model_arg = args.model.clone();
    let active = ensure_active_model(&state.ports, &slot, move || {
        let path = default_model_path(model_arg.as_deref())?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let card = std::fs::read(path.with_file_name("model.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null);
        Ok((bytes, card))
    })
    .await?;
    tracing::info!(version = %active, "active model loaded");
    if let Some(learning) = local_learning(&args.retrain, &args.data_dir, &store)? {
        state = state.with_learning(learning);
        attach_shipped_weights(&state, &active, args.model.as_deref()).await?;
        let interrupted = opti_api::learning::recover_interrupted_jobs(&state)
            .await
            .map_err(|e| anyhow::anyhow!("recovering retraining jobs: {e}"))?;
        if interrupted > 0 {
            println!(
                "marked {interrupted} retraining job(s) interrupted by the last stop as failed"
            );
        }
    }
    let admin_token = bootstrap_admin(&store, &args.data_dir).await?;
    let recovered = opti_api::ingest::recover_unrecorded(&state)
        .await
        .map_err(|e| anyhow::anyhow!("recovering unrecorded uploads: {e}"))?;
    if recovered > 0 {
        println!("recovered {recovered} upload(s) that were stored but not recorded");
    }

    let mut app: Router = opti_api::routes::router_without_fallback(state.clone());
    match find_web_dir(args.web_dir.as_deref()) {
        Some(dir) => {
            let index = ServeFile::new(dir.join("index.html"));
            let spa = axum::routing::get(move |req: axum::extract::Request| async move {
                use tower::ServiceExt;
                let wants_html = req
                    .headers()
                    .get(axum::http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|a| a.contains("text/html"));
                if wants_html {
                    index
                        .oneshot(req)
                        .await
                        .map(axum::response::IntoResponse::into_response)
                } else {
                    Ok(axum::response::IntoResponse::into_response(
                        opti_api::routes::not_found().await,
                    ))
                }
            });
            app = app.fallback_service(ServeDir::new(&dir).fallback(spa));
        }
        None => {
            app = app.fallback(axum::routing::get(no_web_ui));
        }
    }

    if let Some(cors) = cors_layer(&args.cors_origins)? {
        println!(
            "CORS: browsers may call this API from {}",
            args.cors_origins.join(", ")
        );
        app = app.layer(cors);
    }

    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("invalid --host/--port {}:{}", args.host, args.port))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (is another server running?)"))?;
    let base = format!("http://{}:{}", display_host(&args.host), args.port);
    println!("Opti-Quality is running: {base}/  (API docs: {base}/docs)");
    match &admin_token {
        Some(token) => {
            println!(
                "First start: created user `admin`. Log in with this token (also saved to {}):",
                args.data_dir.join("admin.token").display()
            );
            println!("{token}");
        }
        None => println!(
            "Log in with the admin token in {} (or create users with `opti users add`).",
            args.data_dir.join("admin.token").display()
        ),
    }

    let shutdown = tokio_util_shutdown();
    let demo = if args.demo {
        let interval = Duration::from_secs_f64(args.demo_interval.max(0.05));
        println!(
            "Demo: camera `{}` uploads a simulated part every {:.1} s.",
            crate::demo::DEMO_CAMERA,
            interval.as_secs_f64()
        );
        Some(tokio::spawn(crate::demo::run(
            state.clone(),
            args.demo_seed,
            interval,
        )))
    } else {
        None
    };
    let drift = (args.drift_interval > 0).then(|| {
        tokio::spawn(crate::drift_watch::run(
            state.clone(),
            Duration::from_secs(args.drift_interval),
            args.drift_webhook.clone(),
        ))
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("server failed")?;
    if let Some(d) = demo {
        d.abort();
    }
    if let Some(d) = drift {
        d.abort();
    }
    println!("stopped; data kept in {}", args.data_dir.display());
    Ok(())
}

fn display_host(host: &str) -> &str {
    if host == "0.0.0.0" || host == "127.0.0.1" {
        "localhost"
    } else {
        host
    }
}

async fn no_web_ui() -> axum::response::Html<&'static str> {
    axum::response::Html(
        "<!doctype html><title>Opti-Quality</title><body style=\"font-family:sans-serif;background:#111;color:#eee\">\
         <h1>Opti-Quality</h1><p>The web UI is not built (web/dist is missing). \
         The API is up: see <a style=\"color:#8cf\" href=\"/docs\">/docs</a>.</p></body>",
    )
}

/// Resolves when the process gets Ctrl-C or SIGTERM.
async fn tokio_util_shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    println!("shutting down…");
}

/// At first start (no users at all) creates `admin` and saves its token, readable by
/// the owner only. Returns the new token, or `None` when users already exist.
async fn bootstrap_admin(store: &LocalStore, data_dir: &Path) -> Result<Option<String>> {
    if !store.list_users().await?.is_empty() {
        return Ok(None);
    }
    let (_, token) = add_user(store, "admin", Role::Admin, time::OffsetDateTime::now_utc())
        .await
        .map_err(|e| anyhow::anyhow!("creating the admin user: {e}"))?;
    write_private(
        &data_dir.join("admin.token"),
        format!("{token}\n").as_bytes(),
    )?;
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::cors_layer;

    fn origins(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_cors_origin_means_same_origin_only() {
        assert!(cors_layer(&[]).expect("no origins is fine").is_none());
    }

    #[test]
    fn site_origins_are_accepted() {
        let layer = cors_layer(&origins(&[
            "https://d111111abcdef8.cloudfront.net",
            "http://127.0.0.1:8081",
        ]))
        .expect("valid origins");
        assert!(layer.is_some());
    }

    #[test]
    fn anything_but_scheme_host_port_is_refused_with_the_reason() {
        for bad in [
            "*",
            "d111111abcdef8.cloudfront.net",
            "https://site.example.com/",
            "https://site.example.com/app",
            "ftp://site.example.com",
            "https://",
        ] {
            let err = cors_layer(&origins(&[bad])).expect_err(bad).to_string();
            assert!(err.contains("--cors-origin"), "{bad}: {err}");
        }
    }
}
