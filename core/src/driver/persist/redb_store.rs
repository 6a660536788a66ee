//! The default store: one [redb](https://www.redb.org) file in the configured directory.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use crate::broker::OnCorrupt;
use crate::broker::persist::tables::{self, Table, TableWriter};
use crate::broker::persist::{Snapshot, Store, StoreError, StoreOp};

/// The file the store lives in, inside the configured directory.
pub const STORE_FILE: &str = "moat-mqtt.redb";

/// A [`Store`] in a redb database: ACID transactions, crash-safe, one file.
///
/// Each [`apply`](Store::apply) is one write transaction; a durable one is committed with
/// fsync ([`Durability::Immediate`]), the others without ([`Durability::None`]), and become
/// durable with the next durable one.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("path", &self.path).finish_non_exhaustive()
    }
}

fn definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`, creating the directory if needed, and reads
    /// everything it holds.
    ///
    /// A store that cannot be read back is an error with `on_corrupt: Fail`; with `Fresh` it is
    /// renamed to `moat-mqtt.redb.corrupt-<unix time>` (logged) and an empty one is started.
    ///
    /// # Errors
    /// [`StoreError::Unusable`] when the directory or file cannot be created or opened (another
    /// broker holding it included), [`StoreError::Corrupt`] as said.
    pub fn open(dir: &Path, on_corrupt: OnCorrupt) -> Result<(Self, Snapshot), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Unusable {
            path: dir.display().to_string(),
            reason: format!("cannot create the directory: {e}"),
        })?;
        let path = dir.join(STORE_FILE);
        let opened = Self::open_file(&path).and_then(|mut store| {
            let snapshot = store.load()?;
            Ok((store, snapshot))
        });
        match opened {
            Err(StoreError::Corrupt { reason, .. }) if on_corrupt == OnCorrupt::Fresh => {
                let unix =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let aside = path.with_extension(format!("redb.corrupt-{unix}"));
                std::fs::rename(&path, &aside).map_err(|e| StoreError::Unusable {
                    path: path.display().to_string(),
                    reason: format!("corrupt ({reason}), and cannot be moved aside to {}: {e}", aside.display()),
                })?;
                log::warn!(
                    "persistence store {} is corrupt ({reason}); moved to {} and starting empty (on-corrupt: fresh)",
                    path.display(),
                    aside.display()
                );
                let mut store = Self::open_file(&path)?;
                let snapshot = store.load()?;
                Ok((store, snapshot))
            }
            other => other,
        }
    }

    fn open_file(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Unusable {
                path: shown.clone(),
                reason: "already in use by another process (is another broker running with this path?)".to_owned(),
            },
            redb::DatabaseError::UpgradeRequired(version) => StoreError::Corrupt {
                path: shown.clone(),
                reason: format!("written in redb file format {version}, which this build cannot read"),
            },
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => {
                StoreError::Corrupt { path: shown.clone(), reason }
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(io))
                if matches!(io.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) =>
            {
                StoreError::Corrupt { path: shown.clone(), reason: io.to_string() }
            }
            other => StoreError::Unusable { path: shown.clone(), reason: other.to_string() },
        })?;
        let store = Self { db, path: path.to_owned() };
        // Every table exists from the start, so reading never meets a missing one.
        store.write(&[], true)?;
        Ok(store)
    }

    fn unusable(&self, what: &str, error: impl std::fmt::Display) -> StoreError {
        StoreError::Unusable { path: self.path.display().to_string(), reason: format!("{what}: {error}") }
    }

    fn write(&self, ops: &[StoreOp], durable: bool) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.unusable("cannot start a write", e))?;
        txn.set_durability(if durable { Durability::Immediate } else { Durability::None })
            .map_err(|e| self.unusable("cannot set durability", e))?;
        {
            let mut writer = Writer { txn: &txn, tables: Default::default() };
            for table in Table::ALL {
                writer.table(table).map_err(|e| self.unusable("cannot open a table", e))?;
            }
            tables::apply(&mut writer, ops).map_err(|e| self.unusable("cannot write", e))?;
        }
        txn.commit().map_err(|e| self.unusable("cannot commit", e))
    }
}

/// The tables of one write transaction, opened once each.
struct Writer<'txn> {
    txn: &'txn WriteTransaction,
    tables: [Option<redb::Table<'txn, &'static [u8], &'static [u8]>>; 7],
}

impl<'txn> Writer<'txn> {
    fn table(&mut self, table: Table) -> Result<&mut redb::Table<'txn, &'static [u8], &'static [u8]>, redb::Error> {
        let slot = &mut self.tables[table as usize];
        if slot.is_none() {
            *slot = Some(self.txn.open_table(definition(table))?);
        }
        slot.as_mut().ok_or_else(|| redb::Error::Corrupted("a table vanished".to_owned()))
    }
}

impl TableWriter for Writer<'_> {
    type Error = redb::Error;

    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), redb::Error> {
        self.table(table)?.insert(key, value)?;
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<(), redb::Error> {
        self.table(table)?.remove(key)?;
        Ok(())
    }

    fn delete_range(&mut self, table: Table, from: &[u8], to: &[u8]) -> Result<(), redb::Error> {
        self.table(table)?.retain_in(from..to, |_, _| false)?;
        Ok(())
    }
}

impl Store for RedbStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let path = self.path.display().to_string();
        let corrupt = |reason: String| StoreError::Corrupt { path: path.clone(), reason };
        let txn = self.db.begin_read().map_err(|e| self.unusable("cannot start a read", e))?;
        tables::load(
            |table, f| {
                let opened =
                    txn.open_table(definition(table)).map_err(|e| corrupt(format!("table {}: {e}", table.name())))?;
                let entries = opened.iter().map_err(|e| corrupt(format!("table {}: {e}", table.name())))?;
                for entry in entries {
                    let (key, value) = entry.map_err(|e| corrupt(format!("table {}: {e}", table.name())))?;
                    f(key.value(), value.value())?;
                }
                Ok(())
            },
            corrupt,
        )
    }

    fn apply(&mut self, ops: &[StoreOp], durable: bool) -> Result<(), StoreError> {
        self.write(ops, durable)
    }
}
