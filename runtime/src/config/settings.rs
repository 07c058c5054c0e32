//! How one setting is declared once: the `Setting` trait (a kind of value: how a flag gives it,
//! how a TOML value gives it, how its default is shown in `--help`) and the `server_settings!`
//! macro that turns a table of settings into the settings struct, its `Default`, the clap flags
//! and the TOML key dispatch.
//!
//! Owns: the shape of a setting declaration and the code generated from it, including how help
//! lines show their default (`Worker processes [default: 1]`). Must not touch: which settings
//! exist (`server`), the kinds of value (`setting_kinds`), the TOML grammar outside one value
//! (`toml_file`).
//!
//! A setting's TOML key is its field name unless the line ends in `toml KEY` (see the macro).
//!
//! Errors from the generated code are exactly those of the kinds: a flag's names the file
//! `<command line>` and the flag (`--max-body-size`), a TOML value's the file, line and dotted
//! key (`server.max_body_size`).

use std::path::Path;

use super::toml_values::{At, Res};

/// A kind of setting value: counts, sizes, durations, paths, ...
pub(super) trait Setting {
    /// The type the validated setting has in the config struct.
    type Value;
    /// The type clap hands over for the flag (`Option<..>`, `Vec<..>` or `bool`).
    type Flag;
    /// The value a flag gives, `None` when the flag was not given. `flag` is its name
    /// (`--workers`), for errors; relative paths are made absolute against `cwd`.
    fn from_flag(flag: &str, given: &Self::Flag, cwd: &Path) -> Res<Option<Self::Value>>;
    /// The value a TOML entry gives (relative paths against the file's directory).
    fn from_toml(at: &At) -> Res<Self::Value>;
    /// The default as a user would write it, for `--help`; `None` shows no default.
    fn shown(default: &Self::Value) -> Option<String>;
}

/// A flag's help line: the first line of the setting's doc comment, then its default.
pub(super) fn help_line(doc: &str, default: Option<String>) -> String {
    match default {
        Some(d) => format!("{} [default: {d}]", doc.trim()),
        None => doc.trim().to_string(),
    }
}

/// The flag of a setting: `max_body_size` -> `--max-body-size`.
pub(super) fn flag_name(setting: &str) -> String {
    format!("--{}", setting.replace('_', "-"))
}

/// Declares settings once; see `server.rs` for the table and the README for what a line says.
///
/// ```text
/// /// Help line shown by --help (the default is appended)
/// /// More lines: documentation of the field only.
/// #[arg(short = 'w', value_name = "N")]          // extra clap attributes, optional
/// name: FieldType = default, read Kind, flag FlagType;
/// name: FieldType = default, read Kind, flag FlagType, toml other_key;   // TOML key differs
/// ```
///
/// The TOML key is the field's name unless `toml KEY` says otherwise (`certfile` is gunicorn's
/// flag name, `tls_cert` the key under `[server]`).
///
/// Generates `$config` (the fields, documented), `impl Default`, `$flags` (a clap `Args`
/// struct: one `--name` flag per setting) with `apply` (the flags given win over `$config`),
/// and on `$config`: `TOML_KEYS` (in table order) and `apply_toml(key, at)`.
macro_rules! settings_table {
    (
        $(#[doc = $doc:literal])*
        config $config:ident, flags $flags:ident;
        $(
            #[doc = $help:literal]
            $(#[doc = $more:literal])*
            $(#[arg($($arg:tt)*)])?
            $name:ident : $ty:ty = $default:expr, read $kind:ty, flag $fty:ty
                $(, toml $tkey:ident)?;
        )*
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone)]
        pub struct $config {
            $(
                #[doc = $help]
                $(#[doc = $more])*
                pub $name: $ty,
            )*
        }

        impl Default for $config {
            fn default() -> Self {
                $config { $($name: $default,)* }
            }
        }

        /// The command-line flags of these settings (flattened into `RunArgs`).
        #[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
        pub struct $flags {
            $(
                #[arg(
                    long $(, $($arg)*)?,
                    help = $crate::config::settings::help_line(
                        $help,
                        <$kind as $crate::config::settings::Setting>::shown(&($default)),
                    )
                )]
                pub $name: $fty,
            )*
        }

        impl $flags {
            /// Applies the flags that were given onto `config`; errors name the flag.
            pub(super) fn apply(
                &self,
                cwd: &std::path::Path,
                config: &mut $config,
            ) -> Result<(), $crate::config::error::ConfigError> {
                use $crate::config::settings::{flag_name, Setting};
                $(
                    let flag = flag_name(stringify!($name));
                    if let Some(v) = <$kind as Setting>::from_flag(&flag, &self.$name, cwd)? {
                        config.$name = v;
                    }
                )*
                Ok(())
            }
        }

        impl $config {
            /// The TOML keys of these settings, in table order.
            pub(super) const TOML_KEYS: &'static [&'static str] =
                &[$($crate::config::settings::toml_key!($name $(, $tkey)?)),*];

            /// Each setting's TOML key and field name (which is also its flag's), in table order.
            #[cfg(test)]
            pub(super) const KEYS_AND_FIELDS: &'static [(&'static str, &'static str)] = &[$((
                $crate::config::settings::toml_key!($name $(, $tkey)?),
                stringify!($name),
            )),*];

            /// Reads one TOML entry onto the setting named `key`; `None` if there is none.
            pub(super) fn apply_toml(
                &mut self,
                key: &str,
                at: &$crate::config::toml_values::At,
            ) -> Option<$crate::config::toml_values::Res<()>> {
                use $crate::config::settings::Setting;
                match key {
                    $(
                        $crate::config::settings::toml_key!($name $(, $tkey)?) => {
                            Some(<$kind as Setting>::from_toml(at).map(|v| self.$name = v))
                        }
                    )*
                    _ => None,
                }
            }
        }
    };
}

/// A setting's TOML key: its own `toml KEY` if the table gives one, else the field's name.
macro_rules! toml_key {
    ($name:ident) => {
        stringify!($name)
    };
    ($name:ident, $key:ident) => {
        stringify!($key)
    };
}

pub(super) use settings_table;
pub(super) use toml_key;
