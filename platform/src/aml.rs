//! PCI host bridges from ACPI definition blocks, without an AML interpreter.
//!
//! Linux finds its PCI root buses in the ACPI namespace: the scan
//! (drivers/acpi/scan.c `acpi_bus_attach`) walks the namespace depth first,
//! skips every device whose `_STA` says neither present nor functioning
//! (`acpi_dev_ready_for_enumeration` → `acpi_device_is_present`) together
//! with everything below it, and hands devices whose `_HID`/`_CID` is
//! PNP0A03 or PNP0A08 to `acpi_pci_root_add` (drivers/acpi/pci_root.c). That
//! takes the segment from `_SEG` (absent: 0) and the bus range from the bus
//! number address descriptor of `_CRS` (`try_get_root_bridge_busnr`: the
//! last Word/DWord/QWord Address Space descriptor of resource type "bus
//! number" with a non-zero length); when `_CRS` has none, from `_BBN`
//! (start only, end 0xff), and when `_BBN` is absent too, bus 0.
//!
//! No AML interpreter builds on stable Rust (the `aml` crate needs
//! `decl_macro`), so this module reads definition blocks structurally
//! (ACPI 6.5 §20): `Scope`, `Device`, `Name` with constant data (integers,
//! `Zero`/`One`/`Ones`, strings, EISA ids, buffers, packages), `Method`
//! (its body skipped by its PkgLength), and the other named objects skipped
//! by their encoding, building a namespace with full paths in creation
//! order (ACPICA appends each new node after its siblings). That is enough
//! for QEMU, which declares every object a host bridge needs as a constant,
//! and for most firmware.
//!
//! What it cannot evaluate, and what then happens:
//! - `_STA` as a method: the device is taken as present, Linux's default
//!   for a device without `_STA` (`acpi_bus_get_status` gives
//!   `ACPI_STA_DEFAULT`); a note says so. A host bridge a method hides is
//!   then scanned when Linux would not scan it.
//! - `_CRS` as a method (common on real hardware, which patches its
//!   resource template at run time): the bus range comes from `_BBN`, then
//!   bus 0, as Linux does when `_CRS` has no bus range; a note says so. On
//!   such firmware `_BBN` normally equals the `_CRS` start.
//! - `_BBN` as a method (reached only when `_CRS` gave no bus range): the
//!   bus is unknown; the host bridge is reported and not used, and the
//!   peer-bus probe finds its bus if devices answer there.
//! - `_SEG` as a method: segment 0 is assumed (a note says so).
//! - `_HID`/`_CID` as methods: the device is not recognised as a host
//!   bridge (a note says so); the peer-bus probe still finds its bus.
//! - `If`/`Else` at scope level (run by ACPICA when the table loads): with
//!   a constant predicate the branch taken is read; with a computed one
//!   neither is, the objects in them are not seen, and a note says so.
//!   `While` at scope level is skipped.
//! - An opcode this reader does not know, at a place where only named
//!   objects are expected, ends the reading of the enclosing `Scope` or
//!   `Device` body (its PkgLength bounds it; reading goes on after it), or
//!   of the rest of the table at its top level, with a problem line.
//!
//! Everything is bounded: every length is checked against the table,
//! nesting is limited, and malformed bytes give a problem line, never a
//! panic.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const ALIAS_OP: u8 = 0x06;
const NAME_OP: u8 = 0x08;
const BYTE_PREFIX: u8 = 0x0a;
const WORD_PREFIX: u8 = 0x0b;
const DWORD_PREFIX: u8 = 0x0c;
const STRING_PREFIX: u8 = 0x0d;
const QWORD_PREFIX: u8 = 0x0e;
const SCOPE_OP: u8 = 0x10;
const BUFFER_OP: u8 = 0x11;
const PACKAGE_OP: u8 = 0x12;
const VAR_PACKAGE_OP: u8 = 0x13;
const METHOD_OP: u8 = 0x14;
const EXTERNAL_OP: u8 = 0x15;
const DUAL_NAME_PREFIX: u8 = 0x2e;
const MULTI_NAME_PREFIX: u8 = 0x2f;
const EXT_OP_PREFIX: u8 = 0x5b;
const ROOT_CHAR: u8 = b'\\';
const PARENT_PREFIX: u8 = b'^';
const ONES_OP: u8 = 0xff;
const IF_OP: u8 = 0xa0;
const ELSE_OP: u8 = 0xa1;
const WHILE_OP: u8 = 0xa2;
const NOOP_OP: u8 = 0xa3;
// Extended opcodes (after EXT_OP_PREFIX).
const MUTEX_OP: u8 = 0x01;
const EVENT_OP: u8 = 0x02;
const COND_REF_OF_OP: u8 = 0x12;
const CREATE_FIELD_OP: u8 = 0x13;
const REVISION_OP: u8 = 0x30;
const DEBUG_OP: u8 = 0x31;
const OP_REGION_OP: u8 = 0x80;
const FIELD_OP: u8 = 0x81;
const DEVICE_OP: u8 = 0x82;
const PROCESSOR_OP: u8 = 0x83;
const POWER_RES_OP: u8 = 0x84;
const THERMAL_ZONE_OP: u8 = 0x85;
const INDEX_FIELD_OP: u8 = 0x86;
const BANK_FIELD_OP: u8 = 0x87;
const DATA_REGION_OP: u8 = 0x88;

