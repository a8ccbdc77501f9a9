//! The primary-backup baseline: the no-election floor every protocol is
//! measured against, and the subject of the simulator's planted-bug tests.

mod primary_backup;

pub use primary_backup::{PbMessage, PlantedBug, PrimaryBackup, PrimaryBackupConfig};
