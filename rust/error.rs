//! The one error type of the engine. Every failure a caller can cause (a bad image, a missing
//! model, an unusable ONNX Runtime) is a variant here, with a message naming the input.
//! The Python bindings map each variant onto a `facedb.FaceDBError` subclass in `python.rs`;
//! `tests/test_errors.py` checks that each code is the one of its Python class.

use std::fmt;

/// What went wrong, with the input it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An image path that does not exist or cannot be opened.
    ImageNotFound { input: String, reason: String },
    /// An image that cannot be decoded or an array of the wrong type or shape.
    Image { input: String, reason: String },
    /// An image larger than the configured pixel limit (checked from the header).
    ImageTooLarge { input: String, reason: String },
    /// A photo without any face where one is needed.
    NoFace { input: String },
    /// A missing or unusable model file or ONNX Runtime library, or an inference failure.
    Model { message: String },
    /// A configuration value out of range.
    Config { message: String },
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The stable code of this error, shared with the CLI and the HTTP service.
    pub fn code(&self) -> &'static str {
        match self {
            Error::ImageNotFound { .. } => "image_not_found",
            Error::Image { .. } => "image_invalid",
            Error::ImageTooLarge { .. } => "image_too_large",
            Error::NoFace { .. } => "no_face",
            Error::Model { .. } => "model_error",
            Error::Config { .. } => "invalid_config",
        }
    }

    /// One error of every kind, so that a test can check each kind's code and Python class
    /// (`facedb._native.error_kinds`). A new variant goes here too: the match below does not
    /// compile without it.
    pub fn one_of_each() -> Vec<Error> {
        let (input, reason) = (String::new(), String::new());
        let all = vec![
            Error::ImageNotFound { input: input.clone(), reason: reason.clone() },
            Error::Image { input: input.clone(), reason: reason.clone() },
            Error::ImageTooLarge { input: input.clone(), reason },
            Error::NoFace { input },
            Error::Model { message: String::new() },
            Error::Config { message: String::new() },
        ];
        for e in &all {
            match e {
                Error::ImageNotFound { .. }
                | Error::Image { .. }
                | Error::ImageTooLarge { .. }
                | Error::NoFace { .. }
                | Error::Model { .. }
                | Error::Config { .. } => {}
            }
        }
        all
    }

    pub(crate) fn image(input: &str, reason: impl Into<String>) -> Self {
        Error::Image { input: input.to_owned(), reason: reason.into() }
    }

    pub(crate) fn model(message: impl Into<String>) -> Self {
        Error::Model { message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ImageNotFound { input, reason } => write!(f, "cannot open image {input}: {reason}"),
            Error::Image { input, reason } => write!(f, "invalid image {input}: {reason}"),
            Error::ImageTooLarge { input, reason } => write!(f, "image {input} is too large: {reason}"),
            Error::NoFace { input } => write!(f, "no face found in {input}"),
            Error::Model { message } => f.write_str(message),
            Error::Config { message } => write!(f, "invalid engine configuration: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::model(format!("ONNX Runtime error: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code() {
        let codes: std::collections::HashSet<&str> = Error::one_of_each().iter().map(Error::code).collect();
        assert_eq!(codes.len(), Error::one_of_each().len());
    }
}
