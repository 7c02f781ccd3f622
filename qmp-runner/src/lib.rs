//! The request protocol between the kernel's serial output and QMP, kept
//! apart from the I/O so it is tested on the host.

/// The serial line prefix of a request.
pub const PREFIX: &str = "QMP-REQUEST ";

/// A qdev id or driver name: what QEMU accepts, and nothing that needs
/// escaping in JSON or HMP.
fn word(w: Option<&str>, what: &str) -> Result<String, String> {
    let w = w.ok_or(format!("missing {what}"))?;
    if w.is_empty() || w.len() > 64 || !w.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) {
        return Err(format!("bad {what} {w:?}"));
    }
    Ok(w.to_string())
}

/// A device as the kernel names it (`SSSS:BB:DD.F` or `BB:DD.F`, which the
/// runner turns into QEMU's qdev id with `query-pci`), or a qdev id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Bdf { bus: u8, slot: u8, function: u8 },
    Id(String),
}

fn target(w: Option<&str>, what: &str) -> Result<Target, String> {
    let s = word(w, what)?;
    let bdf = || -> Option<Target> {
        let (rest, f) = s.rsplit_once('.')?;
        let mut p = rest.rsplit(':');
        let slot = u8::from_str_radix(p.next()?, 16).ok()?;
        let bus = u8::from_str_radix(p.next()?, 16).ok()?;
        let function = f.parse().ok()?;
        (slot < 32 && function < 8).then_some(Target::Bdf { bus, slot, function })
    };
    Ok(if s.contains(':') { bdf().ok_or(format!("bad {what} address {s:?}"))? } else { Target::Id(s) })
}

/// A request of the kernel's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `device_add DRIVER PORT`: a new device (id chosen by the runner) on
    /// the bus below PORT.
    DeviceAdd { driver: String, port: Target },
    /// `device_del DEVICE`.
    DeviceDel { device: Target },
    /// `aer DEVICE ERROR`: HMP `pcie_aer_inject_error`.
    Aer { device: Target, error: String },
}

/// Parse a request (the part after [`PREFIX`]).
pub fn parse(req: &str) -> Result<Request, String> {
    let mut w = req.split_whitespace();
    let verb = w.next().ok_or("empty request")?;
    let r = match verb {
        "device_add" => Request::DeviceAdd { driver: word(w.next(), "driver")?, port: target(w.next(), "port")? },
        "device_del" => Request::DeviceDel { device: target(w.next(), "device")? },
        "aer" => Request::Aer { device: target(w.next(), "device")?, error: word(w.next(), "error")? },
        other => return Err(format!("unknown verb {other:?}")),
    };
    if let Some(extra) = w.next() {
        return Err(format!("unexpected {extra:?}"));
    }
    Ok(r)
}

/// The qdev id of the device at `bus:slot.function` in a `query-pci` reply.
pub fn qdev_id(query_pci: &serde_json::Value, bus: u8, slot: u8, function: u8) -> Option<String> {
    fn walk(devices: &serde_json::Value, want: (u64, u64, u64)) -> Option<String> {
        for d in devices.as_array()? {
            let at = (d["bus"].as_u64()?, d["slot"].as_u64()?, d["function"].as_u64()?);
            if at == want {
                return d["qdev_id"].as_str().filter(|s| !s.is_empty()).map(String::from);
            }
            if let Some(id) = walk(&d["pci_bridge"]["devices"], want) {
                return Some(id);
            }
        }
        None
    }
    let want = (u64::from(bus), u64::from(slot), u64::from(function));
    query_pci["return"].as_array()?.iter().find_map(|b| walk(&b["devices"], want))
}

