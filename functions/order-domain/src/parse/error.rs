//! How a refusal names what is wrong: [`InvalidOrder`], the field's path as the publisher wrote it
//! ([`At`]), and a long value shortened for the message.

/// Why a payload is not an acceptable order. `field` is the path as the publisher wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidOrder {
    pub field: String,
    pub problem: String,
}

impl InvalidOrder {
    pub(super) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Where a field is: at the top of the order or in a line. Its name is only written out for an
/// error.
#[derive(Debug, Clone, Copy)]
pub(super) enum At {
    Top,
    Line(usize),
}

impl At {
    pub(super) fn path(self, key: &str) -> String {
        match self {
            At::Top => key.to_string(),
            At::Line(i) => format!("items[{i}].{key}"),
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Top => Ok(()),
            At::Line(i) => write!(f, "items[{i}]"),
        }
    }
}

/// Keeps error messages short when a field holds something large.
pub(super) fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}
