//! The value types and parsing rules several settings share: secrets, whole numbers in a range,
//! switches, and settings where an empty value means unset. Each parser is a clap value parser
//! whose error names the variable, so `cairn serve` stops with `VAR is invalid: why`.
use std::fmt;

use super::ConfigError;

/// A setting that may be left empty: an empty (or blank) value means unset, as an unset one
/// does. It is `Option<T>` under another name so that clap hands its parser the empty value
/// instead of treating the field as an optional argument; such settings default to `""`.
pub type Optional<T> = Option<T>;

/// A secret value; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

pub(crate) fn invalid(var: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        why: why.into(),
    }
}

/// A non-negative integer (surrounding blanks allowed).
pub(crate) fn parse_u64(var: &'static str, v: &str) -> Result<u64, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(var, format!("`{v}` is not a non-negative integer")))
}

/// A whole number from `range`, the error saying which.
pub(crate) fn whole_number(
    var: &'static str,
    v: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let v = v.trim();
    v.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            invalid(
                var,
                format!(
                    "`{v}` is not a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

/// `true`/`1` or `false`/`0` (empty: false).
pub(crate) fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(invalid(var, format!("`{other}` is not true or false"))),
    }
}

/// `v` trimmed, or `None` when that leaves nothing.
pub(crate) fn non_blank(v: &str) -> Option<&str> {
    Some(v.trim()).filter(|v| !v.is_empty())
}

/// `v` as given, `None` when empty (a value that is only blanks is kept).
pub(crate) fn non_empty(v: &str) -> Result<Optional<String>, ConfigError> {
    Ok(Some(v.to_owned()).filter(|v| !v.is_empty()))
}

/// A PEM file's text: `value` itself when it holds a PEM block, else the file it names.
pub(crate) fn pem_or_path(var: &'static str, value: &str) -> Result<String, ConfigError> {
    if value.trim_start().starts_with("-----BEGIN") {
        Ok(value.to_owned())
    } else {
        std::fs::read_to_string(value)
            .map_err(|e| invalid(var, format!("cannot read `{value}`: {e}")))
    }
}
