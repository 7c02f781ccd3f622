//! Random and mutated inputs to every parser: lspci text (random, and
//! fixtures with lines dropped, repeated, cut or bytes flipped), config
//! bytes (random spaces at random addresses through the whole pipeline),
//! sysfs trees with random files, and command lines. Nothing may panic;
//! what is read either works or says why.

use std::path::PathBuf;

use explain::input::{Input, InputDevice, acs_override};
use explain::{analyse, lspci, sysfs};
use pci::Bdf;
use proptest::prelude::*;

fn fixture() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/switch-mixed.linux-6.1.lspci"),
        )
        .unwrap()
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    Drop(usize),
    Repeat(usize),
    Cut(usize),
    Flip(usize, u8),
    StripTabs(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Drop),
        any::<usize>().prop_map(Mutation::Repeat),
        any::<usize>().prop_map(Mutation::Cut),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        any::<usize>().prop_map(Mutation::StripTabs),
    ]
}

fn mutate(text: &str, ms: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut bytes_cut = None;
    for m in ms {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match *m {
            Mutation::Drop(i) => {
                lines.remove(i % n);
            }
            Mutation::Repeat(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::Cut(i) => bytes_cut = Some(i),
            Mutation::Flip(i, b) => {
                let l = &mut lines[i % n];
                if !l.is_empty() {
                    let at = (i / n) % l.len();
                    let mut v = l.clone().into_bytes();
                    v[at] = b'!' + b % 90;
                    *l = String::from_utf8_lossy(&v).into_owned();
                }
            }
            Mutation::StripTabs(i) => {
                let l = &mut lines[i % n];
                *l = l.trim_start_matches('\t').to_string();
            }
        }
    }
    let mut out = lines.join("\n");
    if let Some(i) = bytes_cut {
        let mut at = i % (out.len() + 1);
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        out.truncate(at);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_text_never_panics(text in "(\\PC|\t|\n|[0-9a-f:. \\[\\]]){0,400}") {
        if let Ok(input) = lspci::parse(&text, "random") {
            let _ = analyse(&input);
        }
    }

    #[test]
    fn mutated_lspci_output_never_panics(ms in proptest::collection::vec(mutation(), 1..12), strip in any::<bool>()) {
        let base = if strip { lspci::strip_hex(fixture()) } else { fixture().to_string() };
        let text = mutate(&base, &ms);
        match lspci::parse(&text, "mutated") {
            Ok(input) => {
                let r = analyse(&input);
                let json = serde_json::to_string(&r).unwrap();
                let back: report::Report = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(back, r);
            }
            Err(e) => prop_assert!(e.0.starts_with("mutated"), "{}", e),
        }
    }

    #[test]
    fn random_config_spaces_go_through_the_whole_pipeline(
        spaces in proptest::collection::vec(
            ((0u8..4, 0u8..32, 0u8..8), proptest::collection::vec(any::<u8>(), 0..300), any::<Option<u8>>()),
            1..24,
        )
    ) {
        let mut input = Input::default();
        for ((bus, dev, func), mut config, group) in spaces {
            // A present vendor id most of the time, so enumeration goes on.
            if config.len() >= 2 && config[0] == 0xff { config[0] = 0x86; }
            input.devices.push(InputDevice {
                bdf: Some(Bdf::new(0, bus, dev, func)),
                config,
                exact: true,
                linux_group: group.map(u32::from),
                ..InputDevice::default()
            });
        }
        let r = analyse(&input);
        prop_assert!(r.functions.len() <= input.devices.len() + 256 * 8);
    }

    #[test]
    fn command_lines_dmesg_and_addresses_never_panic(s in "\\PC{0,80}") {
        let _ = acs_override(&s);
        let _ = Bdf::parse(&s);
        let mut source = report::Source::default();
        explain::input::read_dmesg(&s, &mut source);
    }

    #[test]
    fn random_dmar_tables_never_panic(
        mut table in proptest::collection::vec(any::<u8>(), 0..200),
        signature in any::<bool>(),
    ) {
        if signature && table.len() >= 8 {
            table[0..4].copy_from_slice(b"DMAR");
            let len = table.len() as u32;
            table[4..8].copy_from_slice(&len.to_le_bytes());
        }
        let mut input = lspci::parse(&lspci::strip_hex(fixture()), "dmar").unwrap();
        for d in &mut input.devices {
            d.linux_group = None;
        }
        input.dmar = Some(table);
        let _ = analyse(&input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn random_sysfs_trees_are_read_or_refused_with_the_path(
        files in proptest::collection::vec(("[0-9a-f:.]{1,14}", proptest::collection::vec(any::<u8>(), 0..200)), 0..6),
        groups in proptest::collection::vec(("[0-9a-z]{1,3}", "[0-9a-f:.]{1,14}"), 0..4),
    ) {
        let root = std::env::temp_dir().join(format!("iommu-explain-prop-{}-{}", std::process::id(), rand_tag(&files)));
        let _ = std::fs::remove_dir_all(&root);
        let devices = root.join("sys/bus/pci/devices");
        std::fs::create_dir_all(&devices).unwrap();
        for (name, bytes) in &files {
            let d = devices.join(name);
            if std::fs::create_dir_all(&d).is_ok() {
                let _ = std::fs::write(d.join("config"), bytes);
            }
        }
        for (g, m) in &groups {
            let d = root.join("sys/kernel/iommu_groups").join(g).join("devices");
            if std::fs::create_dir_all(&d).is_ok() {
                let _ = std::fs::write(d.join(m), b"");
            }
        }
        match sysfs::read_live(&root) {
            Ok(input) => { let _ = analyse(&input); }
            Err(e) => prop_assert!(e.0.contains(&root.display().to_string()), "{}", e),
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}

fn rand_tag(files: &[(String, Vec<u8>)]) -> usize {
    files.iter().map(|(n, b)| n.len() * 31 + b.len()).sum::<usize>()
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as usize)
}
