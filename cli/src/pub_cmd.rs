//! `moat mqtt pub`: publish messages to one topic over one connection, then disconnect.
//!
//! Exactly one source of messages: `-m MSG` (repeatable, one message each), `-f FILE` (one per
//! line), `-l`/`-s` (one per line of stdin, published as the lines arrive), `-R` (all of
//! stdin as one message) or `-n` (one zero-length message). Blank lines are skipped. Each
//! message is encoded by the codec (`-C`); with the default `binary` codec its bytes are sent
//! as they are. Every message and file is checked before connecting.
//!
//! It never reconnects: a lost connection ends the run with exit code 1, and each publish
//! waits for its QoS flow (PUBACK, PUBCOMP), so a 0 exit means the broker took every message.

use std::io::{self, BufRead as _, Read as _};
use std::path::{Path, PathBuf};
use std::pin::pin;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::{Either, select};
use futures::{SinkExt as _, StreamExt as _};
use moat_mqtt_core::codec::QoS;
use moat_mqtt_core::driver::Client;
use moat_mqtt_core::payload::Codec;
use moat_mqtt_core::topic::TopicName;

use crate::broker_cmd::Failure;
use crate::client_opts::{
    ClientArgs, Role, connect_error, encode_text, failed, run_error, run_on, usage, without_os_error,
};

/// Lines of stdin read ahead of publishing.
const STDIN_QUEUE: usize = 64;

/// Options of `moat mqtt pub`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("source").required(true).args(["message", "file", "stdin_line", "stdin_all", "null_message"])
))]
pub(crate) struct PubArgs {
    /// The topic to publish to.
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    topic: String,
    /// A message to send; repeat for several (one message each).
    #[arg(short = 'm', long = "message", value_name = "MSG")]
    message: Vec<String>,
    /// Send each line of FILE as a message.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Send each line of stdin as a message, as it arrives.
    #[arg(short = 'l', long = "stdin-line", visible_short_alias = 's')]
    stdin_line: bool,
    /// Send all of stdin as one message.
    #[arg(short = 'R', long = "stdin-all")]
    stdin_all: bool,
    /// Send one null (zero-length) message.
    #[arg(short = 'n', long = "null-message")]
    null_message: bool,
    /// Publish retained [default: the configuration's `topics` / `default_retain`, else no].
    #[arg(short = 'r', long = "retain")]
    retain: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// Where the messages come from once connected.
enum Messages {
    /// Encoded before connecting.
    Ready(Vec<Bytes>),
    /// Lines of stdin, read by a thread as they come.
    StdinLines(mpsc::Receiver<io::Result<Vec<u8>>>),
}

/// Publishes the messages `args` asks for.
///
/// # Errors
/// [`Failure::Usage`] for a bad topic, message, file or configuration; [`Failure::Run`] when
/// the broker cannot be reached, refuses, or the connection is lost.
pub(crate) fn run(config_file: Option<&Path>, args: &PubArgs) -> Result<(), Failure> {
    let prepared = args.client.prepare(config_file, Role::Pub)?;
    let mut options = prepared.options;
    // One connection per run: a lost connection is an error, not a reason to wait.
    options.auto_reconnect = false;
    let topic = TopicName::new(args.topic.clone()).map_err(|e| usage(format!("-t {:?}: {e}", args.topic)))?;
    let (default_qos, default_retain) = options.defaults_for(&topic);
    let qos = prepared.qos.unwrap_or(default_qos);
    let retain = args.retain || default_retain;
    let codec = prepared.codec;
    let messages = messages(args, &codec)?;
    let url = options.url.clone();
    run_on(prepared.runtime, move |connect, stop| async move {
        let client = connect(options).await.map_err(|e| connect_error(&e, &url))?;
        log::info!("connected to {url} as {}", client.options().client_id.as_deref().unwrap_or("?"));
        let work = pin!(publish_all(&client, topic.as_str(), messages, &codec, qos, retain));
        let result = match select(work, stop).await {
            Either::Left((result, _)) => result,
            Either::Right(((), _)) => Ok(()),
        };
        client.disconnect().await;
        result.map_err(|e| match e {
            PubError::Client(e) => run_error(&e, &url),
            PubError::Other(failure) => failure,
        })
    })
}

/// The messages from the source `args` names; stdin lines are only started here.
fn messages(args: &PubArgs, codec: &Codec) -> Result<Messages, Failure> {
    if !args.message.is_empty() {
        let encoded = args
            .message
            .iter()
            .map(|m| encode_text(codec, m.as_bytes()).map_err(|e| usage(format!("-m {m:?}: {e}"))))
            .collect::<Result<_, _>>()?;
        return Ok(Messages::Ready(encoded));
    }
    if let Some(path) = &args.file {
        let data = std::fs::read(path)
            .map_err(|e| usage(format!("-f {}: {}", path.display(), without_os_error(&e.to_string()))))?;
        let mut encoded = Vec::new();
        for (n, line) in lines(&data) {
            let payload = encode_text(codec, line).map_err(|e| usage(format!("{}:{n}: {e}", path.display())))?;
            encoded.push(payload);
        }
        if encoded.is_empty() {
            log::warn!("{} has no lines: nothing to publish", path.display());
        }
        return Ok(Messages::Ready(encoded));
    }
    if args.stdin_all {
        let mut data = Vec::new();
        io::stdin().lock().read_to_end(&mut data).map_err(|e| failed(format!("cannot read stdin: {e}")))?;
        let payload = encode_text(codec, &data).map_err(|e| failed(format!("stdin: {e}")))?;
        return Ok(Messages::Ready(vec![payload]));
    }
    if args.stdin_line {
        return Ok(Messages::StdinLines(read_stdin_lines()));
    }
    // -n: clap makes sure one source was given.
    Ok(Messages::Ready(vec![Bytes::new()]))
}

/// The non-blank lines of `data` with their 1-based numbers, without line ends.
fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    data.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.is_empty())
}

