//! Storage adapters behind the core ports, and the conformance suite every adapter passes.
