//! How a protocol's settings are built outside its crate.
//!
//! Every protocol config is `#[non_exhaustive]`, so that a new setting is
//! not a breaking change: other crates cannot write it as a struct literal.
//! They start from `Default` (or any config) and change what they need with
//! the `with` method that [`crate::settings_builder!`] gives them:
//!
//! ```text
//! let config = RaftConfig::default().with(|c| {
//!     c.check_quorum = false;
//!     c.max_inflight = 1;
//! });
//! ```

/// What every protocol config gets: `with` ([`settings_builder!`](crate::settings_builder!))
/// and `planted` ([`planted_bugs!`](crate::planted_bugs!)), from one line in
/// its crate: `quorum_core::protocol_config!(RaftConfig, PlantedBug);`.
#[macro_export]
macro_rules! protocol_config {
    ($config:ty, $bug:ty) => {
        $crate::planted_bugs!($config, $bug);
        $crate::settings_builder!($config);
    };
}

/// Gives a protocol config `with(self, f) -> Self`: the same settings, changed
/// by `f`. Expanded in the protocol crate (an inherent method needs its own
/// crate).
#[macro_export]
macro_rules! settings_builder {
    ($config:ty) => {
        impl $config {
            /// These settings, changed by `f`: how other crates build this
            /// `#[non_exhaustive]` config (`Default::default().with(|c| ...)`).
            pub fn with(mut self, f: impl FnOnce(&mut Self)) -> Self {
                f(&mut self);
                self
            }
        }
    };
}

/// Settings an operator may change by name: `quorum node --set KEY=VALUE`,
/// a `[settings]` table in its TOML file, or `QUORUM_<KEY>` in the
/// environment. Durations are whole milliseconds under keys ending in `_ms`.
/// [`tunables!`](crate::tunables!) writes the impl from a list of fields.
pub trait Tunables {
    /// Every key, with a line saying what it sets.
    const KEYS: &'static [(&'static str, &'static str)];

    /// Sets `key` from its text; an unknown key or a bad value is an error naming it.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String>;

    /// The value of `key`, as `set` reads it.
    fn get(&self, key: &str) -> Option<String>;

    /// Whether the settings can work together; the error names the settings.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Implements [`Tunables`] for a config from its fields: `ms` for a
/// `Duration` set in milliseconds (key `<field>_ms`), `value` for anything
/// that parses from and prints as text (numbers, `bool`, enums with
/// `FromStr`). The check, if given, is a method `fn(&self) -> Result<(), String>`.
///
/// ```text
/// quorum_core::tunables!(RaftConfig, check = RaftConfig::check_settings, {
///     election_timeout_min: ms "lower bound of the randomized election timeout",
///     pre_vote: value "ask for votes before standing",
/// });
/// ```
#[macro_export]
macro_rules! tunables {
    ($config:ty, check = $check:path, { $($field:ident : $kind:ident $help:literal),* $(,)? }) => {
        impl $crate::settings::Tunables for $config {
            const KEYS: &'static [(&'static str, &'static str)] =
                &[$(($crate::tunables!(@key $kind $field), $help)),*];

            fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
                $(
                    if key == $crate::tunables!(@key $kind $field) {
                        self.$field = $crate::tunables!(@parse $kind key value)?;
                        return Ok(());
                    }
                )*
                let known: Vec<&str> = Self::KEYS.iter().map(|(k, _)| *k).collect();
                Err(format!("unknown setting '{key}' (this protocol has: {})", known.join(", ")))
            }

            fn get(&self, key: &str) -> Option<String> {
                $(
                    if key == $crate::tunables!(@key $kind $field) {
                        return Some($crate::tunables!(@show $kind self.$field));
                    }
                )*
                None
            }

            fn check(&self) -> Result<(), String> {
                $check(self)
            }
        }

        /// From a table of the same keys and values as `--set` (missing
        /// keys keep their defaults), checked as `--set` is.
        impl<'de> $crate::settings::serde::Deserialize<'de> for $config {
            fn deserialize<D: $crate::settings::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::settings::deserialize_tunables(d)
            }
        }

        /// As a table of the keys and values `--list-settings` shows.
        impl $crate::settings::serde::Serialize for $config {
            fn serialize<S: $crate::settings::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::settings::serialize_tunables(self, s)
            }
        }
    };
    (@key ms $field:ident) => { concat!(stringify!($field), "_ms") };
    (@key value $field:ident) => { stringify!($field) };
    (@parse ms $key:ident $value:ident) => {
        $value
            .trim()
            .parse::<u64>()
            .map($crate::Duration::from_millis)
            .map_err(|_| format!("{}: '{}' is not a whole number of milliseconds", $key, $value))
    };
    (@parse value $key:ident $value:ident) => {
        $value.trim().parse().map_err(|e| format!("{}: '{}' is not valid: {e}", $key, $value))
    };
    (@show ms $v:expr) => { $v.as_millis().to_string() };
    (@show value $v:expr) => { $v.to_string() };
}

#[doc(hidden)]
pub use serde;

/// One value of a settings table, whatever its type in the file.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// A config from a table of its tunable keys, applied with `set` on top of
/// the defaults and checked: how [`tunables!`](crate::tunables!) derives
/// `Deserialize` (self-describing formats only: TOML, JSON, YAML).
pub fn deserialize_tunables<'de, D, C>(d: D) -> Result<C, D::Error>
where
    D: serde::Deserializer<'de>,
    C: Tunables + Default,
{
    use serde::de::Error;
    let table: std::collections::BTreeMap<String, Scalar> = serde::Deserialize::deserialize(d)?;
    let mut config = C::default();
    for (key, value) in table {
        let text = match value {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(x) => x.to_string(),
            Scalar::Text(t) => t,
        };
        config.set(&key, &text).map_err(D::Error::custom)?;
    }
    config.check().map_err(D::Error::custom)?;
    Ok(config)
}

/// A config as a table of its tunable keys and their values as text.
pub fn serialize_tunables<S: serde::Serializer, C: Tunables>(config: &C, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(C::KEYS.len()))?;
    for (key, _) in C::KEYS {
        map.serialize_entry(key, &config.get(key).unwrap_or_default())?;
    }
    map.end()
}

/// Applies `--set`, file and environment settings to `config`, in that
/// order of precedence, then checks the result. `sets` are `KEY=VALUE`;
/// `file` the `[settings]` table's entries as text; `env` looks a name up.
pub fn apply_tunables<C: Tunables>(
    config: &mut C,
    sets: &[String],
    file: &[(String, String)],
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    for (key, _) in C::KEYS {
        if let Some(value) = env(&format!("QUORUM_{}", key.to_ascii_uppercase())) {
            config.set(key, &value).map_err(|e| format!("QUORUM_{}: {e}", key.to_ascii_uppercase()))?;
        }
    }
    for (key, value) in file {
        config.set(key, value).map_err(|e| format!("[settings] {e}"))?;
    }
    for set in sets {
        let (key, value) = set.split_once('=').ok_or(format!("--set '{set}' is not KEY=VALUE"))?;
        config.set(key.trim(), value).map_err(|e| format!("--set {e}"))?;
    }
    config.check()
}

/// The first rule that does not hold, as an error carrying its sentence:
/// how a protocol's `check` says which settings cannot work.
pub fn check_rules(rules: &[(bool, &str)]) -> Result<(), String> {
    match rules.iter().find(|(holds, _)| !holds) {
        Some((_, broken)) => Err(broken.to_string()),
        None => Ok(()),
    }
}
