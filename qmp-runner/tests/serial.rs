//! The runner as run-qemu.sh uses it: serial on stdin, a QMP socket that
//! a fake QEMU serves here.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

fn runner(socket: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_qmp-runner"))
        .arg(socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qmp-runner starts")
}

fn tmp_socket(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("qmp-runner-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("qmp.sock")
}

/// A byte that is not UTF-8 on the serial (firmware noise, a crafted ACPI
/// OEM id printed by the kernel) must not end the pass-through: every line
/// after it still reaches stdout, and a request after it is still seen.
#[test]
fn serial_that_is_not_utf8_keeps_flowing() {
    let sock = tmp_socket("utf8");
    let mut child = runner(&sock);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"before\nbad \xff\xfe byte\nafter\nQMP-REQUEST reboot\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("before\n"), "{stdout:?}");
    assert!(stdout.contains("after\n"), "the line after the bad bytes is lost: {stdout:?}");
    assert!(stderr.contains("bad request \"reboot\""), "the request after the bad bytes is not seen: {stderr:?}");
}

/// A fake QEMU on `sock`: the greeting, then each command line is given to
/// `answer`, which returns the lines to send back (None: close the socket,
/// as a QEMU that dies does).
fn fake_qemu(
    sock: &std::path::Path,
    answer: impl Fn(&serde_json::Value) -> Option<Vec<String>> + Send + 'static,
) -> thread::JoinHandle<Vec<String>> {
    let listener = UnixListener::bind(sock).unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n").unwrap();
        let mut seen = Vec::new();
        for line in BufReader::new(s.try_clone().unwrap()).lines() {
            let Ok(line) = line else { break };
            seen.push(line.clone());
            let cmd: serde_json::Value = serde_json::from_str(&line).unwrap();
            let Some(out) = answer(&cmd) else { break };
            for l in out {
                s.write_all(format!("{l}\n").as_bytes()).unwrap();
            }
        }
        seen
    })
}

/// QEMU's reply to `cmd`, with its "id" echoed as QEMU does.
fn reply(cmd: &serde_json::Value, ret: &str) -> String {
    match cmd.get("id") {
        Some(id) => format!("{{\"return\": {ret}, \"id\": {id}}}"),
        None => format!("{{\"return\": {ret}}}"),
    }
}

const QUERY_PCI: &str = r#"[{"bus": 0, "devices": [{"bus": 0, "slot": 2, "function": 0, "qdev_id": "rp1", "pci_bridge": {"devices": [{"bus": 1, "slot": 0, "function": 0, "qdev_id": "edu1"}]}}]}]"#;

/// Events interleaved with replies, and a reply that belongs to an earlier
/// request (one that came after its wait ran out): neither is taken for
/// the answer to the current command.
#[test]
fn events_and_stale_replies_are_not_answers() {
    let sock = tmp_socket("stale");
    let server = fake_qemu(&sock, |cmd| {
        let event = r#"{"timestamp": {"seconds": 1, "microseconds": 0}, "event": "RTC_CHANGE", "data": {"offset": 0}}"#;
        Some(match cmd["execute"].as_str().unwrap() {
            "query-pci" => {
                vec![String::from(event), String::from(r#"{"return": {}, "id": 4242}"#), reply(cmd, QUERY_PCI)]
            }
            "device_del" => vec![
                String::from(
                    r#"{"timestamp": {"seconds": 2, "microseconds": 0}, "event": "DEVICE_DELETED", "data": {"device": "edu1"}}"#,
                ),
                reply(cmd, "{}"),
            ],
            _ => vec![reply(cmd, "{}")],
        })
    });
    let mut child = runner(&sock);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"QMP-REQUEST device_del 0000:01:00.0\nnext line\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("qmp: resolved 01:00.0 = edu1"), "{stderr}");
    assert!(stderr.contains(r#"qmp: request {"execute":"device_del","arguments":{"id":"edu1"}}"#), "{stderr}");
    assert!(stderr.contains("qmp: event RTC_CHANGE") && stderr.contains("qmp: event DEVICE_DELETED"), "{stderr}");
    assert!(!stderr.contains("cannot perform"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("next line\n"));
    let seen = server.join().unwrap();
    assert_eq!(seen.len(), 3, "capabilities, query-pci, device_del: {seen:?}");
}

/// QEMU dies while a request waits for its reply: the runner says so at
/// once (not after its reply wait) and keeps passing the serial through.
#[test]
fn qemu_dying_mid_request_is_reported_at_once() {
    let sock = tmp_socket("dies");
    let server = fake_qemu(&sock, |cmd| match cmd["execute"].as_str().unwrap() {
        "qmp_capabilities" => Some(vec![reply(cmd, "{}")]),
        _ => None,
    });
    let mut child = runner(&sock);
    let mut stdin = child.stdin.take().unwrap();
    let t0 = Instant::now();
    stdin.write_all(b"QMP-REQUEST aer 0000:01:00.0 POISON_TLP\nstill here\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("qmp: cannot perform \"aer 0000:01:00.0 POISON_TLP\""), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("still here\n"));
    assert!(t0.elapsed() < Duration::from_secs(5), "took {:?}", t0.elapsed());
    server.join().unwrap();
}
