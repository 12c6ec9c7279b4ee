mod admin;
mod serve;

use std::sync::Arc;

use latchkey_core::{Core, Settings, SystemClock};

use crate::cli::{Cli, Command};

/// Runs one command; an error is the one line to print.
pub async fn run(cli: Cli) -> Result<(), String> {
    // An empty LATCHKEY_CONFIG means no file, like an unset one.
    let file =
        cli.config.clone().or_else(|| std::env::var_os("LATCHKEY_CONFIG").filter(|v| !v.is_empty()).map(Into::into));
    let mut settings = Settings::load(file.as_deref(), std::env::vars()).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Serve => serve::serve(settings).await,
        other => {
            crate::logging::init_quiet();
            // A one-shot command keeps no idle connection that could still be
            // opening when the process exits.
            settings.database.idle_connections = 0;
            let core = build_core(settings)?;
            admin::run(&core, other).await
        }
    }
}

pub fn build_core(settings: Settings) -> Result<Core, String> {
    Core::build(settings, Arc::new(SystemClock)).map_err(|e| e.to_string())
}

/// Applies pending migrations where that is safe to do implicitly (`serve`,
/// and any command on SQLite); on PostgreSQL other commands ask for `migrate`.
pub async fn ensure_migrated(core: &Core, apply: bool) -> Result<Vec<String>, String> {
    let reach = |e: latchkey_db::DbError| format!("database.url: cannot use {}: {e}", core.db.label());
    if apply {
        return core.db.migrate().await.map_err(reach);
    }
    let pending = core.db.pending_migrations().await.map_err(reach)?;
    if pending.is_empty() {
        Ok(Vec::new())
    } else {
        Err(format!("the database has {} pending migration(s); run `latchkey migrate` first", pending.len()))
    }
}
