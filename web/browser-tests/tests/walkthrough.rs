//! A new user's walk through every page, in a 1366×768 window and a 1920×1080 one, with
//! mouse and keyboard: sign in by keyboard, the queue, an item opened by keyboard from the
//! queue, the annotator and its help overlay, the dashboard (charts and drift), the audit
//! trail with a diff, settings and models. Every page is checked for what a user would
//! find broken (a horizontal scrollbar, controls cut off at the right edge, the nav bar
//! wrapping, the annotator's image or its submit button out of the window) and saved as a
//! screenshot under test-output/web/<w>x<h>/.

use opti_browser_tests::{key, Browser, Server, Setup, WebDriver};
use serde_json::{json, Value};

/// Layout problems of the page now: horizontal overflow, visible elements reaching past
/// the right edge of the window (outside any scrolling container), a nav bar taller
/// than one row.
const LAYOUT_PROBLEMS: &str = r#"
const out = [];
const W = window.innerWidth;
const doc = document.documentElement;
if (doc.scrollWidth > W + 1) out.push(`page scrolls sideways: ${doc.scrollWidth}px wide in a ${W}px window`);
const scrolls = (el) => {
  for (let p = el.parentElement; p; p = p.parentElement) {
    const s = getComputedStyle(p);
    if (p !== document.body && p !== doc && /(auto|scroll)/.test(s.overflowX)) return true;
  }
  return false;
};
for (const el of document.querySelectorAll('main *, header *')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  if (getComputedStyle(el).visibility === 'hidden') continue;
  if (r.right > W + 1 && !scrolls(el)) {
    const name = el.id ? '#' + el.id : el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? '.' + String(el.className).split(' ').join('.') : '');
    out.push(`${name} cut off at the right: ends at ${Math.round(r.right)}px of ${W}px`);
    if (out.length > 8) break;
  }
}
const bar = document.querySelector('.topbar');
if (bar && bar.getBoundingClientRect().height > 80) out.push(`nav bar wraps: ${Math.round(bar.getBoundingClientRect().height)}px tall`);
return out;
"#;

/// Whether the element `arguments[0]` (a CSS selector) lies entirely inside the window.
const IN_WINDOW: &str = r#"
const el = document.querySelector(arguments[0]);
if (!el) return 'missing';
const r = el.getBoundingClientRect();
const ok = r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight + 1 && r.right <= window.innerWidth + 1;
return ok ? 'ok' : `at ${Math.round(r.left)},${Math.round(r.top)}–${Math.round(r.right)},${Math.round(r.bottom)} in ${window.innerWidth}×${window.innerHeight}`;
"#;

struct Walk<'a> {
    b: &'a Browser,
    dir: String,
    problems: Vec<String>,
}

impl Walk<'_> {
    /// Checks the page's layout and saves `<n>-<name>.png` (and, for a long page, the
    /// parts below the fold as `<n>-<name>-2.png`, …).
    async fn page(&mut self, name: &str) {
        // Let charts and images settle.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let found = self.b.script(LAYOUT_PROBLEMS, vec![]).await;
        for p in found.as_array().into_iter().flatten() {
            self.problems.push(format!(
                "{}/{name}: {}",
                self.dir,
                p.as_str().unwrap_or_default()
            ));
        }
        self.b.shot_at(&format!("{}/{name}.png", self.dir)).await;
        let pages = self
            .b
            .script(
                "return Math.ceil(document.documentElement.scrollHeight / window.innerHeight)",
                vec![],
            )
            .await
            .as_u64()
            .unwrap_or(1);
        for k in 2..=pages.min(4) {
            self.b
                .script(
                    &format!("window.scrollTo(0, {} * window.innerHeight)", k - 1),
                    vec![],
                )
                .await;
            self.b
                .shot_at(&format!("{}/{name}-{k}.png", self.dir))
                .await;
        }
        self.b.script("window.scrollTo(0, 0)", vec![]).await;
    }

    async fn in_window(&mut self, what: &str, css: &str) {
        let r = self.b.script(IN_WINDOW, vec![json!(css)]).await;
        if r != json!("ok") {
            self.problems.push(format!(
                "{}: {what} ({css}) not fully in the window: {r}",
                self.dir
            ));
        }
    }

    async fn focused(&self) -> Value {
        self.b
            .script(
                "const a = document.activeElement; return a ? (a.id || a.className || a.tagName) : null",
                vec![],
            )
            .await
    }
}