/// The names whose constant values are read (the rest is skipped).
const KEPT: [[u8; 4]; 6] = [*b"_HID", *b"_CID", *b"_STA", *b"_SEG", *b"_BBN", *b"_CRS"];

/// Size of a definition block header (ACPI 6.5 §5.2.6).
pub const HEADER_LEN: usize = 36;
/// Deepest nesting of scopes, packages and expressions followed.
const MAX_DEPTH: usize = 64;
/// `_STA` bits Linux looks at: present (0) and functioning (3).
const STA_PRESENT: u64 = 1 << 0;
const STA_FUNCTIONING: u64 = 1 << 3;
/// `ACPI_STA_DEFAULT`: what a device without `_STA` reports.
const STA_DEFAULT: u64 = 0x0f;

/// A constant data object (ACPI 6.5 §20.2.3), as far as it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Integer(u64),
    String(String),
    Buffer(Vec<u8>),
    Package(Vec<Value>),
    /// A reference or an expression: not evaluated.
    Other,
}

/// What a namespace node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A path element created by `Scope` or implied by a path (`\_SB`).
    Scope,
    Device,
    /// `Name (X, value)`.
    Name(Value),
    /// `Method (X, args)`: never run.
    Method {
        args: u8,
    },
    /// Any other named object (region, field, mutex, processor, ...).
    Other,
}

#[derive(Clone, Debug)]
struct Node {
    seg: [u8; 4],
    parent: usize,
    children: Vec<usize>,
    kind: Kind,
}

/// The ACPI namespace the definition blocks declare (node 0 is `\`).
#[derive(Clone, Debug)]
pub struct Namespace {
    nodes: Vec<Node>,
    /// One line per place the reader had to stop or skip.
    pub problems: Vec<String>,
    /// `If` blocks at scope level whose predicate is not a constant: the
    /// objects they may declare are not seen.
    pub unevaluated_conditionals: usize,
}

impl Default for Namespace {
    fn default() -> Self {
        Self::new()
    }
}

type Parsed<T> = Result<T, String>;

/// Longest name path read (segments); longer ones are an error.
const MAX_SEGS: usize = 16;

/// A parsed NameString (ACPI 6.5 §20.2.2), held inline: the kernel's heap
/// is a linked list, and names are the most frequent thing in AML.
struct NameString {
    absolute: bool,
    parents: usize,
    len: usize,
    buf: [[u8; 4]; MAX_SEGS],
}

impl NameString {
    fn segs(&self) -> &[[u8; 4]] {
        &self.buf[..self.len]
    }
}

impl Namespace {
    pub fn new() -> Self {
        Namespace {
            nodes: alloc::vec![Node { seg: *b"\\___", parent: 0, children: Vec::new(), kind: Kind::Scope }],
            problems: Vec::new(),
            unevaluated_conditionals: 0,
        }
    }

    /// Read one definition block (DSDT or SSDT, header included) into the
    /// namespace. Tables are loaded in the order Linux loads them: the
    /// DSDT, then each SSDT in root-table order.
    pub fn load_table(&mut self, table: &[u8]) {
        let name = table.get(..4).map_or_else(|| String::from("????"), |s| String::from_utf8_lossy(s).into_owned());
        if table.len() < HEADER_LEN {
            self.problems.push(format!("AML: {name} is shorter than its header; not read"));
            return;
        }
        let mut r = Reader { aml: table, ns: self, table: name };
        if let Err(e) = r.term_list(HEADER_LEN, table.len(), 0, 0) {
            let t = r.table.clone();
            self.problems.push(format!("AML: {t}: {e}; the rest of the table is not read"));
        }
    }

    /// The node at an absolute path such as `\_SB.PCI0`, if declared.
    pub fn find(&self, path: &str) -> Option<usize> {
        let mut node = 0;
        for seg in path.trim_start_matches('\\').split('.').filter(|s| !s.is_empty()) {
            let seg = pad_seg(seg.as_bytes())?;
            node = self.child(node, seg)?;
        }
        Some(node)
    }

    pub fn kind(&self, node: usize) -> &Kind {
        &self.nodes[node].kind
    }

    /// The full path of a node, `\_SB.PCI0`.
    pub fn path(&self, node: usize) -> String {
        let mut segs = Vec::new();
        let mut n = node;
        while n != 0 {
            segs.push(self.nodes[n].seg);
            n = self.nodes[n].parent;
        }
        let mut s = String::from("\\");
        for (i, seg) in segs.iter().rev().enumerate() {
            if i > 0 {
                s.push('.');
            }
            // ASL spelling: trailing pad characters dropped (`\_SB.PCI0`).
            let end = seg.iter().rposition(|&c| c != b'_').map_or(1, |i| i + 1);
            s.push_str(core::str::from_utf8(&seg[..end]).unwrap_or("????"));
        }
        s
    }

