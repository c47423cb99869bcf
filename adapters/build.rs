//! Rebuilds the crate when a file is added to (or removed from) `templates/` or `migrations/`:
//! `rust-embed` and `embed_migrations!` only track the files they embedded, so without this a
//! new template or migration would be missing from the binary until an unrelated change.

fn main() {
    println!("cargo:rerun-if-changed=../templates");
    println!("cargo:rerun-if-changed=../migrations");
}
