use latchkey_core::settings::{LogFormat, LogSettings};
use tracing_subscriber::EnvFilter;

/// Logs go to stderr: one line per event, text or JSON.
pub fn init(log: &LogSettings) {
    let filter =
        EnvFilter::try_new(format!("{},actix_server=warn", log.level)).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match log.format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

/// Commands other than `serve` say what went wrong in their one error line;
/// only errors besides that are logged.
pub fn init_quiet() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("error"))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}
