//! The message of a failed HTTP exchange, kept as the source of a transport error.
//!
//! **Failure prevented.** hyper's errors print only their outermost layer ("client error
//! (Connect)"), which hides the cause a user needs ("Connection refused"); and the error type
//! must not depend on the transport that produces it, so this small type lives with the errors.

use std::fmt;

/// What went wrong on the wire, with the whole cause chain in its message
/// (`client error (Connect): tcp connect error: Connection refused (os error 111)`).
#[derive(Debug)]
pub(crate) struct HttpError(String);

impl HttpError {
    pub(crate) fn new(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Wrappers often repeat their cause; print each distinct message once.
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self(message)
    }
}

impl From<String> for HttpError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}