/// Turn a request whose targets are resolved to qdev ids into one QMP
/// command; `new_id` names a device being added.
pub fn command(req: &Request, new_id: &str) -> Result<String, String> {
    let id = |t: &Target| match t {
        Target::Id(s) => Ok(s.clone()),
        Target::Bdf { .. } => Err(String::from("unresolved address")),
    };
    Ok(match req {
        Request::DeviceAdd { driver, port } => {
            let bus = id(port)?;
            format!(r#"{{"execute":"device_add","arguments":{{"driver":"{driver}","id":"{new_id}","bus":"{bus}"}}}}"#)
        }
        Request::DeviceDel { device } => {
            let id = id(device)?;
            format!(r#"{{"execute":"device_del","arguments":{{"id":"{id}"}}}}"#)
        }
        Request::Aer { device, error } => {
            let id = id(device)?;
            format!(
                r#"{{"execute":"human-monitor-command","arguments":{{"command-line":"pcie_aer_inject_error {id} {error}"}}}}"#
            )
        }
    })
}

/// `cmd` (a JSON object) with QMP's "id" member, which QEMU echoes in
/// the reply.
pub fn with_id(cmd: &str, id: u64) -> String {
    match cmd.strip_prefix('{') {
        Some(rest) => format!("{{\"id\":{id},{rest}"),
        None => cmd.to_string(),
    }
}

/// The numeric "id" a QMP reply carries, if any.
pub fn reply_id(line: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(line).ok()?.get("id")?.as_u64()
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
        let add = parse("device_add edu dp1").unwrap();
        assert_eq!(
            command(&add, "hp1").unwrap(),
            r#"{"execute":"device_add","arguments":{"driver":"edu","id":"hp1","bus":"dp1"}}"#
        );
        let del = parse("device_del edu1").unwrap();
        assert_eq!(command(&del, "").unwrap(), r#"{"execute":"device_del","arguments":{"id":"edu1"}}"#);
        let aer = parse("aer dp1 POISON_TLP").unwrap();
        assert_eq!(
            command(&aer, "").unwrap(),
            r#"{"execute":"human-monitor-command","arguments":{"command-line":"pcie_aer_inject_error dp1 POISON_TLP"}}"#
        );
        let by_address = parse("device_del 0000:03:00.0").unwrap();
        assert_eq!(by_address, Request::DeviceDel { device: Target::Bdf { bus: 3, slot: 0, function: 0 } });
        assert!(command(&by_address, "").is_err(), "an address must be resolved first");
    }

    #[test]
    fn bad_requests_are_refused() {
        for bad in ["", "reboot", "device_del", "device_del a\"b", "device_add edu", "device_del x y", "aer dp1"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse("device_del 0000:03:20.0").is_err(), "slot 0x20");
    }

    #[test]
    fn addresses_resolve_through_query_pci() {
        let q: serde_json::Value = serde_json::from_str(
            r#"{"return": [{"bus": 0, "devices": [
                {"bus": 0, "slot": 2, "function": 0, "qdev_id": "rp1", "pci_bridge": {"devices": [
                    {"bus": 1, "slot": 0, "function": 0, "qdev_id": "up1", "pci_bridge": {"devices": [
                        {"bus": 2, "slot": 0, "function": 0, "qdev_id": "dp1", "pci_bridge": {"devices": [
                            {"bus": 3, "slot": 0, "function": 0, "qdev_id": "edu1"}]}}]}}]}},
                {"bus": 0, "slot": 5, "function": 0, "qdev_id": ""}]}]}"#,
        )
        .unwrap();
        assert_eq!(qdev_id(&q, 3, 0, 0).as_deref(), Some("edu1"));
        assert_eq!(qdev_id(&q, 2, 0, 0).as_deref(), Some("dp1"));
        assert_eq!(qdev_id(&q, 0, 5, 0), None, "a device without an id cannot be named");
        assert_eq!(qdev_id(&q, 9, 0, 0), None);
    }

    #[test]
    fn commands_carry_an_id_that_replies_echo() {
        let cmd = with_id(r#"{"execute":"query-pci"}"#, 7);
        assert_eq!(cmd, r#"{"id":7,"execute":"query-pci"}"#);
        assert!(serde_json::from_str::<serde_json::Value>(&cmd).is_ok());
        assert_eq!(reply_id(r#"{"return": {}, "id": 7}"#), Some(7));
        assert_eq!(reply_id(r#"{"return": {}}"#), None);
        assert_eq!(reply_id("not json"), None);
    }

    #[test]
    fn events_and_replies_are_named() {
        let ev = r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "DEVICE_DELETED", "data": {"device": "edu1"}}"#;
        assert!(describe(ev).starts_with("event DEVICE_DELETED {"));
        assert_eq!(describe(r#"{"return": {}}"#), r#"reply {"return": {}}"#);
        assert!(describe(r#"{"error": {"class": "GenericError"}}"#).starts_with("error "));
    }
}
