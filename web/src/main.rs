//! Entry point of the web UI (built for wasm32 by trunk; see web/README.md).

#[cfg(target_arch = "wasm32")]
fn main() {
    yew::Renderer::<opti_web::app::App>::new().render();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("opti-web is a browser app: build it with `trunk build` in web/ (see web/README.md)");
    std::process::exit(2);
}