    /// Devices in namespace (depth-first, creation) order.
    pub fn devices(&self) -> Vec<usize> {
        self.preorder().into_iter().filter(|&n| self.nodes[n].kind == Kind::Device).collect()
    }

    fn preorder(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = alloc::vec![0usize];
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.nodes[n].children.iter().rev());
        }
        out
    }

    fn child(&self, parent: usize, seg: [u8; 4]) -> Option<usize> {
        self.nodes[parent].children.iter().copied().find(|&c| self.nodes[c].seg == seg)
    }

    /// The object `seg` directly in `node`.
    fn object(&self, node: usize, seg: &[u8; 4]) -> Option<&Kind> {
        self.child(node, *seg).map(|c| &self.nodes[c].kind)
    }

    fn add(&mut self, parent: usize, seg: [u8; 4], kind: Kind) -> usize {
        self.nodes.push(Node { seg, parent, children: Vec::new(), kind });
        let n = self.nodes.len() - 1;
        self.nodes[parent].children.push(n);
        n
    }

    /// The scope a path's prefix and all but its last segment name,
    /// creating missing elements as scopes; and its last segment.
    fn parent_of(&mut self, scope: usize, name: &NameString) -> Option<(usize, [u8; 4])> {
        let (&last, path) = name.segs().split_last()?;
        let mut node = if name.absolute { 0 } else { scope };
        for _ in 0..name.parents {
            node = self.nodes[node].parent;
        }
        for &seg in path {
            node = match self.child(node, seg) {
                Some(c) => c,
                None => self.add(node, seg, Kind::Scope),
            };
        }
        Some((node, last))
    }

    /// Declare `name` in `scope`: an existing node of that name is kept
    /// (a `Scope` or `External` placeholder becomes what is declared; a
    /// second declaration of a real object is ignored, as ACPICA refuses
    /// it with AE_ALREADY_EXISTS).
    fn declare(&mut self, scope: usize, name: &NameString, kind: Kind) -> Option<usize> {
        let (parent, seg) = self.parent_of(scope, name)?;
        match self.child(parent, seg) {
            Some(n) => {
                if matches!(self.nodes[n].kind, Kind::Scope | Kind::Other) && kind != Kind::Scope {
                    self.nodes[n].kind = kind;
                }
                Some(n)
            }
            None => Some(self.add(parent, seg, kind)),
        }
    }

    /// The node `Scope (name)` opens: a single relative segment is looked
    /// up along the enclosing scopes first (ACPI 6.5 §5.3 search rules).
    fn open_scope(&mut self, scope: usize, name: &NameString) -> Option<usize> {
        if !name.absolute && name.parents == 0 && name.segs().len() == 1 {
            let mut n = scope;
            loop {
                if let Some(c) = self.child(n, name.segs()[0]) {
                    return Some(c);
                }
                if n == 0 {
                    break;
                }
                n = self.nodes[n].parent;
            }
        }
        self.declare(scope, name, Kind::Scope)
    }

    /// The method a reference names, for its argument count: searched
    /// like `open_scope`, without creating anything.
    fn method_args(&self, scope: usize, name: &NameString) -> u8 {
        let found = if name.absolute || name.parents > 0 || name.segs().len() > 1 {
            let mut node = if name.absolute { 0 } else { scope };
            for _ in 0..name.parents {
                node = self.nodes[node].parent;
            }
            name.segs().iter().try_fold(node, |n, &seg| self.child(n, seg))
        } else if let Some(&seg) = name.segs().first() {
            let mut n = scope;
            loop {
                if let Some(c) = self.child(n, seg) {
                    break Some(c);
                }
                if n == 0 {
                    break None;
                }
                n = self.nodes[n].parent;
            }
        } else {
            None
        };
        match found.map(|n| &self.nodes[n].kind) {
            Some(Kind::Method { args }) => *args,
            _ => 0,
        }
    }
}

fn pad_seg(s: &[u8]) -> Option<[u8; 4]> {
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    let mut seg = *b"____";
    seg[..s.len()].copy_from_slice(s);
    Some(seg)
}

struct Reader<'a> {
    aml: &'a [u8],
    ns: &'a mut Namespace,
    table: String,
}

