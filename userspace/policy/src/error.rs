//! Errors from loading, parsing, saving and editing a policy.

use std::io;
use std::path::PathBuf;

use crate::Digest;

/// An error from loading, parsing, saving or editing a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    // The field is not named `source`, so that the cause is printed once:
    // here, and not again by callers that print the error chain.
    #[error("failed to read policy {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },

    /// The policy text is invalid. `line` and `column` are 1-based and point
    /// at or just after the offending value, as serde_json reports them.
    /// Column 0 means the file ended before the first line had a character.
    #[error("{name}:{line}:{column}: {message}")]
    Parse {
        name: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// Writing, syncing or renaming the policy file failed. The file that was
    /// at `path` before the save is left as it was.
    #[error("failed to save policy to {}: {error}", path.display())]
    Save { path: PathBuf, error: io::Error },

    /// An entry path is not an absolute, normalized path.
    #[error("invalid policy path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// The path is already in the policy with a different digest or kind.
    #[error("{path} is already in the policy with sha256 {existing}, not {new}")]
    Conflict {
        path: String,
        existing: Digest,
        new: Digest,
    },
}

impl PolicyError {
    /// Converts a serde_json error into a `Parse` error naming `name`.
    pub(crate) fn from_json(name: &str, error: serde_json::Error) -> Self {
        let (line, column) = (error.line(), error.column());

        // serde_json appends " at line L column C" to the message. The position
        // goes into its own fields, so cut it from the text.
        let text = error.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = text.strip_suffix(&suffix).unwrap_or(&text);

        let message = match error.classify() {
            serde_json::error::Category::Eof => format!("truncated file: {message}"),
            serde_json::error::Category::Syntax => format!("malformed JSON: {message}"),
            _ => message.to_owned(),
        };

        PolicyError::Parse {
            name: name.to_owned(),
            line,
            column,
            message,
        }
    }
}
