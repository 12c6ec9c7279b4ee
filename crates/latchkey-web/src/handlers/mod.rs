pub mod health;
pub mod wellknown;