impl Reader<'_> {
    fn byte(&self, at: usize) -> Parsed<u8> {
        self.aml.get(at).copied().ok_or_else(|| format!("truncated at offset {at:#x}"))
    }

    fn le(&self, at: usize, n: usize) -> Parsed<u64> {
        let b = self.aml.get(at..at + n).ok_or_else(|| format!("truncated at offset {at:#x}"))?;
        Ok(b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    }

    /// PkgLength (ACPI 6.5 §20.2.4): returns the end of the package and
    /// where its contents start.
    fn pkg_length(&self, at: usize, end: usize) -> Parsed<(usize, usize)> {
        let lead = self.byte(at)?;
        let extra = usize::from(lead >> 6);
        let mut len = if extra == 0 { usize::from(lead & 0x3f) } else { usize::from(lead & 0x0f) };
        for i in 0..extra {
            len |= usize::from(self.byte(at + 1 + i)?) << (4 + 8 * i);
        }
        let pkg_end = at.checked_add(len).filter(|&e| e <= end && len > extra);
        let pkg_end =
            pkg_end.ok_or_else(|| format!("package length {len:#x} at offset {at:#x} runs past its scope"))?;
        Ok((pkg_end, at + 1 + extra))
    }

    fn name_seg(&self, at: usize) -> Parsed<[u8; 4]> {
        let b = self.aml.get(at..at + 4).ok_or_else(|| format!("truncated name at offset {at:#x}"))?;
        let lead_ok = b[0].is_ascii_uppercase() || b[0] == b'_';
        let rest_ok = b[1..].iter().all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
        if !lead_ok || !rest_ok {
            return Err(format!("invalid name segment at offset {at:#x}"));
        }
        Ok([b[0], b[1], b[2], b[3]])
    }

    fn name_string(&self, mut at: usize) -> Parsed<(NameString, usize)> {
        let mut name = NameString { absolute: false, parents: 0, len: 0, buf: [[0; 4]; MAX_SEGS] };
        if self.byte(at)? == ROOT_CHAR {
            name.absolute = true;
            at += 1;
        } else {
            while self.byte(at)? == PARENT_PREFIX {
                name.parents += 1;
                at += 1;
            }
        }
        let count = match self.byte(at)? {
            0 => {
                at += 1;
                0
            }
            DUAL_NAME_PREFIX => {
                at += 1;
                2
            }
            MULTI_NAME_PREFIX => {
                at += 2;
                usize::from(self.byte(at - 1)?)
            }
            _ => 1,
        };
        if count > MAX_SEGS {
            return Err(format!("name of {count} segments at offset {at:#x}"));
        }
        for i in 0..count {
            name.buf[i] = self.name_seg(at)?;
            at += 4;
        }
        name.len = count;
        Ok((name, at))
    }

    fn is_name_start(b: u8) -> bool {
        b == ROOT_CHAR
            || b == PARENT_PREFIX
            || b == DUAL_NAME_PREFIX
            || b == MULTI_NAME_PREFIX
            || b == b'_'
            || b.is_ascii_uppercase()
    }

    /// A TermList (ACPI 6.5 §20.2.5) in `scope`, from `at` to `end`.
    fn term_list(&mut self, mut at: usize, end: usize, scope: usize, depth: usize) -> Parsed<()> {
        if depth > MAX_DEPTH {
            return Err(String::from("scopes nested too deep"));
        }
        while at < end {
            at = self.term(at, end, scope, depth)?;
        }
        Ok(())
    }

    /// One term at scope level; returns where the next one starts.
    fn term(&mut self, at: usize, end: usize, scope: usize, depth: usize) -> Parsed<usize> {
        let op = self.byte(at)?;
        match op {
            NAME_OP => {
                let (name, next) = self.name_string(at + 1)?;
                // Only the objects host bridges are told by are kept; other
                // data (large `_PRT` packages) is skipped by its length.
                let (value, next) = if name.segs().last().is_some_and(|s| KEPT.contains(s)) {
                    self.data_object(next, end, depth)?
                } else {
                    (Value::Other, self.skip_data(next, end)?)
                };
                self.ns.declare(scope, &name, Kind::Name(value));
                Ok(next)
            }
            SCOPE_OP => {
                let (pkg_end, body) = self.pkg_length(at + 1, end)?;
                let (name, body) = self.name_string(body)?;
                if let Some(node) = self.ns.open_scope(scope, &name) {
                    self.body(node, body, pkg_end, depth)?;
                }
                Ok(pkg_end)
            }
            METHOD_OP => {
                let (pkg_end, body) = self.pkg_length(at + 1, end)?;
                let (name, flags) = self.name_string(body)?;
                let args = self.byte(flags)? & 7;
                self.ns.declare(scope, &name, Kind::Method { args });
                Ok(pkg_end)
            }
            EXTERNAL_OP => {
                // External declares nothing (ACPICA ignores it at load);
                // an external method's argument count is kept so that calls
                // to it can be skipped. Object type and argument count follow.
                let (name, next) = self.name_string(at + 1)?;
                let (obj_type, args) = (self.byte(next)?, self.byte(next + 1)?);
                if obj_type == 8
                    && let Some((parent, seg)) = self.ns.parent_of(scope, &name)
                    && self.ns.child(parent, seg).is_none()
                {
                    self.ns.add(parent, seg, Kind::Method { args: args & 7 });
                }
                Ok(next + 2)
            }
            ALIAS_OP => {
                let (_, next) = self.name_string(at + 1)?;
                let (name, next) = self.name_string(next)?;
                self.ns.declare(scope, &name, Kind::Other);
                Ok(next)
            }
            IF_OP => self.if_else(at, end, scope, depth),
            ELSE_OP | WHILE_OP => {
                let (pkg_end, _) = self.pkg_length(at + 1, end)?;
                Ok(pkg_end)
            }
            NOOP_OP => Ok(at + 1),
            // CreateDWordField, CreateWordField, CreateByteField,
            // CreateBitField, CreateQWordField: source, index, name.
            0x8a..=0x8d | 0x8f => {
                let next = self.skip_term_arg(at + 1, end, scope, depth)?;
                let next = self.skip_term_arg(next, end, scope, depth)?;
                let (name, next) = self.name_string(next)?;
                self.ns.declare(scope, &name, Kind::Other);
                Ok(next)
            }
            EXT_OP_PREFIX => self.ext_term(at, end, scope, depth),
            // A statement or expression at scope level (Store, Notify,
            // a method call...): skipped as an expression when it is one.
            _ => self.skip_term_arg(at, end, scope, depth),
        }
    }

    fn ext_term(&mut self, at: usize, end: usize, scope: usize, depth: usize) -> Parsed<usize> {
        let op = self.byte(at + 1)?;
        match op {
            DEVICE_OP => {
                let (pkg_end, body) = self.pkg_length(at + 2, end)?;
                let (name, body) = self.name_string(body)?;
                if let Some(node) = self.ns.declare(scope, &name, Kind::Device) {
                    self.body(node, body, pkg_end, depth)?;
                }
                Ok(pkg_end)
            }
            PROCESSOR_OP | POWER_RES_OP | THERMAL_ZONE_OP => {
                let (pkg_end, body) = self.pkg_length(at + 2, end)?;
                let (name, _) = self.name_string(body)?;
                self.ns.declare(scope, &name, Kind::Other);
                Ok(pkg_end)
            }
            FIELD_OP | INDEX_FIELD_OP | BANK_FIELD_OP => Ok(self.pkg_length(at + 2, end)?.0),
            OP_REGION_OP => {
                let (name, next) = self.name_string(at + 2)?;
                let next = self.skip_term_arg(next + 1, end, scope, depth)?;
                let next = self.skip_term_arg(next, end, scope, depth)?;
                self.ns.declare(scope, &name, Kind::Other);
                Ok(next)
            }
            DATA_REGION_OP => {
                let (name, mut next) = self.name_string(at + 2)?;
                for _ in 0..3 {
                    next = self.skip_term_arg(next, end, scope, depth)?;
                }
                self.ns.declare(scope, &name, Kind::Other);
                Ok(next)
            }
            MUTEX_OP | EVENT_OP => {
                let (name, next) = self.name_string(at + 2)?;
                self.ns.declare(scope, &name, Kind::Other);
                Ok(if op == MUTEX_OP { next + 1 } else { next })
            }
            CREATE_FIELD_OP => {
                let mut next = at + 2;
                for _ in 0..3 {
                    next = self.skip_term_arg(next, end, scope, depth)?;
                }
                let (name, next) = self.name_string(next)?;
                self.ns.declare(scope, &name, Kind::Other);
                Ok(next)
            }
            _ => self.skip_term_arg(at, end, scope, depth),
        }
    }

    /// `If (predicate) {...} Else {...}` at scope level, which ACPICA runs
    /// when it loads the table: with a constant predicate the branch taken
    /// is read in the enclosing scope; otherwise both are skipped (counted
    /// in `Namespace::unevaluated_conditionals`).
    fn if_else(&mut self, at: usize, end: usize, scope: usize, depth: usize) -> Parsed<usize> {
        let (if_end, body) = self.pkg_length(at + 1, end)?;
        let predicate = match self.data_object(body, if_end, depth) {
            Ok((Value::Integer(v), next)) => Some((v != 0, next)),
            _ => None,
        };
        let else_part = match self.aml.get(if_end) {
            Some(&ELSE_OP) if if_end < end => Some(self.pkg_length(if_end + 1, end)?),
            _ => None,
        };
        let next = else_part.map_or(if_end, |e| e.0);
        match (predicate, else_part) {
            (Some((true, then_at)), _) => self.body(scope, then_at, if_end, depth)?,
            (Some((false, _)), Some((else_end, else_at))) => self.body(scope, else_at, else_end, depth)?,
            (Some((false, _)), None) => {}
            (None, _) => self.ns.unevaluated_conditionals += 1,
        }
        Ok(next)
    }

    /// The body of a Scope or Device: an error inside ends this body only.
    fn body(&mut self, node: usize, at: usize, end: usize, depth: usize) -> Parsed<()> {
        if let Err(e) = self.term_list(at, end, node, depth + 1) {
            if depth + 1 > MAX_DEPTH {
                return Err(e);
            }
            let (t, p) = (self.table.clone(), self.ns.path(node));
            self.ns.problems.push(format!("AML: {t}: {p}: {e}; the rest of this scope is not read"));
        }
        Ok(())
    }

    /// A DataRefObject (ACPI 6.5 §20.2.3) and where it ends.
    fn data_object(&self, at: usize, end: usize, depth: usize) -> Parsed<(Value, usize)> {
        if depth > MAX_DEPTH {
            return Err(String::from("data nested too deep"));
        }
        let op = self.byte(at)?;
        Ok(match op {
            ZERO_OP => (Value::Integer(0), at + 1),
            ONE_OP => (Value::Integer(1), at + 1),
            ONES_OP => (Value::Integer(u64::MAX), at + 1),
            BYTE_PREFIX => (Value::Integer(self.le(at + 1, 1)?), at + 2),
            WORD_PREFIX => (Value::Integer(self.le(at + 1, 2)?), at + 3),
            DWORD_PREFIX => (Value::Integer(self.le(at + 1, 4)?), at + 5),
            QWORD_PREFIX => (Value::Integer(self.le(at + 1, 8)?), at + 9),
            STRING_PREFIX => {
                let rest = self.aml.get(at + 1..end).unwrap_or(&[]);
                let nul = rest.iter().position(|&b| b == 0).ok_or_else(|| format!("unterminated string at {at:#x}"))?;
                (Value::String(String::from_utf8_lossy(&rest[..nul]).into_owned()), at + 2 + nul)
            }
            BUFFER_OP => {
                let (pkg_end, body) = self.pkg_length(at + 1, end)?;
                let (size, bytes_at) = self.data_object(body, pkg_end, depth + 1)?;
                let mut bytes = self.aml[bytes_at.min(pkg_end)..pkg_end].to_vec();
                // ACPI 6.5 §19.6.10: a larger BufferSize pads with zeros.
                if let Value::Integer(n) = size
                    && let Ok(n) = usize::try_from(n)
                    && n > bytes.len()
                    && n <= 1 << 16
                {
                    bytes.resize(n, 0);
                }
                (Value::Buffer(bytes), pkg_end)
            }
            PACKAGE_OP | VAR_PACKAGE_OP => {
                let (pkg_end, body) = self.pkg_length(at + 1, end)?;
                let mut next = if op == PACKAGE_OP { body + 1 } else { self.skip_const(body)? };
                let mut items = Vec::new();
                while next < pkg_end {
                    if Self::is_name_start(self.byte(next)?) {
                        next = self.name_string(next)?.1;
                        items.push(Value::Other);
                    } else {
                        let (v, n) = self.data_object(next, pkg_end, depth + 1)?;
                        items.push(v);
                        next = n;
                    }
                }
                (Value::Package(items), pkg_end)
            }
            EXT_OP_PREFIX if self.byte(at + 1)? == REVISION_OP => (Value::Other, at + 2),
            _ => return Err(format!("opcode {op:#04x} at offset {at:#x} is not constant data")),
        })
    }

    /// The end of a data object, without reading it.
    fn skip_data(&self, at: usize, end: usize) -> Parsed<usize> {
        match self.byte(at)? {
            BUFFER_OP | PACKAGE_OP | VAR_PACKAGE_OP => Ok(self.pkg_length(at + 1, end)?.0),
            STRING_PREFIX => {
                let rest = self.aml.get(at + 1..end).unwrap_or(&[]);
                let nul = rest.iter().position(|&b| b == 0).ok_or_else(|| format!("unterminated string at {at:#x}"))?;
                Ok(at + 2 + nul)
            }
            EXT_OP_PREFIX => Ok(self.data_object(at, end, 0)?.1),
            _ => self.skip_const(at),
        }
    }

    /// The end of an integer constant (a VarPackage's element count).
    fn skip_const(&self, at: usize) -> Parsed<usize> {
        match self.byte(at)? {
            ZERO_OP | ONE_OP | ONES_OP => Ok(at + 1),
            BYTE_PREFIX => Ok(at + 2),
            WORD_PREFIX => Ok(at + 3),
            DWORD_PREFIX => Ok(at + 5),
            QWORD_PREFIX => Ok(at + 9),
            op => Err(format!("opcode {op:#04x} at offset {at:#x}: element count not constant")),
        }
    }

    /// Skip one TermArg (an expression) without evaluating it: constants,
    /// names (with the arguments of a method declared earlier), locals,
    /// arguments and the common operators of fixed arity.
    fn skip_term_arg(&self, at: usize, end: usize, scope: usize, depth: usize) -> Parsed<usize> {
        if depth > MAX_DEPTH {
            return Err(String::from("expression nested too deep"));
        }
        let op = self.byte(at)?;
        let operands = |n: usize, from: usize| -> Parsed<usize> {
            (0..n).try_fold(from, |next, _| self.skip_term_arg(next, end, scope, depth + 1))
        };
        match op {
            ZERO_OP | ONE_OP | ONES_OP | BYTE_PREFIX | WORD_PREFIX | DWORD_PREFIX | QWORD_PREFIX | STRING_PREFIX
            | BUFFER_OP | PACKAGE_OP | VAR_PACKAGE_OP => Ok(self.data_object(at, end, depth)?.1),
            0x60..=0x6e => Ok(at + 1), // Local0-7, Arg0-6
            b if Self::is_name_start(b) => {
                let (name, next) = self.name_string(at)?;
                let args = self.ns.method_args(scope, &name);
                operands(usize::from(args), next)
            }
            // Store, LAnd, LOr, LEqual, LGreater, LLess, Notify.
            0x70 | 0x90 | 0x91 | 0x93 | 0x94 | 0x95 | 0x86 => operands(2, at + 1),
            // Increment, Decrement, RefOf, DerefOf, SizeOf, LNot, ObjectType, Return.
            0x75 | 0x76 | 0x71 | 0x83 | 0x87 | 0x92 | 0x8e | 0xa4 => operands(1, at + 1),
            // Add, Concat, Subtract, Multiply, ShiftLeft, ShiftRight, And, Nand,
            // Or, Nor, Xor, ConcatRes, Mod, Index: operand, operand, target.
            0x72..=0x74 | 0x77 | 0x79..=0x7f | 0x84 | 0x85 | 0x88 => operands(3, at + 1),
            // Not, FindSetLeftBit, FindSetRightBit, ToBuffer, ToDecimalString,
            // ToHexString, ToInteger: operand, target.
            0x80..=0x82 | 0x96..=0x99 => operands(2, at + 1),
            0x78 | 0x9e => operands(4, at + 1), // Divide, Mid
            0x9c => operands(3, at + 1),        // ToString
            EXT_OP_PREFIX => match self.byte(at + 1)? {
                REVISION_OP | DEBUG_OP => Ok(at + 2),
                COND_REF_OF_OP => operands(2, at + 2),
                e => Err(format!("extended opcode 5b {e:02x} at offset {at:#x} is not read")),
            },
            _ => Err(format!("opcode {op:#04x} at offset {at:#x} is not read")),
        }
    }
}

