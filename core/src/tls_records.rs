//! The record walk of an encrypted TLS direction that carries only application data
//! (issue 21): what pcapsmtp/smtp/tls/scanner.py's `_walk` does with such records, in the
//! core, so the flow table can feed it a direction's bytes without an event each.
//!
//! It takes a chunk only when every record header the chunk completes is a plain
//! application_data record (content type 23, version 3.x, 1 to `MAX_RECORD` bytes, and,
//! in TLS 1.3, not the length of an encrypted alert the scanner would infer); such a
//! chunk changes nothing but the counts the scanner keeps (records, application bytes)
//! and where the walk is (the body bytes still to pass over, a header split across
//! chunks). Any other chunk is refused with nothing changed, and the scanner reads it
//! itself once it has read back this state.

use crate::tcp::table::Absorber;

/// Longest record body the scanner allows (its `MAX_RECORD`: TLS 1.2's TLSCiphertext).
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// The application_data content type (RFC 8446 5.1).
pub const APPLICATION_DATA: u8 = 23;

/// Where the walk of one direction is, and what it counted since the scanner last read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsRecordWalk {
    /// Body bytes of the current record still to pass over.
    pub skip: usize,
    /// The first bytes (fewer than 5) of a record header split across chunks.
    pub head: Vec<u8>,
    /// Records whose header was read.
    pub records: u64,
    /// Their body bytes (the scanner's `application_bytes`).
    pub application_bytes: u64,
    /// A record length that is refused (TLS 1.3: the size of an encrypted alert).
    pub alert_size: Option<usize>,
}

impl TlsRecordWalk {
    /// The next bytes of the direction: true when taken (counted), false when they
    /// complete a record header that is not plain application data (nothing changed).
    pub fn take(&mut self, data: &[u8]) -> bool {
        let (mut skip, mut records, mut bytes) = (self.skip, self.records, self.application_bytes);
        let mut head = [0u8; 5];
        let mut have = self.head.len().min(5);
        head[..have].copy_from_slice(&self.head[..have]);
        let mut pos = 0;
        while pos < data.len() {
            if skip > 0 {
                let take = skip.min(data.len() - pos);
                skip -= take;
                pos += take;
                continue;
            }
            let take = (5 - have).min(data.len() - pos);
            head[have..have + take].copy_from_slice(&data[pos..pos + take]);
            have += take;
            pos += take;
            if have < 5 {
                break;
            }
            let length = usize::from(head[3]) << 8 | usize::from(head[4]);
            let plain = head[0] == APPLICATION_DATA
                && head[1] == 3
                && head[2] <= 4
                && length > 0
                && length <= MAX_RECORD
                && self.alert_size != Some(length);
            if !plain {
                return false;
            }
            records += 1;
            bytes += length as u64;
            skip = length;
            have = 0;
        }
        self.skip = skip;
        self.records = records;
        self.application_bytes = bytes;
        self.head.clear();
        self.head.extend_from_slice(&head[..have]);
        true
    }
}

impl Absorber for TlsRecordWalk {
    fn absorb(&mut self, data: &[u8]) -> bool {
        self.take(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content_type: u8, length: usize) -> Vec<u8> {
        let mut out = vec![content_type, 3, 3, (length >> 8) as u8, length as u8];
        out.resize(5 + length, 0x17);
        out
    }

    #[test]
    fn takes_application_data_split_anywhere() {
        let mut stream = record(23, 100);
        stream.extend(record(23, 300));
        stream.extend(record(23, 1));
        for cut in 0..stream.len() {
            for cut2 in cut..stream.len() {
                let mut walk = TlsRecordWalk::default();
                assert!(walk.take(&stream[..cut]));
                assert!(walk.take(&stream[cut..cut2]));
                assert!(walk.take(&stream[cut2..]));
                assert_eq!((walk.records, walk.application_bytes), (3, 401));
                assert_eq!((walk.skip, walk.head.len()), (0, 0));
            }
        }
    }

    #[test]
    fn keeps_a_split_header_and_the_body_left() {
        let mut walk = TlsRecordWalk::default();
        let stream = record(23, 50);
        assert!(walk.take(&stream[..3]));
        assert_eq!((walk.head.clone(), walk.records), (vec![23, 3, 3], 0));
        assert!(walk.take(&stream[3..20]));
        assert_eq!(
            (walk.skip, walk.records, walk.application_bytes),
            (35, 1, 50)
        );
        assert!(walk.head.is_empty());
    }

    #[test]
    fn refuses_anything_else_unchanged() {
        let alert = record(21, 2);
        let handshake = record(22, 40);
        let empty = record(23, 0);
        let long = record(23, MAX_RECORD + 1);
        let mut bad_version = record(23, 10);
        bad_version[1] = 2;
        let mut tls13 = TlsRecordWalk {
            alert_size: Some(19),
            ..Default::default()
        };
        assert!(!tls13.clone().take(&record(23, 19)));
        assert!(tls13.take(&record(23, 20)));
        for bad in [alert, handshake, empty, long, bad_version] {
            let mut walk = TlsRecordWalk::default();
            let mut stream = record(23, 10);
            stream.extend(&bad[..5]);
            assert!(walk.take(&stream[..7]));
            let before = walk.clone();
            assert!(!walk.take(&stream[7..]));
            assert_eq!(walk, before);
        }
        // A refused header split across chunks: the first part is taken, the rest not.
        let mut walk = TlsRecordWalk::default();
        let alert = record(21, 2);
        assert!(walk.take(&alert[..2]));
        let before = walk.clone();
        assert!(!walk.take(&alert[2..]));
        assert_eq!(walk, before);
    }
}
