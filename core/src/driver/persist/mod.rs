//! Persistence in the driver: the default store on disk, and the thread that writes to it.
mod redb_store;
mod writer;

pub use redb_store::{RedbStore, STORE_FILE};
pub(crate) use writer::StoreWriter;
