//! The README's table of supported compose keys is generated from
//! `compose::keys`; this test fails when the two drift apart.
//! `HOSTKIT_UPDATE_DOCS=1 cargo test -p hostkit-deploy --test readme` rewrites it.

use hostkit_deploy::compose::supported_keys_markdown;

const START: &str = "<!-- compose-keys:start -->\n";
const END: &str = "<!-- compose-keys:end -->";

#[test]
fn readme_lists_the_supported_compose_keys() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("read README.md");
    let start = readme
        .find(START)
        .expect("README has the compose-keys start marker")
        + START.len();
    let end = readme[start..]
        .find(END)
        .expect("README has the compose-keys end marker")
        + start;
    let table = supported_keys_markdown();
    if readme[start..end] == table {
        return;
    }
    if std::env::var_os("HOSTKIT_UPDATE_DOCS").is_some() {
        let updated = format!("{}{}{}", &readme[..start], table, &readme[end..]);
        std::fs::write(path, updated).expect("write README.md");
        return;
    }
    panic!(
        "README.md's table of supported compose keys is out of date: run `HOSTKIT_UPDATE_DOCS=1 cargo test -p hostkit-deploy --test readme`"
    );
}
