//! The server side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as mongod runs it in
//! `saslStart`/`saslContinue`, so that a client with credentials really proves its password.
//!
//! HMAC and PBKDF2 are written out over the `sha2` the project already depends on: the
//! driver's own `hmac`/`pbkdf2` are of another `sha2` major version, and the two together
//! are a few lines.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

/// mongod's default `scramSHA256IterationCount`.
pub const DEFAULT_ITERATIONS: u32 = 15_000;

const SALT_LENGTH: usize = 28;

/// What mongod keeps of a password: never the password itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    pub iteration_count: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramCredentials {
    /// Derives credentials with a fresh salt. The password is SASLprep'd first, as both mongod
    /// and the driver do for SCRAM-SHA-256.
    pub fn derive(password: &str, iteration_count: u32) -> Result<Self, String> {
        let prepared = stringprep::saslprep(password)
            .map_err(|error| format!("password fails SASLprep: {error}"))?;
        let salt: [u8; SALT_LENGTH] = rand::random();
        let salted = salted_password(prepared.as_bytes(), &salt, iteration_count);
        let client_key = hmac(&salted, b"Client Key");
        Ok(Self {
            iteration_count,
            salt: salt.to_vec(),
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        })
    }
}

/// One conversation between its `saslStart` and its successful last `saslContinue`.
#[derive(Debug)]
pub struct Conversation {
    pub user: String,
    credentials: ScramCredentials,
    client_first_bare: String,
    server_first: String,
    combined_nonce: String,
    stage: Stage,
}

#[derive(Debug, PartialEq, Eq)]
enum Stage {
    AwaitingClientFinal,
    /// The server's final message is sent; the client may still send an empty step when it
    /// did not ask to skip it.
    Proven,
}

/// Why a step failed. Every failure is reported to the client as "Authentication failed.",
/// as mongod does, so that nothing leaks about users or passwords.
#[derive(Debug)]
pub struct ScramFailure(pub String);

/// Parses the client-first message and returns the user name it names, so that the caller
/// can look the user's credentials up.
pub fn user_of_client_first(payload: &[u8]) -> Result<String, ScramFailure> {
    let (_, bare) = split_client_first(payload)?;
    let attributes = parse_attributes(&bare)?;
    let user = attribute(&attributes, 'n')?;
    Ok(user.replace("=2C", ",").replace("=3D", "="))
}

fn split_client_first(payload: &[u8]) -> Result<(String, String), ScramFailure> {
    let text = std::str::from_utf8(payload).map_err(|_| failure("client-first is not UTF-8"))?;
    // gs2-header: "n,," (no channel binding) or "y,," (client supports it, server does not).
    let bare = text
        .strip_prefix("n,,")
        .or_else(|| text.strip_prefix("y,,"))
        .ok_or_else(|| failure("unsupported gs2 header"))?;
    Ok((text[..3].to_string(), bare.to_string()))
}

impl Conversation {
    /// Handles the client-first message; returns the conversation and the server-first
    /// message.
    pub fn start(
        client_first: &[u8],
        user: String,
        credentials: ScramCredentials,
    ) -> Result<(Self, Vec<u8>), ScramFailure> {
        let (_, client_first_bare) = split_client_first(client_first)?;
        let attributes = parse_attributes(&client_first_bare)?;
        let client_nonce = attribute(&attributes, 'r')?;
        let server_nonce: [u8; 24] = rand::random();
        let combined_nonce = format!("{client_nonce}{}", BASE64.encode(server_nonce));
        let server_first = format!(
            "r={combined_nonce},s={},i={}",
            BASE64.encode(&credentials.salt),
            credentials.iteration_count
        );
        let reply = server_first.clone().into_bytes();
        let conversation = Self {
            user,
            credentials,
            client_first_bare,
            server_first,
            combined_nonce,
            stage: Stage::AwaitingClientFinal,
        };
        Ok((conversation, reply))
    }

    /// Handles the next client message. Returns the server's reply and whether the
    /// conversation has succeeded.
    pub fn step(&mut self, payload: &[u8]) -> Result<(Vec<u8>, bool), ScramFailure> {
        match self.stage {
            Stage::Proven if payload.is_empty() => Ok((Vec::new(), true)),
            Stage::Proven => Err(failure("unexpected message after the server's final one")),
            Stage::AwaitingClientFinal => {
                let server_final = self.verify_client_final(payload)?;
                self.stage = Stage::Proven;
                Ok((server_final, false))
            }
        }
    }

    fn verify_client_final(&self, payload: &[u8]) -> Result<Vec<u8>, ScramFailure> {
        let text =
            std::str::from_utf8(payload).map_err(|_| failure("client-final is not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| failure("client-final without a proof"))?;
        let attributes = parse_attributes(without_proof)?;
        // Channel binding must echo the gs2 header: base64("n,,") or base64("y,,").
        let binding = attribute(&attributes, 'c')?;
        if binding != "biws" && binding != "eSws" {
            return Err(failure("channel binding mismatch"));
        }
        if attribute(&attributes, 'r')? != self.combined_nonce {
            return Err(failure("nonce mismatch"));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| failure("proof is not base64"))?;
        if proof.len() != 32 {
            return Err(failure("proof has the wrong length"));
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = hmac(&self.credentials.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let stored_key: [u8; 32] = Sha256::digest(&client_key).into();
        if stored_key != self.credentials.stored_key {
            return Err(failure("wrong password"));
        }
        let server_signature = hmac(&self.credentials.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

fn failure(reason: &str) -> ScramFailure {
    ScramFailure(reason.to_string())
}

fn parse_attributes(message: &str) -> Result<Vec<(char, &str)>, ScramFailure> {
    message
        .split(',')
        .map(|part| {
            let mut chars = part.chars();
            match (chars.next(), chars.next()) {
                (Some(key), Some('=')) => Ok((key, &part[key.len_utf8() + 1..])),
                _ => Err(failure("malformed SCRAM attribute")),
            }
        })
        .collect()
}

fn attribute<'a>(attributes: &[(char, &'a str)], key: char) -> Result<&'a str, ScramFailure> {
    attributes
        .iter()
        .find(|(found, _)| *found == key)
        .map(|(_, value)| *value)
        .ok_or_else(|| ScramFailure(format!("missing SCRAM attribute {key}")))
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    HmacKey::new(key).sign(message)
}

/// A key's inner and outer hash states, computed once so that PBKDF2's thousands of HMACs
/// with the same key each cost two compressions less.
struct HmacKey {
    inner: Sha256,
    outer: Sha256,
}

impl HmacKey {
    fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > block.len() {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let padded = |pad: u8| {
            let mut hasher = Sha256::new();
            hasher.update(block.map(|byte| byte ^ pad));
            hasher
        };
        Self {
            inner: padded(0x36),
            outer: padded(0x5c),
        }
    }

    fn sign(&self, message: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(message);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

/// PBKDF2-HMAC-SHA-256 (RFC 8018) for one 32-byte block: all SCRAM-SHA-256 needs.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let key = HmacKey::new(password);
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut block = key.sign(&first);
    let mut result = block;
    for _ in 1..iterations {
        block = key.sign(&block);
        result.iter_mut().zip(block).for_each(|(r, b)| *r ^= b);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil", 4096 iterations.
    #[test]
    fn rfc_7677_example() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(b"pencil", &salt, 4096);
        let client_key = hmac(&salted, b"Client Key");
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let stored_key = Sha256::digest(client_key);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            BASE64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let server_signature = hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes());
        assert_eq!(
            BASE64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }
}
