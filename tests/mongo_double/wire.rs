//! Framing of the MongoDB wire protocol, as far as a mongod needs it to serve the Rust driver
//! and legacy handshakes: OP_MSG (2013) both ways, OP_QUERY (2004) on `<db>.$cmd` in and
//! OP_REPLY (1) out. Anything else (OP_COMPRESSED included: the double never advertises a
//! compressor) is a protocol error, on which the caller closes the connection, as mongod does.
//! An OP_MSG checksum is accepted and not verified: loopback does not corrupt bytes.

use std::io::Cursor;

use mongodb::bson::{Bson, Document};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_MSG: i32 = 2013;

/// The largest message mongod accepts (`maxMessageSizeBytes` in hello).
pub const MAX_MESSAGE_SIZE_BYTES: i32 = 48_000_000;

const HEADER_LENGTH: usize = 16;

/// OP_MSG flag bits (the low 16 are "required": a receiver must reject any it does not know).
/// `exhaustAllowed` (bit 16) is optional and ignored: every reply is a single one, so a driver
/// that offers exhaust simply sends its next awaitable hello.
const CHECKSUM_PRESENT: u32 = 1;
const MORE_TO_COME: u32 = 1 << 1;
const KNOWN_REQUIRED_FLAGS: u32 = CHECKSUM_PRESENT | MORE_TO_COME;

/// A command as received, whichever opcode carried it.
#[derive(Debug)]
pub struct Request {
    pub request_id: i32,
    pub op_code: i32,
    /// The command document, with OP_MSG document sequences (kind 1 sections) folded in as
    /// arrays under their identifiers, as mongod does before parsing a command.
    pub body: Document,
    /// The database: `$db` for OP_MSG, the namespace prefix of `<db>.$cmd` for OP_QUERY.
    pub database: String,
    /// OP_MSG `moreToCome` from a client: it wants no reply (unacknowledged write).
    pub expects_no_reply: bool,
}

/// Why a connection must be closed instead of answered.
#[derive(Debug)]
pub enum ProtocolError {
    Io(std::io::Error),
    Malformed(String),
}

impl From<std::io::Error> for ProtocolError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

fn malformed(message: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed(message.into())
}

/// Reads one message. `Ok(None)` is a clean end of stream between messages.
pub async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Request>, ProtocolError> {
    let mut header = [0u8; HEADER_LENGTH];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    let field = |at: usize| {
        i32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (length, request_id, op_code) = (field(0), field(4), field(12));
    if !(HEADER_LENGTH as i32..=MAX_MESSAGE_SIZE_BYTES).contains(&length) {
        return Err(malformed(format!("message length {length} out of range")));
    }
    let mut payload = vec![0u8; length as usize - HEADER_LENGTH];
    reader.read_exact(&mut payload).await?;
    match op_code {
        OP_MSG => parse_op_msg(request_id, &payload),
        OP_QUERY => parse_op_query(request_id, &payload),
        other => Err(malformed(format!("unsupported opcode {other}"))),
    }
    .map(Some)
}

fn parse_op_msg(request_id: i32, payload: &[u8]) -> Result<Request, ProtocolError> {
    let mut cursor = Cursor::new(payload);
    let flags = read_u32(&mut cursor)?;
    if flags & 0xFFFF & !KNOWN_REQUIRED_FLAGS != 0 {
        return Err(malformed(format!(
            "unknown required OP_MSG flags {flags:#x}"
        )));
    }
    let sections_end = if flags & CHECKSUM_PRESENT != 0 {
        payload
            .len()
            .checked_sub(4)
            .ok_or_else(|| malformed("no room for the checksum"))?
    } else {
        payload.len()
    };
    let mut body: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<Document>)> = Vec::new();
    while (cursor.position() as usize) < sections_end {
        let mut kind = [0u8; 1];
        std::io::Read::read_exact(&mut cursor, &mut kind)
            .map_err(|_| malformed("truncated section"))?;
        match kind[0] {
            0 => {
                if body.is_some() {
                    return Err(malformed("more than one kind 0 section"));
                }
                body = Some(read_document(&mut cursor)?);
            }
            1 => {
                let start = cursor.position() as usize;
                let size = read_i32(&mut cursor)?;
                let end = usize::try_from(size)
                    .ok()
                    .and_then(|size| start.checked_add(size))
                    .filter(|&end| end <= sections_end && end >= start + 4)
                    .ok_or_else(|| malformed("document sequence size out of range"))?;
                let identifier = read_cstring(&mut cursor)?;
                let mut documents = Vec::new();
                while (cursor.position() as usize) < end {
                    documents.push(read_document(&mut cursor)?);
                }
                if cursor.position() as usize != end {
                    return Err(malformed("document sequence overruns its size"));
                }
                sequences.push((identifier, documents));
            }
            other => return Err(malformed(format!("unknown section kind {other}"))),
        }
    }
    let mut body = body.ok_or_else(|| malformed("no kind 0 section"))?;
    for (identifier, documents) in sequences {
        if body.contains_key(&identifier) {
            return Err(malformed(format!(
                "{identifier} given both in the body and as a sequence"
            )));
        }
        body.insert(
            identifier,
            documents
                .into_iter()
                .map(Bson::Document)
                .collect::<Vec<_>>(),
        );
    }
    let database = match body.get("$db") {
        Some(Bson::String(database)) => database.clone(),
        _ => return Err(malformed("OP_MSG without a $db string")),
    };
    Ok(Request {
        request_id,
        op_code: OP_MSG,
        body,
        database,
        expects_no_reply: flags & MORE_TO_COME != 0,
    })
}

