//! The rules folder is built into the binary (the default when the repository is not on the
//! machine): rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=rules");
}
