//! How tests and benches build settings: from `(variable, value)` pairs, through the same clap
//! parsers and defaults `cairn serve` uses, without reading the process's environment. No
//! default is written here.
use std::ffi::OsString;

use clap::{Args, Command, FromArgMatches};

use super::{ConfigError, Settings};

/// `Settings`' arguments; `defaults`: with their default values (else only what is given is
/// set). The environment is never read.
fn command(defaults: bool) -> Command {
    Settings::augment_args(Command::new("cairn").no_binary_name(true)).mut_args(move |a| {
        let a = a.env(Option::<&'static str>::None);
        if defaults {
            a
        } else {
            a.default_value(Option::<&'static str>::None)
                .required(false)
        }
    })
}

/// `--flag=value` for each `(variable, value)`.
fn args<'a>(
    vars: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<OsString>, ConfigError> {
    let named = Settings::augment_args(Command::new("cairn"));
    vars.into_iter()
        .map(|(var, value)| {
            let arg = named
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == var))
                .and_then(|a| a.get_long())
                .ok_or_else(|| ConfigError::Invalid {
                    var: "settings",
                    why: format!("`{var}` is not a setting of `cairn serve`"),
                })?;
            Ok(format!("--{arg}={value}").into())
        })
        .collect()
}

fn parse_error(e: clap::Error) -> ConfigError {
    ConfigError::from_clap(&e).unwrap_or_else(|| ConfigError::Invalid {
        var: "settings",
        why: e.to_string(),
    })
}

impl Settings {
    /// The settings an environment holding exactly `vars` gives (every other setting at its
    /// default); a bad value is refused as `cairn serve` refuses it.
    pub fn from_vars<'a>(
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut matches = command(true)
            .try_get_matches_from(args(vars)?)
            .map_err(parse_error)?;
        Self::from_arg_matches_mut(&mut matches).map_err(parse_error)
    }

    /// Sets one variable, parsed as `cairn serve` parses it.
    pub fn try_set(&mut self, var: &str, value: &str) -> Result<&mut Self, ConfigError> {
        let mut matches = command(false)
            .try_get_matches_from(args([(var, value)])?)
            .map_err(parse_error)?;
        self.update_from_arg_matches_mut(&mut matches)
            .map_err(parse_error)?;
        Ok(self)
    }

    /// [`Settings::try_set`] for values a test knows are good; panics on a bad one.
    pub fn set(&mut self, var: &str, value: &str) {
        if let Err(e) = self.try_set(var, value) {
            panic!("{var}={value:?}: {e}");
        }
    }
}