/// Starts a thread that sends each line of stdin (with its line end) as it is read.
fn read_stdin_lines() -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (mut sender, receiver) = mpsc::channel(STDIN_QUEUE);
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let mut line = Vec::new();
            let item = match stdin.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => Ok(line),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if futures::executor::block_on(sender.send(item)).is_err() || failed {
                break;
            }
        }
    });
    receiver
}

/// Why publishing stopped.
enum PubError {
    /// The client failed.
    Client(moat_mqtt_core::driver::ClientError),
    /// Something else, already told.
    Other(Failure),
}

/// Publishes every message in order, each once its predecessor's QoS flow is complete.
async fn publish_all(
    client: &Client,
    topic: &str,
    messages: Messages,
    codec: &Codec,
    qos: QoS,
    retain: bool,
) -> Result<(), PubError> {
    match messages {
        Messages::Ready(payloads) => {
            let count = payloads.len();
            for payload in payloads {
                client.publish(topic, payload, qos, retain).await.map_err(PubError::Client)?;
            }
            log::info!("published {count} message(s) to {topic:?} at QoS {}", qos as u8);
        }
        Messages::StdinLines(mut lines) => {
            let (mut number, mut sent, mut bad) = (0usize, 0usize, 0usize);
            while let Some(line) = lines.next().await {
                number += 1;
                let line = line.map_err(|e| PubError::Other(failed(format!("cannot read stdin: {e}"))))?;
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    continue;
                }
                match encode_text(codec, line) {
                    Ok(payload) => {
                        client.publish(topic, payload, qos, retain).await.map_err(PubError::Client)?;
                        sent += 1;
                    }
                    Err(e) => {
                        log::error!("stdin line {number} not published: {e}");
                        bad += 1;
                    }
                }
            }
            log::info!("published {sent} line(s) to {topic:?} at QoS {}", qos as u8);
            if bad > 0 {
                return Err(PubError::Other(failed(format!(
                    "{bad} line(s) of stdin could not be encoded by the {} codec and were not published",
                    codec.name()
                ))));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::lines;

    #[test]
    fn lines_skip_blanks_and_line_ends() {
        let got: Vec<_> = lines(b"a\r\n\nb\nc").collect();
        assert_eq!(got, vec![(1, &b"a"[..]), (3, &b"b"[..]), (4, &b"c"[..])]);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"\n\n").count(), 0);
    }
}
