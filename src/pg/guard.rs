//! The stream every connection to a server runs over. Until the server says it is ready for
//! queries, it reads each message before the client library does and ends the connection on an
//! authentication request that would send the password in cleartext or as MD5 (only
//! SCRAM-SHA-256 is allowed to carry it), and on a server that does not finish the startup
//! within the deadline (a program that is not PostgreSQL, or one that hangs).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Authentication requests that carry the password itself or its MD5 hash.
const CLEARTEXT_PASSWORD: u32 = 3;
const MD5_PASSWORD: u32 = 5;

/// A TCP connection guarded until the startup ends, or the error that stopped it from being
/// made (handed to the client library as the stream's first error, so it reports it).
pub enum Guarded {
    Open(Box<Open>),
    Failed(Option<io::Error>),
}

pub struct Open {
    stream: TcpStream,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    startup: Option<Scanner>,
}

impl Guarded {
    /// Connect to `127.0.0.1:port`; the connection and the whole startup get `timeout`.
    pub async fn connect(port: u16, timeout: Duration) -> Guarded {
        let deadline = Box::pin(tokio::time::sleep(timeout));
        match tokio::time::timeout(timeout, TcpStream::connect(("127.0.0.1", port))).await {
            Ok(Ok(stream)) => Guarded::Open(Box::new(Open {
                stream,
                deadline,
                timeout,
                startup: Some(Scanner::default()),
            })),
            Ok(Err(e)) => Guarded::Failed(Some(e)),
            Err(_) => Guarded::Failed(Some(timed_out(timeout))),
        }
    }
}

fn timed_out(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no PostgreSQL startup within {timeout:?}"),
    )
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
        if open.startup.is_some() && open.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(timed_out(open.timeout)));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut open.stream).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(scanner)) = (&read, open.startup.as_mut()) {
            match scanner.feed(&buf.filled()[before..]) {
                Ok(true) => open.startup = None,
                Ok(false) => {}
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
        match self.get_mut() {
            Guarded::Failed(error) => Poll::Ready(Err(take(error))),
            Guarded::Open(open) => Pin::new(&mut open.stream).poll_write(cx, data),
        }
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

/// Follows the server's messages (type byte, length, body) until `ReadyForQuery`.
#[derive(Default)]
struct Scanner {
    /// The current message's type, length and, for an authentication request, its code.
    header: Vec<u8>,
    /// Body bytes of the current message still to pass.
    skip: usize,
}

impl Scanner {
    /// Look at the next bytes from the server: `Ok(true)` once it is ready for queries, an
    /// error for a request to send the password in a weak form or for bytes that are not the
    /// PostgreSQL protocol.
    fn feed(&mut self, mut bytes: &[u8]) -> io::Result<bool> {
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
            if !(4..=1 << 20).contains(&length) || !kind.is_ascii_alphabetic() {
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
                    self.header.clear();
                    return Ok(true);
                }
            }
            self.header.clear();
        }
        Ok(false)
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
        let mut ready = false;
        for byte in &stream {
            ready |= scanner.feed(std::slice::from_ref(byte)).unwrap();
        }
        assert!(ready);
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
