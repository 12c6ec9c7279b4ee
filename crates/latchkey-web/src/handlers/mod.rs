pub mod account;
pub mod assets;
pub mod auth;
pub mod health;
pub mod mfa;
pub mod oidc;
pub mod upstream;
pub mod wellknown;
