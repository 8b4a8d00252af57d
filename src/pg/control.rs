//! What a stopped cluster's `global/pg_control` says of how it ended: whether it was shut down
//! cleanly, and where its last checkpoint record starts. A clean shutdown's checkpoint is the
//! last record the server wrote, so a standby that replayed past it holds everything.

/// The leading fields of PostgreSQL's `ControlFileData`, laid out the same since 9.x:
/// system_identifier (u64), pg_control_version (u32), catalog_version_no (u32), state (a
/// 4-byte enum), time (i64, at 24), checkPoint (u64, at 32). Little-endian on the machines
/// dbtopo runs on.
const STATE_OFFSET: usize = 16;
const CHECKPOINT_OFFSET: usize = 32;
/// `DB_SHUTDOWNED`, `DB_SHUTDOWNED_IN_RECOVERY` and `DB_IN_ARCHIVE_RECOVERY` of `DBState`.
const SHUT_DOWN: u32 = 1;
const SHUT_DOWN_IN_RECOVERY: u32 = 2;
const IN_ARCHIVE_RECOVERY: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub system_identifier: u64,
    /// Shut down cleanly (as a primary or as a standby), not crashed or still running.
    pub clean: bool,
    /// Where the last checkpoint record starts, in bytes of WAL.
    pub checkpoint: u64,
    /// It was a standby (shut down in recovery, or stopped while in it): not promoted.
    pub in_recovery: bool,
}

/// Reads the fields above; `None` when the file is too short to hold them.
pub fn parse(bytes: &[u8]) -> Option<Control> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let state = u32_at(STATE_OFFSET)?;
    Some(Control {
        system_identifier: u64_at(0)?,
        clean: state == SHUT_DOWN || state == SHUT_DOWN_IN_RECOVERY,
        checkpoint: u64_at(CHECKPOINT_OFFSET)?,
        in_recovery: state == SHUT_DOWN_IN_RECOVERY || state == IN_ARCHIVE_RECOVERY,
    })
}

/// A WAL position as PostgreSQL prints it (`16/B374D848`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(state: u32, checkpoint: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 296];
        bytes[..8].copy_from_slice(&7_300_000_000_000_000_001u64.to_le_bytes());
        bytes[16..20].copy_from_slice(&state.to_le_bytes());
        bytes[32..40].copy_from_slice(&checkpoint.to_le_bytes());
        bytes
    }

    #[test]
    fn a_clean_shutdown_and_its_checkpoint_are_read() {
        let clean = parse(&control(1, 0x3_0000_0128)).unwrap();
        assert!(clean.clean);
        assert_eq!(clean.checkpoint, 0x3_0000_0128);
        assert_eq!(clean.system_identifier, 7_300_000_000_000_000_001);
        assert_eq!(format_lsn(clean.checkpoint), "3/128");
        assert!(parse(&control(2, 1)).unwrap().clean, "a standby shut down");
        assert!(parse(&control(2, 1)).unwrap().in_recovery);
        assert!(
            parse(&control(5, 1)).unwrap().in_recovery,
            "a standby killed"
        );
        assert!(!clean.in_recovery);
        // In production (6) or crash recovery (4): the server did not shut down cleanly.
        assert!(!parse(&control(6, 1)).unwrap().clean);
        assert!(!parse(&control(4, 1)).unwrap().clean);
        assert_eq!(parse(&[0u8; 20]), None);
    }
}
