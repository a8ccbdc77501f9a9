//! Planted bugs: each protocol crate keeps fixed defects that a test can put
//! back (its `PlantedBug` enum), to show that the checks catch them. They
//! exist only in a build with that crate's `planted-bugs` feature, where its
//! config has a `planted: Option<PlantedBug>` field; a shipping build has
//! neither the field nor a way to turn one on.

/// Gives a protocol's config the question its code asks at each planted bug:
/// `config.planted(PlantedBug::X)`, true only if a test selected `X` (always
/// false without the `planted-bugs` feature).
///
/// Expanded in the protocol crate, so the `planted-bugs` feature it tests is
/// that crate's own.
#[macro_export]
macro_rules! planted_bugs {
    ($config:ty, $bug:ty) => {
        impl $config {
            /// True if a test planted `bug` (always false without the
            /// `planted-bugs` feature).
            #[allow(unused_variables)]
            pub(crate) fn planted(&self, bug: $bug) -> bool {
                #[cfg(feature = "planted-bugs")]
                return self.planted == Some(bug);
                #[cfg(not(feature = "planted-bugs"))]
                false
            }
        }
    };
}
