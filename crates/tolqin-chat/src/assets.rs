//! The web page and the demo, embedded in the binary.

/// The chat page.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The chat page's script.
pub const CHAT_JS: &str = include_str!("../assets/chat.js");
/// The chat page's style (also used by the demo).
pub const CHAT_CSS: &str = include_str!("../assets/chat.css");
/// The hello demo page.
pub const DEMO_HTML: &str = include_str!("../assets/demo.html");
/// The hello demo's script.
pub const DEMO_JS: &str = include_str!("../assets/demo.js");
