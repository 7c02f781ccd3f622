//! `qmp-runner SOCKET`: the serial filter of `run-qemu.sh`.
//!
//! Every line of the kernel's serial output (stdin) goes to stdout
//! unchanged. A line `QMP-REQUEST <verb> <args>` is also a request the
//! kernel makes of the machine, performed over QEMU's QMP socket (unix,
//! `-qmp unix:SOCKET,server=on,wait=off`); the kernel arms its wait before
//! printing the line. What QMP says (the reply, and every event such as
//! `DEVICE_DELETED`) goes to stderr as `qmp: ...` lines, where tests and
//! the user see QEMU's own view next to the kernel's report.
//!
//! Requests (see [`qmp_runner::parse_request`]):
//! - `device_add DRIVER ID BUS` → `device_add`
//! - `device_del ID` → `device_del`
//! - `aer ID ERROR` → `human-monitor-command` `pcie_aer_inject_error ID ERROR`
//!   (HMP only in QEMU 7.2)

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn connect(path: &str) -> Result<UnixStream, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => return Err(format!("cannot connect to {path}: {e}")),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Connect, read the greeting, leave capabilities negotiation mode, and
/// copy everything QMP sends afterwards to stderr.
fn start(path: String) -> Result<UnixStream, String> {
    let stream = connect(&path)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| format!("QMP greeting: {e}"))?;
    let mut w = stream.try_clone().map_err(|e| e.to_string())?;
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n").map_err(|e| e.to_string())?;
    line.clear();
    reader.read_line(&mut line).map_err(|e| format!("QMP capabilities: {e}"))?;
    thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => eprintln!("qmp: {}", qmp_runner::describe(line.trim_end())),
            }
        }
    });
    Ok(stream)
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: qmp-runner SOCKET < serial");
        std::process::exit(2);
    };
    // Connect in the background so that the serial flows from the first byte.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(start(path));
    });
    let mut qmp: Option<Result<UnixStream, String>> = None;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        let Some(req) = line.strip_prefix(qmp_runner::PREFIX) else { continue };
        let cmd = match qmp_runner::parse_request(req) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("qmp: bad request {req:?}: {e}");
                continue;
            }
        };
        if qmp.is_none() {
            qmp = Some(rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| Err("QMP never connected".into())));
        }
        match qmp.as_mut() {
            Some(Ok(s)) => {
                eprintln!("qmp: request {cmd}");
                if let Err(e) = s.write_all(format!("{cmd}\n").as_bytes()) {
                    eprintln!("qmp: send failed: {e}");
                }
            }
            Some(Err(e)) => eprintln!("qmp: cannot perform {req:?}: {e}"),
            None => {}
        }
    }
    // Give the event reader a moment to print what QEMU sent last.
    thread::sleep(Duration::from_millis(50));
}