fn parse_op_query(request_id: i32, payload: &[u8]) -> Result<Request, ProtocolError> {
    let mut cursor = Cursor::new(payload);
    let _flags = read_i32(&mut cursor)?;
    let namespace = read_cstring(&mut cursor)?;
    let _skip = read_i32(&mut cursor)?;
    let _limit = read_i32(&mut cursor)?;
    let query = read_document(&mut cursor)?;
    let database = namespace
        .strip_suffix(".$cmd")
        .ok_or_else(|| malformed(format!("OP_QUERY on {namespace}: only commands are served")))?
        .to_string();
    // Legacy clients may wrap the command as {$query: {...}, $readPreference: ...}.
    let body = match query.get("$query") {
        Some(Bson::Document(inner)) => inner.clone(),
        _ => query,
    };
    Ok(Request {
        request_id,
        op_code: OP_QUERY,
        body,
        database,
        expects_no_reply: false,
    })
}

fn read_i32(cursor: &mut Cursor<&[u8]>) -> Result<i32, ProtocolError> {
    let mut bytes = [0u8; 4];
    std::io::Read::read_exact(cursor, &mut bytes).map_err(|_| malformed("truncated int32"))?;
    Ok(i32::from_le_bytes(bytes))
}

fn read_u32(cursor: &mut Cursor<&[u8]>) -> Result<u32, ProtocolError> {
    read_i32(cursor).map(|value| value as u32)
}

fn read_cstring(cursor: &mut Cursor<&[u8]>) -> Result<String, ProtocolError> {
    let rest = &cursor.get_ref()[cursor.position() as usize..];
    let nul = rest
        .iter()
        .position(|&byte| byte == 0)
        .ok_or_else(|| malformed("unterminated cstring"))?;
    let text = std::str::from_utf8(&rest[..nul]).map_err(|_| malformed("cstring is not UTF-8"))?;
    cursor.set_position(cursor.position() + nul as u64 + 1);
    Ok(text.to_string())
}

fn read_document(cursor: &mut Cursor<&[u8]>) -> Result<Document, ProtocolError> {
    let start = cursor.position() as usize;
    let length = read_i32(cursor)?;
    let end = usize::try_from(length)
        .ok()
        .filter(|&length| length >= 5)
        .and_then(|length| start.checked_add(length))
        .filter(|&end| end <= cursor.get_ref().len())
        .ok_or_else(|| malformed("BSON document length out of range"))?;
    let document = Document::from_reader(&cursor.get_ref()[start..end])
        .map_err(|error| malformed(format!("invalid BSON: {error}")))?;
    cursor.set_position(end as u64);
    Ok(document)
}

fn document_bytes(document: &Document) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    document
        .to_writer(&mut bytes)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string()))?;
    Ok(bytes)
}

/// Writes `reply` in the form the request came in: OP_MSG for OP_MSG, OP_REPLY for OP_QUERY.
pub async fn write_reply<W: AsyncWrite + Unpin>(
    writer: &mut W,
    request: &Request,
    reply_request_id: i32,
    reply: &Document,
) -> std::io::Result<()> {
    let document = document_bytes(reply)?;
    let mut message = Vec::with_capacity(HEADER_LENGTH + 21 + document.len());
    message.extend_from_slice(&[0u8; 4]); // length, filled in below
    message.extend_from_slice(&reply_request_id.to_le_bytes());
    message.extend_from_slice(&request.request_id.to_le_bytes());
    if request.op_code == OP_QUERY {
        message.extend_from_slice(&OP_REPLY.to_le_bytes());
        message.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
        message.extend_from_slice(&0i64.to_le_bytes()); // cursorID
        message.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
        message.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    } else {
        message.extend_from_slice(&OP_MSG.to_le_bytes());
        message.extend_from_slice(&0u32.to_le_bytes()); // flagBits: no moreToCome, no checksum
        message.push(0); // one kind 0 section
    }
    message.extend_from_slice(&document);
    let length = message.len() as i32;
    message[..4].copy_from_slice(&length.to_le_bytes());
    writer.write_all(&message).await?;
    writer.flush().await
}
