//! `latchkey secrets rewrap`: re-seal every stored secret with the first
//! configured key, so an old key can then be removed from the configuration.
//!
//! Each table column that holds sealed secrets registers here with how to
//! read its rows and write one back; the context string must be the one the
//! feature seals with.

use latchkey_db::{DbConnection, DbError};
use serde::Serialize;

use crate::Core;
use crate::error::CoreError;

/// A column of sealed secrets.
pub struct SealedColumn {
    /// `table.column`, for reports.
    pub name: &'static str,
    /// The associated-data context the feature seals this row's value with.
    pub context: fn(&str) -> String,
    /// Every (row id, sealed value).
    pub load: fn(&mut DbConnection) -> Result<Vec<(String, String)>, DbError>,
    /// Replaces one row's sealed value.
    pub store: fn(&mut DbConnection, &str, &str) -> Result<(), DbError>,
}

/// The columns that hold sealed secrets. Features that keep secrets at rest
/// (signing keys, TOTP seeds, upstream tokens) add theirs.
pub const SEALED_COLUMNS: &[SealedColumn] = &[];

#[derive(Debug, Default, Serialize)]
pub struct RewrapReport {
    pub primary_key_id: String,
    pub rewrapped: usize,
    pub already_current: usize,
    /// Rows that could not be opened with any configured key.
    pub failed: Vec<String>,
}

pub async fn rewrap_all(core: &Core) -> Result<RewrapReport, CoreError> {
    rewrap_columns(core, SEALED_COLUMNS).await
}

pub async fn rewrap_columns(core: &Core, columns: &'static [SealedColumn]) -> Result<RewrapReport, CoreError> {
    let mut report = RewrapReport { primary_key_id: core.secrets.primary_kid().to_owned(), ..Default::default() };
    for col in columns {
        let rows = core.db.run(col.load).await?;
        for (id, sealed) in rows {
            match core.secrets.rewrap(&(col.context)(&id), &sealed) {
                Ok(None) => report.already_current += 1,
                Ok(Some(new)) => {
                    let store = col.store;
                    core.db.run(move |conn| store(conn, &id, &new)).await?;
                    report.rewrapped += 1;
                }
                Err(e) => report.failed.push(format!("{} {id}: {e}", col.name)),
            }
        }
    }
    Ok(report)
}