/// An EISA id (`EisaId ("PNP0A03")` compiles to a DWord) as its string.
pub fn eisa_id(value: u64) -> Option<String> {
    let v = u32::try_from(value).ok()?.swap_bytes();
    if v & 0x8000_0000 != 0 {
        return None;
    }
    let letter = |shift: u32| char::from(b'@' + ((v >> shift) & 0x1f) as u8);
    let mut s = String::new();
    s.push(letter(26));
    s.push(letter(21));
    s.push(letter(16));
    s.push_str(&format!("{:04X}", v & 0xffff));
    Some(s)
}

/// The bus range of a `_CRS` resource template as Linux's
/// `get_root_bridge_busnr_callback` takes it: the last Word (0x88), DWord
/// (0x87) or QWord (0x8a) Address Space descriptor of resource type 2
/// (bus number) with a non-zero length; `(minimum, minimum + length - 1)`.
/// Extended Address Space descriptors are not converted by
/// `acpi_resource_to_address64`, so not looked at.
pub fn crs_bus_range(crs: &[u8]) -> Option<(u64, u64)> {
    let mut found = None;
    let mut at = 0;
    while at < crs.len() {
        let tag = crs[at];
        if tag & 0x80 == 0 {
            // Small item; the End Tag (name 0xf) ends the template.
            if (tag >> 3) & 0x0f == 0x0f {
                break;
            }
            at += 1 + usize::from(tag & 7);
            continue;
        }
        let Some(len) = crs.get(at + 1..at + 3).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))) else {
            break;
        };
        let Some(item) = crs.get(at..at + 3 + len) else {
            break;
        };
        let size = match tag {
            0x88 => 2,
            0x87 => 4,
            0x8a => 8,
            _ => 0,
        };
        if size > 0 && item.len() >= 6 + 5 * size && item[3] == 2 {
            let field = |i: usize| {
                item[6 + i * size..6 + (i + 1) * size].iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b))
            };
            let (min, length) = (field(1), field(4));
            if length > 0 {
                found = Some((min, min.saturating_add(length - 1)));
            }
        }
        at += 3 + len;
    }
    found
}

