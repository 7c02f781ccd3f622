//! `qmp-runner SOCKET`: the serial filter of `run-qemu.sh`.
//!
//! Every line of the kernel's serial output (stdin) goes to stdout
//! unchanged. A line `QMP-REQUEST <verb> <args>` is also a request the
//! kernel makes of the machine, performed over QEMU's QMP socket (unix,
//! `-qmp unix:SOCKET,server=on,wait=off`); the kernel arms its wait before
//! printing the line. Devices are named by PCI address and resolved to
//! QEMU's qdev ids with `query-pci`. What QMP says (each reply, and every
//! event such as `DEVICE_DELETED`) goes to stderr as `qmp: ...` lines,
//! where tests and the user see QEMU's own view next to the kernel's
//! report.
//!
//! Requests (see [`qmp_runner::parse`]):
//! - `device_add DRIVER PORT` → `device_add` (id `hpN`) on the port's bus
//! - `device_del DEVICE` → `device_del`
//! - `aer DEVICE ERROR` → `human-monitor-command`
//!   `pcie_aer_inject_error ID ERROR` (HMP only in QEMU 7.2)

use qmp_runner::{Request, Target};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

const REPLY_WAIT: Duration = Duration::from_secs(10);

struct Qmp {
    stream: UnixStream,
    replies: Receiver<String>,
    /// The "id" of the last command sent (QEMU echoes it in the reply).
    last_id: u64,
}

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

/// Connect, read the greeting, leave capabilities negotiation mode; then
/// events go straight to stderr and replies to the channel.
fn start(path: &str) -> Result<Qmp, String> {
    let stream = connect(path)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| format!("QMP greeting: {e}"))?;
    let (tx, replies) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line.contains(r#""event""#) => eprintln!("qmp: {}", qmp_runner::describe(line.trim_end())),
                Ok(_) => {
                    if tx.send(line.trim_end().to_string()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut q = Qmp { stream, replies, last_id: 0 };
    q.execute(r#"{"execute":"qmp_capabilities"}"#)?;
    Ok(q)
}

impl Qmp {
    /// Send `cmd` with a fresh id and wait for the reply carrying it; a
    /// reply with another id (one that came after its own wait ran out)
    /// is reported and dropped, so replies never shift onto later commands.
    fn execute(&mut self, cmd: &str) -> Result<String, String> {
        self.last_id += 1;
        let id = self.last_id;
        let cmd = qmp_runner::with_id(cmd, id);
        self.stream.write_all(format!("{cmd}\n").as_bytes()).map_err(|e| format!("send: {e}"))?;
        let deadline = Instant::now() + REPLY_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self.replies.recv_timeout(left).map_err(|_| String::from("no reply from QMP"))?;
            if qmp_runner::reply_id(&reply) == Some(id) {
                return Ok(reply);
            }
            eprintln!("qmp: dropped a reply that is not to the current command: {reply}");
        }
    }

    fn resolve(&mut self, t: &mut Target) -> Result<(), String> {
        let Target::Bdf { bus, slot, function } = *t else { return Ok(()) };
        let reply = self.execute(r#"{"execute":"query-pci"}"#)?;
        let v: serde_json::Value = serde_json::from_str(&reply).map_err(|e| format!("query-pci: {e}"))?;
        let id = qmp_runner::qdev_id(&v, bus, slot, function)
            .ok_or(format!("no device with a qdev id at {bus:02x}:{slot:02x}.{function}"))?;
        eprintln!("qmp: resolved {bus:02x}:{slot:02x}.{function} = {id}");
        *t = Target::Id(id);
        Ok(())
    }

    fn perform(&mut self, mut req: Request, new_id: &str) -> Result<String, String> {
        match &mut req {
            Request::DeviceAdd { port: t, .. } | Request::DeviceDel { device: t } | Request::Aer { device: t, .. } => {
                self.resolve(t)?
            }
        }
        let cmd = qmp_runner::command(&req, new_id)?;
        eprintln!("qmp: request {cmd}");
        self.execute(&cmd)
    }
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: qmp-runner SOCKET < serial");
        std::process::exit(2);
    };
    // Connect in the background so that the serial flows from the first byte.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(start(&path));
    });
    let mut qmp: Option<Result<Qmp, String>> = None;
    let mut added = 0;
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::stdout();
    // Bytes, not `lines()`: a byte that is not UTF-8 would end `lines()`
    // and with it the serial pass-through. Lines go out as they came.
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match stdin.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let _ = out.write_all(&raw);
        if raw.last() != Some(&b'\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\n', '\r']);
        let Some(text) = line.strip_prefix(qmp_runner::PREFIX) else { continue };
        let req = match qmp_runner::parse(text) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("qmp: bad request {text:?}: {e}");
                continue;
            }
        };
        if qmp.is_none() {
            qmp = Some(rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| Err("QMP never connected".into())));
        }
        if matches!(req, Request::DeviceAdd { .. }) {
            added += 1;
        }
        match qmp.as_mut() {
            Some(Ok(q)) => match q.perform(req, &format!("hp{added}")) {
                Ok(reply) => eprintln!("qmp: {}", qmp_runner::describe(&reply)),
                Err(e) => eprintln!("qmp: cannot perform {text:?}: {e}"),
            },
            Some(Err(e)) => eprintln!("qmp: cannot perform {text:?}: {e}"),
            None => {}
        }
    }
    // Give the event reader a moment to print what QEMU sent last.
    thread::sleep(Duration::from_millis(50));
}
