//! Link the kernel with its own script: loaded at 1 MiB, a PVH ELF note in a
//! PT_NOTE segment, and a stack with a guard page below it.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rerun-if-changed=linker.ld");
}