/// Where a host bridge's bus number came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusSource {
    /// The bus number descriptor of a constant `_CRS`.
    Crs,
    /// A constant `_BBN` (`_CRS` absent, a method, or without a bus range).
    Bbn,
    /// Neither: bus 0, as Linux when `_BBN` is absent.
    Default,
}

impl BusSource {
    /// `_CRS`, `_BBN` or `default` (bus 0).
    pub const fn as_str(self) -> &'static str {
        match self {
            BusSource::Crs => "_CRS",
            BusSource::Bbn => "_BBN",
            BusSource::Default => "default",
        }
    }
}

/// A PCI host bridge as `acpi_pci_root_add` would see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostBridge {
    /// Full namespace path in ASL spelling, `\_SB.PCI0`.
    pub path: String,
    pub segment: u16,
    /// First bus (the root bus) and last bus of its range; `None` when a
    /// method decides it.
    pub buses: Option<(u8, u8)>,
    pub source: BusSource,
}

/// Host bridges in namespace order, with a note for everything that could
/// not be evaluated (see the module documentation).
pub fn host_bridges(ns: &Namespace) -> (Vec<HostBridge>, Vec<String>) {
    let mut bridges = Vec::new();
    let mut notes = Vec::new();
    let mut hidden: Vec<usize> = Vec::new();
    if ns.unevaluated_conditionals > 0 {
        notes.push(format!(
            "{} If block(s) at scope level with a computed predicate (not evaluated): objects declared in them are not seen",
            ns.unevaluated_conditionals
        ));
    }
    for dev in ns.devices() {
        // Below a device that is not present nothing is enumerated.
        let mut p = ns.nodes[dev].parent;
        let mut under_hidden = false;
        while p != 0 {
            if hidden.contains(&p) {
                under_hidden = true;
                break;
            }
            p = ns.nodes[p].parent;
        }
        if under_hidden {
            hidden.push(dev);
            continue;
        }
        let path = ns.path(dev);
        let ids = device_ids(ns, dev, &path, &mut notes);
        let is_root = ids.iter().any(|id| id == "PNP0A03" || id == "PNP0A08");
        let sta = match ns.object(dev, b"_STA") {
            None => STA_DEFAULT,
            Some(Kind::Name(Value::Integer(v))) => *v,
            Some(Kind::Method { .. }) => {
                if is_root {
                    notes.push(format!("{path}: _STA is a method (not evaluated); taken as present"));
                }
                STA_DEFAULT
            }
            Some(_) => {
                notes.push(format!("{path}: _STA is not an integer; taken as present"));
                STA_DEFAULT
            }
        };
        if sta & (STA_PRESENT | STA_FUNCTIONING) == 0 {
            if is_root {
                notes.push(format!("{path}: host bridge with _STA {sta:#x} (not present); not a root bus"));
            }
            hidden.push(dev);
            continue;
        }
        if !is_root {
            continue;
        }
        let segment = match ns.object(dev, b"_SEG") {
            None => 0,
            Some(Kind::Name(Value::Integer(v))) => (*v & 0xffff) as u16,
            Some(_) => {
                notes.push(format!("{path}: _SEG is not a constant integer (not evaluated); segment 0 assumed"));
                0
            }
        };
        let crs = match ns.object(dev, b"_CRS") {
            Some(Kind::Name(Value::Buffer(b))) => crs_bus_range(b),
            Some(Kind::Method { .. }) => {
                notes.push(format!("{path}: _CRS is a method (not evaluated); bus from _BBN"));
                None
            }
            _ => None,
        };
        let (buses, source) = match crs {
            Some((start, end)) => {
                let buses = bus_range(start, end);
                if buses.is_none() {
                    notes.push(format!("{path}: _CRS bus range starts at {start:#x}, not a bus number"));
                }
                (buses, BusSource::Crs)
            }
            None => match ns.object(dev, b"_BBN") {
                None => (Some((0, 0xff)), BusSource::Default),
                Some(Kind::Name(Value::Integer(v))) => {
                    let buses = bus_range(*v, 0xff);
                    if buses.is_none() {
                        notes.push(format!("{path}: _BBN {v:#x} is not a bus number"));
                    }
                    (buses, BusSource::Bbn)
                }
                Some(_) => {
                    notes.push(format!("{path}: _BBN is not a constant integer (not evaluated); its bus is unknown"));
                    (None, BusSource::Bbn)
                }
            },
        };
        bridges.push(HostBridge { path, segment, buses, source });
    }
    (bridges, notes)
}

