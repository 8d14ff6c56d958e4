//! The HTTP client: the API base URL (from `config.js` at deploy time, default same
//! origin), the bearer token, and JSON in and out with the API's `{"error"}` bodies kept.

use gloo_net::http::{Request, RequestBuilder};
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasm_bindgen::JsValue;

/// A failed call: the status and message the API gave, or why no answer came.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The API answered with an error status; `body` is its JSON (`{"error", …}`).
    Status {
        status: u16,
        message: String,
        body: Value,
    },
    /// No answer (network down, CORS, server stopped).
    Network(String),
    /// An answer this UI could not read.
    Decode(String),
}

impl ApiError {
    /// The HTTP status, if the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Status {
                status, message, ..
            } => write!(f, "{message} (HTTP {status})"),
            ApiError::Network(m) => write!(f, "cannot reach the server: {m}"),
            ApiError::Decode(m) => write!(f, "unexpected answer from the server: {m}"),
        }
    }
}

/// Reads `window.OPTI_CONFIG[key]` (set by `config.js`) as a string.
pub fn deploy_setting(key: &str) -> Option<String> {
    let window = web_sys::window()?;
    let cfg = js_sys::Reflect::get(&window, &JsValue::from_str("OPTI_CONFIG")).ok()?;
    if cfg.is_undefined() || cfg.is_null() {
        return None;
    }
    js_sys::Reflect::get(&cfg, &JsValue::from_str(key))
        .ok()?
        .as_string()
        .filter(|s| !s.trim().is_empty())
}

/// The API's base URL without a trailing slash; empty means the page's own origin.
pub fn api_base() -> String {
    deploy_setting("apiBase")
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .unwrap_or_default()
}

/// A client for one bearer token.
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
}

/// HTTP methods the UI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

impl Api {
    pub fn new(token: Option<String>) -> Self {
        Self {
            base: api_base(),
            token,
        }
    }

    /// Absolute URL of an API path (or of a relative URL the API handed out).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    fn builder(&self, method: Method, path: &str) -> RequestBuilder {
        let url = self.url(path);
        let b = match method {
            Method::Get => Request::get(&url),
            Method::Post => Request::post(&url),
            Method::Put => Request::put(&url),
        };
        let b = b.header("Accept", "application/json");
        match &self.token {
            Some(t) => b.header("Authorization", &format!("Bearer {t}")),
            None => b,
        }
    }

    /// GET `path` as JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.send(Method::Get, path, None).await
    }

    /// Sends `body` (JSON) with `method` and reads the JSON answer.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let b = self.builder(method, path);
        let request = match body {
            Some(v) => b
                .header("Content-Type", "application/json")
                .body(v.to_string()),
            None => b.build(),
        }
        .map_err(|e| ApiError::Network(e.to_string()))?;
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::Network(e.to_string()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ApiError::Network(e.to_string()))?;
        if !(200..300).contains(&status) {
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let message = body
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(ApiError::Status {
                status,
                message,
                body,
            });
        }
        serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))
    }
}

/// `s` percent-encoded for a query string.
pub fn encode(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}
