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
