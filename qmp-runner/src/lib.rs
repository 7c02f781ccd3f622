//! The request protocol between the kernel's serial output and QMP, kept
//! apart from the I/O so it is tested on the host.

/// The serial line prefix of a request.
pub const PREFIX: &str = "QMP-REQUEST ";

/// A qdev id or driver name: what QEMU accepts, and nothing that needs
/// escaping in JSON or HMP.
fn word(w: Option<&str>, what: &str) -> Result<String, String> {
    let w = w.ok_or(format!("missing {what}"))?;
    if w.is_empty() || w.len() > 64 || !w.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(format!("bad {what} {w:?}"));
    }
    Ok(w.to_string())
}

/// Turn a request (the part after [`PREFIX`]) into one QMP command.
pub fn parse_request(req: &str) -> Result<String, String> {
    let mut w = req.split_whitespace();
    let verb = w.next().ok_or("empty request")?;
    let cmd = match verb {
        "device_add" => {
            let (driver, id, bus) = (word(w.next(), "driver")?, word(w.next(), "id")?, word(w.next(), "bus")?);
            format!(r#"{{"execute":"device_add","arguments":{{"driver":"{driver}","id":"{id}","bus":"{bus}"}}}}"#)
        }
        "device_del" => {
            let id = word(w.next(), "id")?;
            format!(r#"{{"execute":"device_del","arguments":{{"id":"{id}"}}}}"#)
        }
        "aer" => {
            let (id, error) = (word(w.next(), "id")?, word(w.next(), "error")?);
            format!(
                r#"{{"execute":"human-monitor-command","arguments":{{"command-line":"pcie_aer_inject_error {id} {error}"}}}}"#
            )
        }
        other => return Err(format!("unknown verb {other:?}")),
    };
    if let Some(extra) = w.next() {
        return Err(format!("unexpected {extra:?}"));
    }
    Ok(cmd)
}

/// One line QMP sent, for stderr: `event NAME {...}`, `reply {...}` or
/// `error {...}`.
pub fn describe(line: &str) -> String {
    if let Some(i) = line.find(r#""event": ""#).map(|i| i + 10).or_else(|| line.find(r#""event":""#).map(|i| i + 9)) {
        let name: String = line[i..].chars().take_while(|&c| c != '"').collect();
        return format!("event {name} {line}");
    }
    if line.contains(r#""error""#) {
        return format!("error {line}");
    }
    format!("reply {line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_qmp_commands() {
        assert_eq!(
            parse_request("device_add edu hp1 dp1").unwrap(),
            r#"{"execute":"device_add","arguments":{"driver":"edu","id":"hp1","bus":"dp1"}}"#
        );
        assert_eq!(parse_request("device_del edu1").unwrap(), r#"{"execute":"device_del","arguments":{"id":"edu1"}}"#);
        assert_eq!(
            parse_request("aer dp1 POISON_TLP").unwrap(),
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"pcie_aer_inject_error dp1 POISON_TLP"}}"#
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        for bad in ["", "reboot", "device_del", "device_del a\"b", "device_add edu hp1", "device_del x y", "aer dp1"] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn events_and_replies_are_named() {
        let ev = r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "DEVICE_DELETED", "data": {"device": "edu1"}}"#;
        assert!(describe(ev).starts_with("event DEVICE_DELETED {"));
        assert_eq!(describe(r#"{"return": {}}"#), r#"reply {"return": {}}"#);
        assert!(describe(r#"{"error": {"class": "GenericError"}}"#).starts_with("error "));
    }
}
