//! The stream every connection to a server runs over. It reads each server message before the
//! client library does, so that it can hold the connection to three promises:
//! - until the server is ready for queries, an authentication request that would send the
//!   password in cleartext or as MD5 ends the connection (only SCRAM-SHA-256 may carry it);
//! - the connection and the whole startup finish within the startup deadline (a program that
//!   is not PostgreSQL, or one that hangs, is let go);
//! - once a request is sent, the server answers within the reply deadline: a server that is
//!   paused, stopped or cut off ends the request with an error naming it, never a hang. The
//!   error is handed to the client library as an ErrorResponse, so the caller's own request
//!   fails with it (an I/O error would only reach the library's connection task).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Authentication requests that carry the password itself or its MD5 hash.
const CLEARTEXT_PASSWORD: u32 = 3;
const MD5_PASSWORD: u32 = 5;

/// How long the server has, for the startup and then for each answer.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub startup: Duration,
    pub reply: Duration,
}

/// A TCP connection guarded for its whole life, or the error that stopped it from being made
/// (handed to the client library as the stream's first error, so it reports it).
pub enum Guarded {
    Open(Box<Open>),
    Failed(Option<io::Error>),
}

pub struct Open {
    stream: TcpStream,
    port: u16,
    deadlines: Deadlines,
    deadline: Pin<Box<Sleep>>,
    /// Until the first ReadyForQuery.
    starting: bool,
    server: Scanner,
    client: Scanner,
    /// ReadyForQuery messages the server still owes: one per simple query and per Sync sent.
    owed: u64,
    /// Once the reply deadline passed: the error still to hand over, then the end of stream.
    closing: Option<Vec<u8>>,
}

impl Guarded {
    /// Connect to `127.0.0.1:port`; the connection and the whole startup get
    /// `deadlines.startup`, each answer after that `deadlines.reply`.
    pub async fn connect(port: u16, deadlines: Deadlines) -> Guarded {
        let deadline = Box::pin(tokio::time::sleep(deadlines.startup));
        match tokio::time::timeout(deadlines.startup, TcpStream::connect(("127.0.0.1", port))).await
        {
            Ok(Ok(stream)) => Guarded::Open(Box::new(Open {
                stream,
                port,
                deadlines,
                deadline,
                starting: true,
                server: Scanner::default(),
                client: Scanner::default(),
                owed: 0,
                closing: None,
            })),
            Ok(Err(e)) => Guarded::Failed(Some(e)),
            Err(_) => Guarded::Failed(Some(no_startup(deadlines.startup))),
        }
    }
}

impl Guarded {
    /// A stream that fails at once with `why`, for a connection that must not be tried.
    pub fn refused(why: String) -> Guarded {
        Guarded::Failed(Some(io::Error::new(io::ErrorKind::InvalidInput, why)))
    }
}

fn no_startup(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no PostgreSQL startup within {timeout:?}"),
    )
}

impl Open {
    fn restart_deadline(&mut self, cx: &mut Context<'_>) {
        self.deadline
            .as_mut()
            .reset(Instant::now() + self.deadlines.reply);
        // Registers the wake-up: the connection task may be parked on a read already.
        let _ = self.deadline.as_mut().poll(cx);
    }

    /// What ends the connection once the server let the reply deadline pass: an
    /// ErrorResponse when the stream is between two server messages, else an I/O error.
    fn give_up(&mut self) -> io::Result<()> {
        let text = format!(
            "PostgreSQL on 127.0.0.1:{} sent no answer within {:?}; dbtopo closed the connection",
            self.port, self.deadlines.reply
        );
        if !self.server.between_messages() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, text));
        }
        self.closing = Some(error_response(
            "08006",
            &text,
            "the server may be paused, stopped, overloaded or waiting on a lock; DBTOPO_STATEMENT_TIMEOUT sets the deadline in seconds",
        ));
        Ok(())
    }
}

/// A backend ErrorResponse message (severity FATAL) with a code, a message and a hint.
fn error_response(code: &str, message: &str, hint: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
        (b'H', hint),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend(body);
    out
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let open = match self.get_mut() {
            Guarded::Failed(error) => return Poll::Ready(Err(take(error))),
            Guarded::Open(open) => open,
        };
        let waiting = open.closing.is_none() && (open.starting || open.owed > 0);
        if waiting && open.deadline.as_mut().poll(cx).is_ready() {
            if open.starting {
                return Poll::Ready(Err(no_startup(open.deadlines.startup)));
            }
            if let Err(e) = open.give_up() {
                return Poll::Ready(Err(e));
            }
        }
        if let Some(rest) = open.closing.as_mut() {
            // The error first, then the end of the stream (nothing put in `buf`).
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            rest.drain(..n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut open.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &read {
            let fresh = &buf.filled()[before..];
            match open.server.feed(fresh) {
                Ok(ready) => {
                    if open.starting && ready > 0 {
                        open.starting = false;
                    } else {
                        open.owed = open.owed.saturating_sub(ready);
                    }
                    if !fresh.is_empty() && open.owed > 0 {
                        open.restart_deadline(cx);
                    }
                }
                Err(refused) => {
                    buf.set_filled(before);
                    return Poll::Ready(Err(refused));
                }
            }
        }
        read
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let open = match self.get_mut() {
            Guarded::Failed(error) => return Poll::Ready(Err(take(error))),
            Guarded::Open(open) => open,
        };
        if open.closing.is_some() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection was closed: the server did not answer in time",
            )));
        }
        let written = Pin::new(&mut open.stream).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &written
            && !open.starting
        {
            // The client's messages after the startup: a simple query or a Sync each ask for
            // one ReadyForQuery.
            open.owed += open.client.count_requests(&data[..*n]);
            if open.owed > 0 {
                open.restart_deadline(cx);
            }
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Guarded::Failed(error) => Poll::Ready(Err(take(error))),
            Guarded::Open(open) => Pin::new(&mut open.stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Guarded::Failed(_) => Poll::Ready(Ok(())),
            Guarded::Open(open) => Pin::new(&mut open.stream).poll_shutdown(cx),
        }
    }
}

