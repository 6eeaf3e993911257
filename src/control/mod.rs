//! Control of the running daemon that both the API and the daemon use: the
//! admin token and the reloader. Its own module, so neither of them
//! imports the other.

mod reload;
mod token;

pub use reload::Reloader;
pub use token::AdminToken;