fn bus_range(start: u64, end: u64) -> Option<(u8, u8)> {
    let start = u8::try_from(start).ok()?;
    Some((start, u8::try_from(end).unwrap_or(0xff).max(start)))
}

/// The `_HID` and `_CID` ids of a device, as strings.
fn device_ids(ns: &Namespace, dev: usize, path: &str, notes: &mut Vec<String>) -> Vec<String> {
    let mut ids = Vec::new();
    let one = |v: &Value| match v {
        Value::Integer(i) => eisa_id(*i),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    for seg in [b"_HID", b"_CID"] {
        match ns.object(dev, seg) {
            Some(Kind::Name(Value::Package(items))) => ids.extend(items.iter().filter_map(one)),
            Some(Kind::Name(v)) => ids.extend(one(v)),
            // Noted only where a host bridge is likely (a `_BBN` is
            // declared): many devices compute `_HID`.
            Some(Kind::Method { .. }) if ns.object(dev, b"_BBN").is_some() => notes.push(format!(
                "{path}: {} is a method (not evaluated); not recognised as a host bridge",
                core::str::from_utf8(seg).unwrap_or("?")
            )),
            _ => {}
        }
    }
    ids
}

#[cfg(test)]
#[path = "aml_tests.rs"]
pub(crate) mod tests;
