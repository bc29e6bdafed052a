//! `/hello`: the demo server of the article. It answers each message with
//! `Hello from server, NAME!` (NAME: the message's last word, `Guest` without one) and closes
//! with 1000 `Bye!` five seconds after the first message. A client that sends nothing within
//! [`crate::ChatConfig::first_message_timeout`] is closed with 1008 "no message in time".

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tolqin::{CloseCode, WebSocket};

use crate::server::Shared;

/// The time from the first message to the close.
pub const BYE_AFTER: Duration = Duration::from_secs(5);

/// Names are cut to this many characters in the answer.
const MAX_NAME_CHARS: usize = 50;

/// The last word of `message`, or `Guest` when it has none: the last run of characters (as a
/// reader counts them: grapheme clusters, so a letter keeps its marks, a Devanagari syllable
/// its virama) that start with a letter or digit of any script, or `_`. Punctuation after it
/// is not part of it ("Hi, I am John!" is John), and an apostrophe between two letters joins
/// them (' ‘ ’ ʻ ʼ: Uzbek and other Latin orthographies write names such as O‘tkir with it).
///
/// ```
/// use tolqin_chat::hello::name_of;
/// assert_eq!(name_of("Hi, I am John!"), "John");
/// assert_eq!(name_of("Mening ismim O‘tkir"), "O‘tkir");
/// assert_eq!(name_of("!!!"), "Guest");
/// ```
pub fn name_of(message: &str) -> &str {
    use unicode_segmentation::UnicodeSegmentation;
    let graphemes: Vec<(usize, &str)> = message.grapheme_indices(true).collect();
    let is_letter = |g: &str| g.starts_with(|c: char| c.is_alphanumeric() || c == '_');
    let is_apostrophe =
        |g: &str| matches!(g, "'" | "\u{2018}" | "\u{2019}" | "\u{2bb}" | "\u{2bc}");
    let Some(last) = graphemes.iter().rposition(|&(_, g)| is_letter(g)) else {
        return "Guest";
    };
    let mut first = last;
    while first > 0 {
        if is_letter(graphemes[first - 1].1) {
            first -= 1;
        } else if first >= 2
            && is_apostrophe(graphemes[first - 1].1)
            && is_letter(graphemes[first - 2].1)
        {
            first -= 2;
        } else {
            break;
        }
    }
    let (end, g) = graphemes[last];
    let word = &message[graphemes[first].0..end + g.len()];
    crate::message::cut(word, MAX_NAME_CHARS)
}

/// Serves one `/hello` socket.
pub(crate) async fn serve<S>(mut ws: WebSocket<S>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Until the first message: the time allowed to send it (a silent client is closed).
    let bye = tokio::time::sleep(shared.config.first_message_timeout);
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
                if first {
                    crate::metrics::Metrics::add(&shared.metrics.hello_timeouts, 1);
                    let reason = "no message in time";
                    crate::client::close(&mut ws, CloseCode::POLICY_VIOLATION, reason, &shared).await;
                } else {
                    crate::client::close(&mut ws, CloseCode::NORMAL, "Bye!", &shared).await;
                }
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
            ("My name is John!", "John"),
            ("Hi, I am John!", "John"),
            ("", "Guest"),
            ("!!! ???", "Guest"),
            // The Uzbek apostrophes, each way they are typed.
            ("Mening ismim O‘tkir", "O‘tkir"),
            ("Mening ismim O’tkir", "O’tkir"),
            ("Mening ismim Oʻtkir", "Oʻtkir"),
            ("Mening ismim O'tkir.", "O'tkir"),
            ("Salom, men Gʼayrat", "Gʼayrat"),
            ("Меня зовут Иван.", "Иван"),
            ("我的名字是 李雷", "李雷"),
            ("Salom, men Ulug'bek!", "Ulug'bek"),
            ("'quoted'", "quoted"),
            ("मेरा नाम अनुष्का", "अनुष्का"),
            ("Ich heiße Zoë", "Zoë"),
            ("user_42", "user_42"),
        ] {
            assert_eq!(name_of(message), name, "{message:?}");
        }
        assert_eq!(name_of(&"a".repeat(500)).len(), MAX_NAME_CHARS);
    }
}
