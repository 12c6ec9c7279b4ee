use latchkey_core::Settings;
use latchkey_web::ServeOptions;

use super::{build_core, ensure_migrated};

pub async fn serve(settings: Settings) -> Result<(), String> {
    crate::logging::init(&settings.log);
    let core = build_core(settings)?;
    let applied = ensure_migrated(&core, true).await?;
    for m in &applied {
        tracing::info!(migration = %m, "applied migration");
    }
    core.ensure_signing_key().await.map_err(|e| format!("cannot prepare a signing key: {e}"))?;
    let listeners = latchkey_web::bind(&core)
        .map_err(|e| format!("server.bind: cannot listen on {}: {e}", core.settings.server.bind))?;
    let addrs: Vec<String> = listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.to_string()).collect();

    let s = &core.settings;
    println!("Latchkey is running at {} (listening on {})", s.server.public_url, addrs.join(", "));
    if s.is_embedded() {
        println!("Embedded mode: data in {} (SQLite database and encryption key)", s.data_dir.display());
    } else {
        println!("Database: {}", core.db.label());
        println!("Session store: {}", core.store.kind());
        if let Some(outbox) = core.mailer.outbox() {
            tracing::warn!(outbox = %outbox.display(), "mail.smtp_url is not set: mail is written to files, not sent");
        }
    }
    match latchkey_core::accounts::count_admins(&core).await {
        Ok(0) => {
            println!("No admin account yet. Create the first one with:");
            println!("  latchkey user create --email you@example.com --admin --verified --password-stdin");
            println!("(from a source checkout: cargo run --release -- user create …)");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not count admin accounts"),
    }

    let maintenance = tokio::spawn(latchkey_core::maintenance::run_forever(core.clone()));
    let mail = tokio::spawn(latchkey_core::mail::run_worker(core.clone()));
    let deliveries = tokio::spawn(latchkey_core::oidc::backchannel::run_worker(core.clone()));
    let server = latchkey_web::build_server(core, listeners, &ServeOptions::default())
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
    let served = server.await;
    maintenance.abort();
    mail.abort();
    deliveries.abort();
    served.map_err(|e| format!("server stopped: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}
