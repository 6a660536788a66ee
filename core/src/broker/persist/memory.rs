//! A store in memory: for tests, for the fuzzer, and for embedding programs that want the
//! broker's durable state in their own hands (clone it, ship it elsewhere).

use std::collections::BTreeMap;

use super::tables::{self, Table, TableWriter};
use super::{Snapshot, Store, StoreError, StoreOp};

/// Keeps the tables of [`tables`](super::tables) in ordered maps; nothing survives the process.
///
/// Records are encoded exactly as a disk store encodes them, so what a [`MemoryStore`] gives
/// back is what a disk store would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStore {
    tables: BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>,
    /// Batches applied, and how many of them were durable.
    batches: (u64, u64),
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Batches applied so far, and how many asked to be durable.
    #[must_use]
    pub fn batches(&self) -> (u64, u64) {
        self.batches
    }

    /// Entries in `table`.
    #[must_use]
    pub fn len(&self, table: Table) -> usize {
        self.tables.get(&table).map_or(0, BTreeMap::len)
    }

    /// Whether no table has an entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeMap::is_empty)
    }

    /// Overwrites one raw entry, to test how damaged records are reported.
    pub fn put_raw(&mut self, table: Table, key: &[u8], value: &[u8]) {
        self.tables.entry(table).or_default().insert(key.to_vec(), value.to_vec());
    }
}

impl TableWriter for MemoryStore {
    type Error = StoreError;

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put_raw(table, key, value);
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), StoreError> {
        if let Some(entries) = self.tables.get_mut(&table) {
            entries.remove(key);
        }
        Ok(())
    }

    fn delete_range(&mut self, table: Table, from: &[u8], to: &[u8]) -> Result<(), StoreError> {
        if let Some(entries) = self.tables.get_mut(&table) {
            let doomed: Vec<Vec<u8>> = entries.range(from.to_vec()..to.to_vec()).map(|(k, _)| k.clone()).collect();
            for key in doomed {
                entries.remove(&key);
            }
        }
        Ok(())
    }
}

impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let empty = BTreeMap::new();
        tables::load(
            |table, f| {
                for (key, value) in self.tables.get(&table).unwrap_or(&empty) {
                    f(key, value)?;
                }
                Ok(())
            },
            |reason| StoreError::Corrupt { path: "memory".to_owned(), reason },
        )
    }

    fn apply(&mut self, ops: &[StoreOp], durable: bool) -> Result<(), StoreError> {
        // Nothing here can fail half-way, so the batch is atomic.
        tables::apply(self, ops)?;
        self.batches.0 += 1;
        self.batches.1 += u64::from(durable);
        Ok(())
    }
}
