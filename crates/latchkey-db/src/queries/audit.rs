use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::audit_events;
use crate::{DbConnection, DbError};

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: String,
    pub at: NaiveDateTime,
    pub kind: String,
    pub outcome: String,
    pub actor: String,
    pub user_id: Option<String>,
    /// The account's normalised email at the time (or the address tried,
    /// where no account was found). Cleared when the account is deleted:
    /// its events then carry a pseudonym instead (see [`pseudonymise`]).
    pub user_email: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// JSON object as text.
    pub detail: String,
}

pub fn insert(conn: &mut DbConnection, row: &AuditRow) -> Result<(), DbError> {
    diesel::insert_into(audit_events::table).values(row).execute(conn)?;
    Ok(())
}

/// Events oldest first, optionally for one (normalised) email address and
/// from a time on.
pub fn list(
    conn: &mut DbConnection,
    user_email: Option<&str>,
    since: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<AuditRow>, DbError> {
    let mut q = audit_events::table.select(AuditRow::as_select()).into_boxed();
    if let Some(e) = user_email {
        q = q.filter(audit_events::user_email.eq(e.to_owned()));
    }
    if let Some(t) = since {
        q = q.filter(audit_events::at.ge(t));
    }
    Ok(q.order((audit_events::at.asc(), audit_events::id.asc())).limit(limit).load(conn)?)
}

/// Removes events older than `before` (retention); returns how many.
pub fn purge_before(conn: &mut DbConnection, before: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(audit_events::table.filter(audit_events::at.lt(before))).execute(conn)?)
}

/// What the admin console and API filter the audit log by.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    /// Normalised: also finds events for an address without an account.
    pub user_email: Option<String>,
    pub kind: Option<String>,
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

/// Events newest first, `limit` of them from `offset`, and how many match.
pub fn page(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<AuditRow>, i64), DbError> {
    let filtered = || {
        let mut q = audit_events::table.into_boxed();
        if let Some(u) = &filter.user_id {
            q = q.filter(audit_events::user_id.eq(u.clone()));
        }
        if let Some(e) = &filter.user_email {
            q = q.filter(audit_events::user_email.eq(e.clone()));
        }
        if let Some(k) = &filter.kind {
            q = q.filter(audit_events::kind.eq(k.clone()));
        }
        if let Some(t) = filter.since {
            q = q.filter(audit_events::at.ge(t));
        }
        if let Some(t) = filter.until {
            q = q.filter(audit_events::at.lt(t));
        }
        q
    };
    let total = filtered().count().get_result(conn)?;
    let rows = filtered()
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// What the audit log keeps of a deleted account (in the deletion's
/// transaction): every event about it — by its id, or by its normalised
/// address where no other account is named — gets `pseudonym` as its user
/// and loses the address; events it caused (`user:ID`, `admin:ID`) name the
/// pseudonym as their actor; and in the details of all those events each
/// `(text, replacement)` of `scrub` is replaced (ASCII letters in any case;
/// the texts as JSON writes them inside a string). One pseudonym for all of
/// them keeps the events linkable to each other, and to nothing else.
/// Returns how many events now carry the pseudonym.
pub fn pseudonymise(
    conn: &mut DbConnection,
    user_id: &str,
    email_normalized: &str,
    pseudonym: &str,
    scrub: &[(String, String)],
) -> Result<usize, DbError> {
    use audit_events::dsl as a;
    for role in ["user", "admin"] {
        diesel::update(a::audit_events.filter(a::actor.eq(format!("{role}:{user_id}"))))
            .set(a::actor.eq(format!("{role}:{pseudonym}")))
            .execute(conn)?;
    }
    diesel::update(
        a::audit_events.filter(a::user_id.eq(user_id).or(a::user_id.is_null().and(a::user_email.eq(email_normalized)))),
    )
    .set(a::user_id.eq(pseudonym))
    .execute(conn)?;
    diesel::update(a::audit_events.filter(a::user_id.eq(pseudonym).or(a::user_email.eq(email_normalized))))
        .set(a::user_email.eq(None::<String>))
        .execute(conn)?;
    let rows: Vec<(String, String)> = a::audit_events
        .filter(
            a::user_id
                .eq(pseudonym)
                .or(a::actor.eq(format!("user:{pseudonym}")))
                .or(a::actor.eq(format!("admin:{pseudonym}"))),
        )
        .select((a::id, a::detail))
        .load(conn)?;
    let mut linked = 0;
    for (id, detail) in rows {
        linked += 1;
        let mut scrubbed = detail.clone();
        for (text, with) in scrub.iter().filter(|(t, _)| !t.is_empty()) {
            scrubbed = replace_ignoring_ascii_case(&scrubbed, text, with);
        }
        if scrubbed != detail {
            diesel::update(a::audit_events.find(&id)).set(a::detail.eq(scrubbed)).execute(conn)?;
        }
    }
    Ok(linked)
}

/// `haystack` with every occurrence of `needle` (ASCII letters in any case)
/// replaced by `with`.
fn replace_ignoring_ascii_case(haystack: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return haystack.to_owned();
    }
    let lower_hay = haystack.to_ascii_lowercase();
    let lower_needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(haystack.len());
    let mut from = 0;
    // ASCII lower-casing keeps every byte where it was, so positions found in
    // the lowered text are positions in the original, on char boundaries.
    while let Some(i) = lower_hay[from..].find(&lower_needle) {
        out.push_str(&haystack[from..from + i]);
        out.push_str(with);
        from += i + lower_needle.len();
    }
    out.push_str(&haystack[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::replace_ignoring_ascii_case;

    #[test]
    fn replacing_ignores_ascii_case_and_keeps_the_rest() {
        assert_eq!(
            replace_ignoring_ascii_case(r#"{"to":"Ada@Example.com","cc":"ada@example.com"}"#, "ada@example.com", "-"),
            r#"{"to":"-","cc":"-"}"#
        );
        assert_eq!(replace_ignoring_ascii_case("é ada é", "ADA", "x"), "é x é");
        assert_eq!(replace_ignoring_ascii_case("nothing", "ada", "x"), "nothing");
    }
}