async fn walk(size: (u32, u32)) {
    let name = format!("walkthrough_{}x{}", size.0, size.1);
    let Some(setup) = Setup::detect(&name) else {
        return;
    };
    let server = Server::start(&setup, &[]);
    let driver = WebDriver::start(&setup);
    let b = Browser::open(&setup, &driver, &server.base, size).await;
    let inner = b
        .script("return [window.innerWidth, window.innerHeight]", vec![])
        .await;
    assert_eq!(
        inner,
        json!([size.0, size.1]),
        "the page is the size asked for"
    );
    let mut w = Walk {
        b: &b,
        dir: format!("{}x{}", size.0, size.1),
        problems: Vec::new(),
    };

    // Sign in by keyboard only: the token field has the focus, Enter submits.
    b.goto("/").await;
    b.find("#token").await;
    w.page("01-login").await;
    if w.focused().await != json!("token") {
        w.problems.push(format!(
            "{}: the token field lacks the focus on the login page",
            w.dir
        ));
        b.click("#token").await;
    }
    b.keys(&format!("{}{}", server.admin, key::ENTER)).await;
    b.until("signed in", async || b.count("#whoami").await > 0)
        .await;

    // The queue, by mouse from the nav bar.
    b.click("#nav-queue").await;
    b.find(".queue-item").await;
    w.page("02-queue").await;

    // Open the first item by keyboard: Tab to its Open button, Enter.
    let mut reached = false;
    for _ in 0..60 {
        b.keys(&key::TAB.to_string()).await;
        let on_open = b
            .script(
                "const a = document.activeElement; return !!(a && a.matches('.queue-item .open'));",
                vec![],
            )
            .await;
        if on_open == json!(true) {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches an item's Open button in the queue");
    b.keys(&key::ENTER.to_string()).await;
    b.find("#annotator").await;
    b.until("the part image decoded", async || {
        b.script(
            "const i = document.getElementById('annotate-image'); return !!(i && i.complete && i.naturalWidth > 0);",
            vec![],
        )
        .await
            == json!(true)
    })
    .await;
    w.page("03-annotator").await;
    w.in_window("the part image", "#annotate-image").await;
    w.in_window("the submit button", "#submit").await;
    w.in_window("the verdict buttons", "#verdict-defective")
        .await;
    // Keyboard shortcuts: ? opens the help, Escape closes it.
    b.keys("?").await;
    b.find("#help").await;
    w.page("04-annotator-help").await;
    w.in_window("the help overlay", "#help .modal-body").await;
    b.keys(&key::ESCAPE.to_string()).await;
    b.until("help closed", async || b.count("#help").await == 0)
        .await;
    // Relabel the first box by keyboard, judge, submit with N.
    let id = b.attr("#annotator", "data-id").await.expect("the item id");
    b.keys("b2r").await;
    b.until("verdict set", async || {
        b.attr("#verdict-defective", "aria-pressed")
            .await
            .as_deref()
            == Some("true")
    })
    .await;
    w.page("05-annotator-edited").await;
    b.keys("n").await;
    b.until("the review stored", async || {
        server.get(&format!("/inspections/{id}"))["status"] == "reviewed"
    })
    .await;

    // The dashboard, by mouse.
    b.click("#nav-dashboard").await;
    b.find("#chart-throughput svg").await;
    b.find("#chart-drift svg").await;
    w.page("06-dashboard").await;

    // The audit trail, with the review just made opened as a diff.
    b.click("#nav-audit").await;
    b.find(".audit-row").await;
    b.click(".audit-row[data-action=\"reviewed\"] button").await;
    b.find(".diff").await;
    w.page("07-audit").await;

    // Settings and models.
    b.click("#nav-settings").await;
    b.find("#set-threshold").await;
    w.page("08-settings").await;
    b.click("#nav-models").await;
    b.find(".model-row").await;
    b.find("#jobs-table, #retrain-unavailable, .empty").await;
    w.page("09-models").await;

    let problems = std::mem::take(&mut w.problems);
    b.close().await;
    assert!(
        problems.is_empty(),
        "layout problems a user would see:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn walkthrough_1366x768() {
    walk((1366, 768)).await;
}

#[tokio::test]
async fn walkthrough_1920x1080() {
    walk((1920, 1080)).await;
}
