//! The store as tables in the SQL database (embedded mode).

use latchkey_db::Db;
use latchkey_db::store as q;

use super::StoreError;

pub async fn put(db: &Db, key: &str, raw: Vec<u8>, expires_at: i64) -> Result<(), StoreError> {
    let key = key.to_owned();
    Ok(db.run(move |c| q::put(c, &key, &raw, expires_at)).await?)
}

pub async fn put_if_absent(db: &Db, key: &str, raw: Vec<u8>, expires_at: i64, now: i64) -> Result<bool, StoreError> {
    let key = key.to_owned();
    Ok(db.run(move |c| q::put_if_absent(c, &key, &raw, expires_at, now)).await?)
}

pub async fn replace(db: &Db, key: &str, raw: Vec<u8>, expires_at: i64, now: i64) -> Result<bool, StoreError> {
    let key = key.to_owned();
    Ok(db.run(move |c| q::replace(c, &key, &raw, expires_at, now)).await?)
}

/// The raw value (expiry header included), live or not: the caller checks.
pub async fn get(db: &Db, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let key = key.to_owned();
    Ok(db.run(move |c| q::get(c, &key, i64::MIN)).await?)
}

pub async fn get_many(db: &Db, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
    let wanted = keys.to_vec();
    let mut found: std::collections::HashMap<String, Vec<u8>> =
        db.run(move |c| q::get_many(c, &wanted)).await?.into_iter().collect();
    Ok(keys.iter().map(|k| found.remove(k)).collect())
}

pub async fn take(db: &Db, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let key = key.to_owned();
    Ok(db.run(move |c| q::take(c, &key, i64::MIN)).await?)
}

pub async fn delete(db: &Db, key: &str) -> Result<bool, StoreError> {
    let key = key.to_owned();
    Ok(db.run(move |c| q::delete(c, &key)).await?)
}

pub async fn delete_if_payload(db: &Db, key: &str, payload: &[u8]) -> Result<bool, StoreError> {
    // The stored value is the expiry header then the payload. Read it, then
    // delete only that exact value (`DELETE … WHERE key = ? AND value = ?`),
    // outside a transaction: no read-to-write lock upgrade, and a value
    // replaced in between is left alone.
    let key = key.to_owned();
    let payload = payload.to_vec();
    Ok(db
        .run(move |c| match q::get(c, &key, i64::MIN)? {
            Some(raw) if raw.len() >= 8 && raw[8..] == payload[..] => q::delete_if(c, &key, &raw),
            _ => Ok(false),
        })
        .await?)
}

pub async fn incr(db: &Db, key: &str, expires_at: i64) -> Result<i64, StoreError> {
    let key = key.to_owned();
    Ok(db.run(move |c| q::incr(c, &key, expires_at)).await?)
}

pub async fn decr(db: &Db, key: &str) -> Result<(), StoreError> {
    let key = key.to_owned();
    Ok(db.run(move |c| q::decr(c, &key)).await?)
}

pub async fn counter(db: &Db, key: &str) -> Result<i64, StoreError> {
    let key = key.to_owned();
    Ok(db.run(move |c| q::counter(c, &key)).await?)
}

pub async fn index_add(db: &Db, index: &str, member: &str, expires_at: i64) -> Result<(), StoreError> {
    let (index, member) = (index.to_owned(), member.to_owned());
    Ok(db.run(move |c| q::index_add(c, &index, &member, expires_at)).await?)
}

pub async fn index_list(db: &Db, index: &str, now: i64) -> Result<Vec<String>, StoreError> {
    let index = index.to_owned();
    Ok(db.run(move |c| q::index_list(c, &index, now)).await?)
}

pub async fn index_remove(db: &Db, index: &str, member: &str) -> Result<bool, StoreError> {
    let (index, member) = (index.to_owned(), member.to_owned());
    Ok(db.run(move |c| q::index_remove(c, &index, &member)).await?)
}

pub async fn sweep(db: &Db, now: i64) -> Result<usize, StoreError> {
    Ok(db.run(move |c| q::sweep(c, now)).await?)
}
