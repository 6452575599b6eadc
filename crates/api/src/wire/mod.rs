//! Every JSON shape of the Docker Engine API that berth sends, built from the engine's
//! values (PascalCase as Docker spells it, camelCase where Docker does). Handlers in `routes`
//! call these and add only the status and headers; request bodies are read in `body`.

pub(crate) mod containers;
pub(crate) mod exec;
pub(crate) mod images;
pub(crate) mod networks;
pub mod system;
pub(crate) mod volumes;

use serde_json::{Value, json};

pub use system::{Info, Version, rfc3339};

/// `{"Id": ...}`: what exec create and commit answer.
pub(crate) fn id(id: &str) -> Value {
    json!({ "Id": id })
}
