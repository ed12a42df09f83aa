//! Typed errors of the library part; `anyhow` appears only in the binary's `main`.

use thiserror::Error;

/// An API object the model cannot use. The watch adapter logs it, counts it and skips the object;
/// everything else the exporter knows keeps being served.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("{kind} object without {field}: skipped (is the API server sending complete objects?)")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
}
