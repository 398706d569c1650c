//! The handshake options of a SYN or SYN/ACK (RFC 9293, RFC 7323, RFC 2018).

const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_MSS: u8 = 2;
const TCPOPT_WSCALE: u8 = 3;
const TCPOPT_SACK_PERM: u8 = 4;
const TCPOPT_TIMESTAMP: u8 = 8;

/// What one side announced in its SYN or SYN/ACK.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handshake {
    pub mss: Option<u16>,
    /// The window scale, at most 14 (RFC 7323 section 2.3).
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
}

pub fn parse_options(options: &[u8]) -> Handshake {
    let mut result = Handshake::default();
    let mut i = 0;
    while i < options.len() {
        let kind = options[i];
        if kind == TCPOPT_EOL {
            break;
        }
        if kind == TCPOPT_NOP {
            i += 1;
            continue;
        }
        if i + 1 >= options.len() || options[i + 1] < 2 {
            break;
        }
        let length = usize::from(options[i + 1]);
        let body = &options[(i + 2).min(options.len())..(i + length).min(options.len())];
        match kind {
            TCPOPT_MSS if body.len() == 2 => {
                result.mss = Some(u16::from_be_bytes([body[0], body[1]]))
            }
            TCPOPT_WSCALE if body.len() == 1 => result.wscale = Some(body[0].min(14)),
            TCPOPT_SACK_PERM => result.sack_permitted = true,
            TCPOPT_TIMESTAMP => result.timestamps = true,
            _ => {}
        }
        i += length;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linux_syn() {
        // MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
        let options = [
            2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let found = parse_options(&options);
        assert_eq!(found.mss, Some(1460));
        assert_eq!(found.wscale, Some(7));
        assert!(found.sack_permitted && found.timestamps);
    }

    #[test]
    fn a_scale_above_14_is_14_and_bad_lengths_stop() {
        assert_eq!(parse_options(&[3, 3, 20]).wscale, Some(14));
        assert_eq!(parse_options(&[2, 1, 5, 180]), Handshake::default());
        assert_eq!(parse_options(&[2, 4, 5]).mss, None); // cut short
        assert_eq!(parse_options(&[0, 2, 4, 5, 180]).mss, None); // after the end of list
    }
}
