use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Latchkey, an OpenID Connect identity provider.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Every key can also be set as LATCHKEY_SECTION__KEY.
    /// (LATCHKEY_CONFIG names it too.)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the provider (applies pending migrations first).
    Serve,
    /// Apply pending database migrations.
    Migrate {
        #[arg(long)]
        json: bool,
    },
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage relying-party clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage the encryption of secrets at rest.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Global policy: MFA for every account. Running servers apply it within 5 seconds.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// API keys for the admin API.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Groups of users, and the groups that require MFA.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Webhook endpoints: other systems told about sign-ups, sign-ins,
    /// deletions and more, signed in the Standard Webhooks form.
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Register an endpoint. Prints its signing secret once.
    Create {
        /// Where events are POSTed (https://…).
        #[arg(long)]
        url: String,
        /// user.created, user.updated, user.deleted, signin.succeeded,
        /// signin.failed, mfa.added, mfa.removed, session.revoked,
        /// consent.revoked, or * for all; repeat or separate with commas.
        #[arg(long = "event", value_name = "TYPE", num_args = 1.., required = true)]
        events: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        json: bool,
    },
    /// List endpoints (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// An endpoint's latest delivery attempts, newest first.
    Deliveries {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop or resume sending to an endpoint.
    Disable { id: String },
    /// Resume sending to a disabled endpoint.
    Enable { id: String },
    /// A new signing secret, printed once; the old one stops at once.
    RotateSecret {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete an endpoint, its log and what waits for it.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create an API key. Prints the key once; only its hash is kept.
    Create {
        #[arg(long)]
        name: String,
        /// users:read, users:write, clients:read, clients:write, groups:read,
        /// groups:write, policy:read, policy:write, audit:read, keys:read,
        /// keys:write, apikeys:write, webhooks:read, webhooks:write; repeat
        /// or separate with spaces.
        #[arg(long = "scope", value_name = "SCOPE", num_args = 1.., required = true)]
        scopes: Vec<String>,
        /// When the key stops working (RFC 3339 time or YYYY-MM-DD); default: never.
        #[arg(long, value_name = "TIME")]
        expires: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List API keys (never the keys themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key by its id or prefix; it stops working at once.
    Revoke {
        key: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Create {
        #[arg(long)]
        name: String,
        /// Members must use a second factor.
        #[arg(long)]
        require_mfa: bool,
        #[arg(long)]
        json: bool,
    },
    /// List groups.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Rename a group or change its MFA requirement (GROUP: id or name).
    Update {
        group: String,
        #[arg(long)]
        name: Option<String>,
        /// true or false.
        #[arg(long, value_name = "true|false")]
        require_mfa: Option<bool>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a group (its members stay; only the membership goes).
    Delete {
        group: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a user (by email) to a group.
    AddMember {
        group: String,
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a user (by email) from a group.
    RemoveMember {
        group: String,
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// List a group's members.
    Members {
        group: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password, if any, is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Read the password as one line from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Mark the email address as verified.
        #[arg(long)]
        verified: bool,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable an account (it can no longer sign in).
    Disable {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Enable a disabled account.
    Enable {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete an account.
    Delete {
        email: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. Prints its id and, for a confidential client, its secret (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// Exact redirect URI; repeat for several. Required with authorization_code.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        #[arg(long, value_name = "URI")]
        backchannel_logout_uri: Option<String>,
        /// A public client (a native or browser app that cannot keep a secret): no secret is issued.
        #[arg(long)]
        public: bool,
        /// A first-party client, operated by the same organisation as this provider.
        #[arg(long)]
        first_party: bool,
        /// authorization_code, refresh_token, client_credentials; repeat for several.
        #[arg(long = "grant", value_name = "GRANT")]
        grants: Vec<String>,
        /// RS256 (default), ES256 or EdDSA.
        #[arg(long, value_name = "ALG")]
        signing_alg: Option<String>,
        /// Require MFA for sign-ins to this client.
        #[arg(long)]
        require_mfa: bool,
        /// An admin client: may ask for the latchkey:admin scope (the admin API).
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a client.
    Delete {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret for a confidential client; the old one stops working.
    RotateSecret {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Set a policy.
    Set {
        /// optional: each user chooses; required: everyone must have a second factor.
        #[arg(long, value_name = "optional|required")]
        mfa: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their state (next, active, retiring, withdrawn).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a new signing key. It is published at once and signs after a lead
    /// time; the current key stays published for a day.
    Rotate {
        /// Sign with the new key at once and withdraw every other key (after a compromise).
        #[arg(long)]
        now: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every stored secret with the first configured key.
    Rewrap {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, oldest first.
    List {
        /// Only events about this account.
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
        /// Only events at or after this time (RFC 3339, or a date YYYY-MM-DD).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}
