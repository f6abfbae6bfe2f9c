//! `example-images <dir>`: writes the example stack's image tarballs (as
//! `docker save` would) without any registry: `stack-v1.tar` (web v1, api,
//! db) and `web-v2.tar` (web v2). Used by `scripts/demo.sh`.

use std::path::PathBuf;

use anyhow::Context;
use hostkit_tests::{TarballBuilder, fixtures};

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/example-images".into()),
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let v1 = dir.join("stack-v1.tar");
    TarballBuilder::new()
        .image(fixtures::web("v1").retag("hostkit-example/web:v1"))
        .image(fixtures::api("v1").retag("hostkit-example/api:v1"))
        .image(fixtures::db().retag("hostkit-example/db:v1"))
        .write_to(&v1)
        .with_context(|| format!("write {}", v1.display()))?;
    let v2 = dir.join("web-v2.tar");
    TarballBuilder::new()
        .image(fixtures::web("v2").retag("hostkit-example/web:v2"))
        .write_to(&v2)
        .with_context(|| format!("write {}", v2.display()))?;
    println!("{}\n{}", v1.display(), v2.display());
    Ok(())
}