fn take(error: &mut Option<io::Error>) -> io::Error {
    error
        .take()
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))
}

/// Follows one side's messages (type byte, length, body) across reads and writes.
#[derive(Default)]
struct Scanner {
    /// The current message's type, length and, for an authentication request, its code.
    header: Vec<u8>,
    /// Body bytes of the current message still to pass.
    skip: usize,
}

impl Scanner {
    fn between_messages(&self) -> bool {
        self.header.is_empty() && self.skip == 0
    }

    /// Look at the next bytes from the server: how many ReadyForQuery messages begin in them,
    /// or an error for a request to send the password in a weak form or for bytes that are
    /// not the PostgreSQL protocol.
    fn feed(&mut self, mut bytes: &[u8]) -> io::Result<u64> {
        let mut ready = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let wanted = if self.header.first() == Some(&b'R') {
                9
            } else {
                5
            };
            let n = (wanted - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() < 5 {
                continue;
            }
            let kind = self.header[0];
            let length = u32::from_be_bytes(self.header[1..5].try_into().expect("four bytes"));
            if !(4..=1 << 30).contains(&length) || !kind.is_ascii_alphanumeric() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server does not speak the PostgreSQL protocol",
                ));
            }
            if kind == b'R' {
                if length < 8 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed authentication request",
                    ));
                }
                if self.header.len() < 9 {
                    continue;
                }
                let code = u32::from_be_bytes(self.header[5..9].try_into().expect("four bytes"));
                if code == CLEARTEXT_PASSWORD || code == MD5_PASSWORD {
                    let form = if code == MD5_PASSWORD {
                        "an MD5 hash"
                    } else {
                        "cleartext"
                    };
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "the server asked for the password as {form}; dbtopo sends passwords only by SCRAM-SHA-256, so it sent nothing"
                        ),
                    ));
                }
                self.skip = length as usize - 8;
            } else {
                self.skip = length as usize - 4;
                if kind == b'Z' {
                    ready += 1;
                }
            }
            self.header.clear();
        }
        Ok(ready)
    }

    /// Look at the next bytes the client sends after the startup: how many simple queries and
    /// Syncs, each of which the server answers with one ReadyForQuery, begin in them.
    fn count_requests(&mut self, mut bytes: &[u8]) -> u64 {
        let mut requests = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() < 5 {
                continue;
            }
            if matches!(self.header[0], b'Q' | b'S') {
                requests += 1;
            }
            let length = u32::from_be_bytes(self.header[1..5].try_into().expect("four bytes"));
            self.skip = (length as usize).saturating_sub(4);
            self.header.clear();
        }
        requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn scram_then_ready_passes_even_one_byte_at_a_time() {
        let mut stream = message(b'R', &[0, 0, 0, 10, b'S', b'C', 0, 0]);
        stream.extend(message(b'R', &[0, 0, 0, 0]));
        stream.extend(message(b'S', b"server_version\x0017\x00"));
        stream.extend(message(b'Z', b"I"));
        let mut scanner = Scanner::default();
        let mut ready = 0;
        for byte in &stream {
            ready += scanner.feed(std::slice::from_ref(byte)).unwrap();
        }
        assert_eq!(ready, 1);
        assert!(scanner.between_messages());
    }

    #[test]
    fn extended_protocol_replies_are_followed_to_each_ready_for_query() {
        let mut stream = Vec::new();
        for _ in 0..2 {
            stream.extend(message(b'1', b""));
            stream.extend(message(b'2', b""));
            stream.extend(message(b'D', &[0, 1, 0, 0, 0, 1, b'x']));
            stream.extend(message(b'C', b"SELECT 1\0"));
            stream.extend(message(b'Z', b"I"));
        }
        let mut scanner = Scanner::default();
        assert_eq!(scanner.feed(&stream[..7]).unwrap(), 0);
        assert!(!scanner.between_messages());
        assert_eq!(scanner.feed(&stream[7..]).unwrap(), 2);
        assert!(scanner.between_messages());
    }

    #[test]
    fn the_clients_queries_and_syncs_are_counted_across_writes() {
        let mut sent = message(b'Q', b"SELECT 1\0");
        sent.extend(message(b'P', b"\0SELECT 2\0\0\0"));
        sent.extend(message(b'B', b"\0\0\0\0\0\0\0\0"));
        sent.extend(message(b'E', b"\0\0\0\0\0"));
        sent.extend(message(b'S', b""));
        let mut scanner = Scanner::default();
        let (first, rest) = sent.split_at(3);
        assert_eq!(
            scanner.count_requests(first) + scanner.count_requests(rest),
            2
        );
    }

    #[test]
    fn cleartext_and_md5_requests_are_refused() {
        for code in [CLEARTEXT_PASSWORD, MD5_PASSWORD] {
            let mut body = code.to_be_bytes().to_vec();
            if code == MD5_PASSWORD {
                body.extend_from_slice(b"salt");
            }
            let error = Scanner::default().feed(&message(b'R', &body)).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
            assert!(error.to_string().contains("SCRAM-SHA-256"), "{error}");
        }
    }

    #[test]
    fn bytes_that_are_not_postgresql_are_refused() {
        let error = Scanner::default()
            .feed(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
