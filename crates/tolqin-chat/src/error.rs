//! The error type of the chat server.

/// What can stop the chat server from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The listening socket could not be opened (address in use, permission denied...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Another I/O error of the listening socket.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An option that cannot work (for example a zero-sized queue).
    #[error("invalid configuration: {0}")]
    Config(String),
}
