//! The rules and profiles folders are built into the binary (the default when the repository
//! is not on the machine): rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=rules");
    println!("cargo:rerun-if-changed=profiles");
}
