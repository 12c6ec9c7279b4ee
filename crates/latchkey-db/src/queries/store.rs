//! The embedded store's tables: short-lived entries, counters and per-user
//! indexes. Expiry is milliseconds since the epoch by the caller's clock.
//! Upserts and `DELETE … RETURNING` are not portable across a
//! MultiConnection, so those few run per backend.

use diesel::prelude::*;

use crate::schema::{store_counters, store_entries, store_index};
use crate::{DbConnection, DbError};

/// Sets `key`, replacing any value.
pub fn put(conn: &mut DbConnection, key: &str, value: &[u8], expires_at: i64) -> Result<(), DbError> {
    let row = (store_entries::key.eq(key), store_entries::value.eq(value), store_entries::expires_at.eq(expires_at));
    on_backend!(conn, |c| diesel::insert_into(store_entries::table)
        .values(row)
        .on_conflict(store_entries::key)
        .do_update()
        .set((store_entries::value.eq(value), store_entries::expires_at.eq(expires_at)))
        .execute(c))?;
    Ok(())
}

/// Sets `key` only if it is absent or expired; true when this call set it.
pub fn put_if_absent(
    conn: &mut DbConnection,
    key: &str,
    value: &[u8],
    expires_at: i64,
    now: i64,
) -> Result<bool, DbError> {
    // `ON CONFLICT … DO UPDATE … WHERE` comes from this trait, not QueryDsl.
    use diesel::query_dsl::methods::FilterDsl as _;
    let row = (store_entries::key.eq(key), store_entries::value.eq(value), store_entries::expires_at.eq(expires_at));
    let n = on_backend!(conn, |c| diesel::insert_into(store_entries::table)
        .values(row)
        .on_conflict(store_entries::key)
        .do_update()
        .set((store_entries::value.eq(value), store_entries::expires_at.eq(expires_at)))
        .filter(store_entries::expires_at.le(now))
        .execute(c))?;
    Ok(n == 1)
}

/// Replaces `key` only if it holds a live value; true when it did.
pub fn replace(conn: &mut DbConnection, key: &str, value: &[u8], expires_at: i64, now: i64) -> Result<bool, DbError> {
    let n = diesel::update(
        store_entries::table.filter(store_entries::key.eq(key)).filter(store_entries::expires_at.gt(now)),
    )
    .set((store_entries::value.eq(value), store_entries::expires_at.eq(expires_at)))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn get(conn: &mut DbConnection, key: &str, now: i64) -> Result<Option<Vec<u8>>, DbError> {
    Ok(store_entries::table
        .filter(store_entries::key.eq(key))
        .filter(store_entries::expires_at.gt(now))
        .select(store_entries::value)
        .first(conn)
        .optional()?)
}

/// The values of `keys` that exist, as (key, value), in one query.
pub fn get_many(conn: &mut DbConnection, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, DbError> {
    Ok(store_entries::table
        .filter(store_entries::key.eq_any(keys))
        .select((store_entries::key, store_entries::value))
        .load(conn)?)
}

/// Removes `key` and returns its value if it had not expired, atomically: of
/// any number of concurrent takes, one gets the value.
pub fn take(conn: &mut DbConnection, key: &str, now: i64) -> Result<Option<Vec<u8>>, DbError> {
    let taken: Option<(Vec<u8>, i64)> =
        on_backend!(conn, |c| diesel::delete(store_entries::table.filter(store_entries::key.eq(key)))
            .returning((store_entries::value, store_entries::expires_at))
            .get_result(c)
            .optional())?;
    Ok(taken.and_then(|(v, exp)| (exp > now).then_some(v)))
}

/// Removes `key`; true if it was there (expired or not).
pub fn delete(conn: &mut DbConnection, key: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(store_entries::table.filter(store_entries::key.eq(key))).execute(conn)? > 0)
}

/// Adds one to the counter `key` (created at 1) and returns the new count.
pub fn incr(conn: &mut DbConnection, key: &str, expires_at: i64) -> Result<i64, DbError> {
    let row = (store_counters::key.eq(key), store_counters::count.eq(1i64), store_counters::expires_at.eq(expires_at));
    Ok(on_backend!(conn, |c| diesel::insert_into(store_counters::table)
        .values(row)
        .on_conflict(store_counters::key)
        .do_update()
        .set(store_counters::count.eq(store_counters::count + 1i64))
        .returning(store_counters::count)
        .get_result::<i64>(c))?)
}

/// Takes one back from a counter (never below zero).
pub fn decr(conn: &mut DbConnection, key: &str) -> Result<(), DbError> {
    diesel::update(store_counters::table.filter(store_counters::key.eq(key)).filter(store_counters::count.gt(0i64)))
        .set(store_counters::count.eq(store_counters::count - 1i64))
        .execute(conn)?;
    Ok(())
}

pub fn counter(conn: &mut DbConnection, key: &str) -> Result<i64, DbError> {
    Ok(store_counters::table
        .filter(store_counters::key.eq(key))
        .select(store_counters::count)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Adds `member` to `index` (or moves its expiry).
pub fn index_add(conn: &mut DbConnection, index: &str, member: &str, expires_at: i64) -> Result<(), DbError> {
    let row =
        (store_index::index_key.eq(index), store_index::member.eq(member), store_index::expires_at.eq(expires_at));
    on_backend!(conn, |c| diesel::insert_into(store_index::table)
        .values(row)
        .on_conflict((store_index::index_key, store_index::member))
        .do_update()
        .set(store_index::expires_at.eq(expires_at))
        .execute(c))?;
    Ok(())
}

/// Members of `index` that have not expired, oldest expiry first.
pub fn index_list(conn: &mut DbConnection, index: &str, now: i64) -> Result<Vec<String>, DbError> {
    Ok(store_index::table
        .filter(store_index::index_key.eq(index))
        .filter(store_index::expires_at.gt(now))
        .order((store_index::expires_at.asc(), store_index::member.asc()))
        .select(store_index::member)
        .load(conn)?)
}

pub fn index_remove(conn: &mut DbConnection, index: &str, member: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(
        store_index::table.filter(store_index::index_key.eq(index)).filter(store_index::member.eq(member)),
    )
    .execute(conn)?
        > 0)
}

/// Deletes the entry `key` only while it holds `value` (releasing a lock).
pub fn delete_if(conn: &mut DbConnection, key: &str, value: &[u8]) -> Result<bool, DbError> {
    Ok(diesel::delete(store_entries::table.filter(store_entries::key.eq(key)).filter(store_entries::value.eq(value)))
        .execute(conn)?
        > 0)
}

/// Removes everything that expired before `now`; returns how many rows.
pub fn sweep(conn: &mut DbConnection, now: i64) -> Result<usize, DbError> {
    let a = diesel::delete(store_entries::table.filter(store_entries::expires_at.le(now))).execute(conn)?;
    let b = diesel::delete(store_counters::table.filter(store_counters::expires_at.le(now))).execute(conn)?;
    let c = diesel::delete(store_index::table.filter(store_index::expires_at.le(now))).execute(conn)?;
    Ok(a + b + c)
}
