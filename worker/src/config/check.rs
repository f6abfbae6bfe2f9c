//! `hostkit-worker check-config`: load and validate a configuration, print
//! what it resolved to (secrets redacted), and answer with an exit code:
//! 0 valid, [`EX_USAGE`](super::EX_USAGE) (64) invalid, naming the key,
//! [`EX_NOINPUT`](super::EX_NOINPUT) (66) unreadable.

use std::io::Write;
use std::path::Path;

use super::{Config, Overrides};

/// Checks the configuration at `path` with `overrides`; writes the resolved
/// configuration to `out` or the error to `err`; returns the exit code.
pub fn check_config(
    path: &Path,
    overrides: &Overrides,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match Config::load(path, overrides) {
        Ok(config) => {
            // A closed stdout is not a configuration problem.
            let _ = out.write_all(describe(&config, overrides).as_bytes());
            0
        }
        Err(e) => {
            let _ = writeln!(err, "hostkit-worker: invalid configuration: {}", chain(&e));
            e.exit_code()
        }
    }
}

/// The error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A header of TOML comments (where it came from, what follows from it)
/// and the resolved configuration as TOML.
pub fn describe(config: &Config, overrides: &Overrides) -> String {
    let mut out = String::new();
    let from = config
        .source
        .as_ref()
        .map_or_else(|| "(text)".to_owned(), |p| p.display().to_string());
    out.push_str(&format!("# {from}: valid\n"));
    for (key, source) in overrides.sources() {
        out.push_str(&format!("# `{key}` set by {source}\n"));
    }
    let names = &config.names;
    out.push_str(&format!(
        "# jobs: consumer {} on stream {}, filter {}\n",
        names.jobs_consumer(&config.node),
        names.jobs_stream(),
        names.jobs_filter(&config.node)
    ));
    out.push_str(&format!(
        "# control: {}; inbox: {}.>\n",
        names.ctl_filter(&config.node),
        config.nats.inbox_prefix
    ));
    out.push_str(&format!(
        "# database: {}\n",
        config.database_path().display()
    ));
    out.push_str(&format!(
        "# ports: {}-{}, room for {} domains of {} ports\n",
        config.ports.start,
        config.ports.end,
        config.ports.blocks(),
        config.ports.block_len
    ));
    out.push_str(&format!(
        "# job signatures: {}\n",
        if config.security.signing_required() {
            format!(
                "required ({} trusted key(s))",
                config.security.trusted_job_keys.len()
            )
        } else {
            "not required".to_owned()
        }
    ));
    if config.proxy.is_none() {
        out.push_str("# proxy: off (no nginx)\n");
    }
    out.push('\n');
    out.push_str(&config.render_redacted());
    out
}
