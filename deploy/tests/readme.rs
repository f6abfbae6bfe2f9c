//! The README's generated tables — the supported compose keys (from
//! `compose::keys`) and the error codes (from `hostkit_proto::ErrorCode`) —
//! must match the code; this test fails when they drift apart.
//! `HOSTKIT_UPDATE_DOCS=1 cargo test -p hostkit-deploy --test readme` rewrites them.

use hostkit_deploy::compose::supported_keys_markdown;
use hostkit_proto::ErrorCode;

fn error_codes_markdown() -> String {
    let mut out = String::from("| Code | Meaning | Hint |\n| --- | --- | --- |\n");
    for code in ErrorCode::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            code.as_str(),
            code.message(),
            code.hint().unwrap_or("")
        ));
    }
    out
}

/// Check (or with `HOSTKIT_UPDATE_DOCS`, rewrite) the README section between
/// `<!-- {name}:start -->` and `<!-- {name}:end -->`.
fn check_section(name: &str, generated: &str) {
    // The tests run in parallel; one README rewrite at a time.
    static README: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = README.lock().unwrap_or_else(|e| e.into_inner());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("read README.md");
    let start_marker = format!("<!-- {name}:start -->\n");
    let end_marker = format!("<!-- {name}:end -->");
    let start = readme
        .find(&start_marker)
        .unwrap_or_else(|| panic!("README has no {start_marker:?} marker"))
        + start_marker.len();
    let end = readme[start..]
        .find(&end_marker)
        .unwrap_or_else(|| panic!("README has no {end_marker:?} marker"))
        + start;
    if readme[start..end] == *generated {
        return;
    }
    if std::env::var_os("HOSTKIT_UPDATE_DOCS").is_some() {
        let updated = format!("{}{}{}", &readme[..start], generated, &readme[end..]);
        std::fs::write(path, updated).expect("write README.md");
        return;
    }
    panic!(
        "README.md's {name} table is out of date: run `HOSTKIT_UPDATE_DOCS=1 cargo test -p hostkit-deploy --test readme`"
    );
}

#[test]
fn readme_lists_the_supported_compose_keys() {
    check_section("compose-keys", &supported_keys_markdown());
}

#[test]
fn readme_lists_the_policy_rules() {
    check_section(
        "policy-rules",
        &hostkit_deploy::policy::Rule::markdown_table(),
    );
}

#[test]
fn readme_lists_the_error_codes() {
    check_section("error-codes", &error_codes_markdown());
}
