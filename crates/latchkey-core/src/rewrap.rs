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

/// Every (row id, sealed value) of a column.
pub type SealedRows = Vec<(String, String)>;

/// A column of sealed secrets.
pub struct SealedColumn {
    /// `table.column`, for reports.
    pub name: &'static str,
    /// The associated-data context the feature seals this row's value with.
    pub context: fn(&str) -> String,
    /// Every (row id, sealed value).
    pub load: fn(&mut DbConnection) -> Result<SealedRows, DbError>,
    /// Replaces one row's sealed value.
    pub store: fn(&mut DbConnection, &str, &str) -> Result<(), DbError>,
}

/// The columns that hold sealed secrets. Features that keep secrets at rest
/// (TOTP seeds, upstream tokens) add theirs.
pub fn sealed_columns() -> Vec<SealedColumn> {
    vec![
        crate::keys::sealed_column(),
        crate::mail::sealed_column(),
        crate::mfa::sealed_column(),
        crate::webhooks::sealed_column(),
    ]
}

#[derive(Debug, Default, Serialize)]
pub struct RewrapReport {
    pub primary_key_id: String,
    pub rewrapped: usize,
    pub already_current: usize,
    /// Rows that could not be opened with any configured key.
    pub failed: Vec<String>,
}

pub async fn rewrap_all(core: &Core) -> Result<RewrapReport, CoreError> {
    rewrap_columns(core, &sealed_columns()).await
}

pub async fn rewrap_columns(core: &Core, columns: &[SealedColumn]) -> Result<RewrapReport, CoreError> {
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use base64::Engine as _;

    use super::*;
    use crate::secrets::{SecretBox, key_id};
    use crate::{Settings, SystemClock};

    static ROWS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

    fn context(id: &str) -> String {
        format!("test:{id}")
    }

    fn load(_: &mut DbConnection) -> Result<SealedRows, DbError> {
        Ok(ROWS.lock().map_err(|_| DbError::Query("poisoned".into()))?.clone())
    }

    fn store(_: &mut DbConnection, id: &str, value: &str) -> Result<(), DbError> {
        let mut rows = ROWS.lock().map_err(|_| DbError::Query("poisoned".into()))?;
        for row in rows.iter_mut().filter(|r| r.0 == id) {
            row.1 = value.to_owned();
        }
        Ok(())
    }

    static COLUMNS: &[SealedColumn] = &[SealedColumn { name: "test.value", context, load, store }];

    #[tokio::test]
    async fn rewrap_moves_every_row_to_the_first_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b64 = |k: [u8; 32]| base64::engine::general_purpose::STANDARD.encode(k);
        let env = vec![
            ("LATCHKEY_DATA_DIR".to_owned(), dir.path().display().to_string()),
            ("LATCHKEY_SECRETS__ENCRYPTION_KEYS".to_owned(), format!("{},{}", b64([2; 32]), b64([1; 32]))),
        ];
        let core = crate::Core::build(Settings::from_sources(None, env).expect("settings"), Arc::new(SystemClock))
            .expect("core");

        let old = SecretBox::new(&[[1; 32]]).expect("old key");
        let stranger = SecretBox::new(&[[9; 32]]).expect("unknown key");
        *ROWS.lock().expect("lock") = vec![
            ("a".into(), old.seal(&context("a"), b"alpha").expect("seal")),
            ("b".into(), core.secrets.seal(&context("b"), b"beta").expect("seal")),
            ("c".into(), old.seal(&context("c"), b"gamma").expect("seal")),
            ("d".into(), stranger.seal(&context("d"), b"delta").expect("seal")),
        ];
        let report = rewrap_columns(&core, COLUMNS).await.expect("rewrap");
        assert_eq!(report.primary_key_id, key_id(&[2; 32]));
        assert_eq!(report.rewrapped, 2);
        assert_eq!(report.already_current, 1);
        assert_eq!(report.failed.len(), 1);
        assert!(report.failed[0].starts_with("test.value d:"), "{:?}", report.failed);

        // Only the new key is needed now for the rows it could read.
        let only_new = SecretBox::new(&[[2; 32]]).expect("new key");
        let rows = ROWS.lock().expect("lock").clone();
        for (id, want) in [("a", b"alpha".as_slice()), ("b", b"beta"), ("c", b"gamma")] {
            let sealed = &rows.iter().find(|r| r.0 == id).expect("row").1;
            assert_eq!(only_new.open(&context(id), sealed).expect("opens"), want);
        }
        let again = rewrap_columns(&core, COLUMNS).await.expect("rewrap");
        assert_eq!((again.rewrapped, again.already_current), (0, 3));
    }
}
