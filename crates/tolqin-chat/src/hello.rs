//! `/hello`: the demo server of the article. It answers each message with
//! `Hello from server, NAME!` (NAME: the message's last word, `Guest` without one) and closes
//! with 1000 `Bye!` five seconds after the first message.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tolqin::{CloseCode, WebSocket};

use crate::server::Shared;

/// The time from the first message to the close.
pub const BYE_AFTER: Duration = Duration::from_secs(5);

/// Names are cut to this many characters in the answer.
const MAX_NAME_CHARS: usize = 50;

/// The last word of `message` (letters, marks, digits and connectors, as the article's
/// `/([\p{Alpha}\p{M}\p{Nd}\p{Pc}\p{Join_C}]+)$/u`), or `Guest`.
///
/// ```
/// use tolqin_chat::hello::name_of;
/// assert_eq!(name_of("My name is John"), "John");
/// assert_eq!(name_of("Mening ismim Oʻtkir"), "Oʻtkir");
/// assert_eq!(name_of("!!!"), "Guest");
/// ```
pub fn name_of(message: &str) -> &str {
    let message = message.trim_end();
    let start = message
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_word(c))
        .last()
        .map_or(message.len(), |(i, _)| i);
    let word = &message[start..];
    if word.is_empty() {
        return "Guest";
    }
    crate::message::cut(word, MAX_NAME_CHARS)
}

fn is_word(c: char) -> bool {
    // \p{Alpha} \p{Nd} \p{Pc} and the joiners; combining marks and modifier letters such as
    // the Uzbek ʻ (U+02BB) are alphabetic or joiners in practice.
    c.is_alphanumeric()
        || c == '_'
        || c == '\u{200C}'
        || c == '\u{200D}'
        || ('\u{0300}'..='\u{036F}').contains(&c)
        || c == '\u{02BB}'
        || c == '\u{02BC}'
}

/// Serves one `/hello` socket.
pub(crate) async fn serve<S>(mut ws: WebSocket<S>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bye = tokio::time::sleep(Duration::MAX);
    tokio::pin!(bye);
    let mut first = true;
    loop {
        tokio::select! {
            message = ws.recv() => match message {
                Some(Ok(message)) => {
                    let text = message.as_text().unwrap_or("");
                    let answer = format!("Hello from server, {}!", name_of(text));
                    if ws.send(answer).await.is_err() {
                        return;
                    }
                    if first {
                        first = false;
                        bye.as_mut().reset(tokio::time::Instant::now() + BYE_AFTER);
                    }
                }
                Some(Err(e)) => tracing::debug!(error = %e, "hello client failed"),
                None => return,
            },
            () = &mut bye => {
                crate::client::close(&mut ws, CloseCode::NORMAL, "Bye!", &shared).await;
                return;
            }
            () = shared.shutdown.cancelled() => {
                crate::client::close(&mut ws, CloseCode::GOING_AWAY, "server is shutting down", &shared).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_word_or_guest() {
        for (message, name) in [
            ("My name is John", "John"),
            ("John", "John"),
            ("My name is John ", "John"),
            ("My name is John!", "Guest"),
            ("", "Guest"),
            ("Salom, men Ulug'bek", "bek"),
            ("Ismim Gʻayrat", "Gʻayrat"),
            ("Меня зовут Иван", "Иван"),
            ("user_42", "user_42"),
        ] {
            assert_eq!(name_of(message), name, "{message:?}");
        }
        assert_eq!(name_of(&"a".repeat(500)).len(), MAX_NAME_CHARS);
    }
}
