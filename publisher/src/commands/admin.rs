//! `hostkit admin nats-user`: the nats-server user block of a CI identity
//! confined to its own domains (DESIGN §6 "Across the fleet"). The block
//! grants that identity its domains' job, event and control subjects only,
//! plus what every CI needs (uploading image blobs, reading placement and
//! the node registry). Paste it into the `users` of the HOSTKIT account.
//!
//! NATS subjects carry a domain as one token (`example_com`), so a pattern
//! like `*.example.com` cannot be expressed: list each domain. (Signed jobs,
//! the second layer, take such patterns: `[[security.job_keys]]`.)

use hostkit_proto::{Domain, Names};

use crate::error::{Error, Exit};
use crate::render::Output;

/// Prints the user block for `domains`.
pub fn nats_user(
    out: &Output,
    names: &Names,
    domains: &[String],
    user: Option<&str>,
) -> Result<Exit, Error> {
    let mut parsed = Vec::new();
    for domain in domains {
        if domain.contains('*') {
            return Err(Error::usage(format!(
                "--domain {domain}: NATS subjects hold a domain as one token, so a wildcard cannot be confined by subject; list each domain (job keys in worker.toml do take `*.example.com`)"
            )));
        }
        parsed.push(
            domain
                .parse::<Domain>()
                .map_err(|e| Error::usage(format!("--domain {domain}: {e}")))?,
        );
    }
    if parsed.is_empty() {
        return Err(Error::usage("name at least one --domain"));
    }
    out.line(user_block(names, &parsed, user));
    Ok(Exit::Success)
}

/// Prints a new signing key's seed and its `[[security.job_keys]]` entry.
pub fn job_key(out: &Output, domains: &[String]) -> Result<Exit, Error> {
    let mut patterns = Vec::new();
    for domain in domains {
        let pattern = domain
            .parse::<hostkit_proto::name::DomainPattern>()
            .map_err(|e| Error::usage(format!("--domain {domain}: {e}")))?;
        patterns.push(format!("\"{pattern}\""));
    }
    let key = hostkit_proto::sign::KeyPair::new_user();
    let seed = key
        .seed()
        .map_err(|e| Error::failed(format!("cannot make a key: {e}")))?;
    out.line(format!(
        "# The CI's secret HOSTKIT_SIGNING_KEY (keep it out of logs):\n{seed}\n\n\
         # For [security] of every worker's worker.toml:\n\
         [[security.job_keys]]\nkey = \"{}\"\ndomains = [{}]",
        key.public_key(),
        patterns.join(", ")
    ));
    Ok(Exit::Success)
}

/// The user block (nats-server config syntax).
pub fn user_block(names: &Names, domains: &[Domain], user: Option<&str>) -> String {
    let root = names.root();
    let user = user.map_or_else(
        || format!("ci-{}", domains[0].token().replace('_', "-")),
        str::to_owned,
    );
    let variable = format!(
        "HOSTKIT_{}_PASSWORD",
        user.to_ascii_uppercase().replace(['-', '.'], "_")
    );
    let (jobs, events) = (names.jobs_stream(), names.events_stream());
    let (images, placement, nodes) = (
        names.images_bucket(),
        names.placement_bucket(),
        names.nodes_bucket(),
    );
    let list: Vec<String> = domains.iter().map(ToString::to_string).collect();
    let mut publish = vec![format!(
        "# jobs and control requests of {} only",
        list.join(", ")
    )];
    let mut subscribe = vec!["\"_INBOX.>\"".to_owned()];
    for domain in domains {
        let token = domain.token();
        publish.push(format!("\"{root}.jobs.*.{token}\""));
        publish.push(format!("\"{root}.ctl.*.*.{token}\""));
        publish.push(format!(
            "# event history of {domain}: replay with its own filter"
        ));
        publish.push(format!(
            "\"$JS.API.CONSUMER.CREATE.{events}.*.{root}.events.{token}.>\""
        ));
        publish.push(format!(
            "\"$JS.API.DIRECT.GET.KV_{placement}.$KV.{placement}.{token}\""
        ));
        subscribe.push(format!("\"{root}.events.{token}.>\""));
    }
    publish.extend(
        [
            "# image upload: object chunks and metadata (blobs are verified by the worker)",
            &format!("\"$O.{images}.C.>\""),
            &format!("\"$O.{images}.M.>\""),
            "# JetStream API: account and stream info",
            "\"$JS.API.INFO\"",
            &format!("\"$JS.API.STREAM.INFO.{jobs}\""),
            &format!("\"$JS.API.STREAM.INFO.{events}\""),
            &format!("\"$JS.API.STREAM.INFO.OBJ_{images}\""),
            &format!("\"$JS.API.STREAM.INFO.KV_{placement}\""),
            &format!("\"$JS.API.STREAM.INFO.KV_{nodes}\""),
            "# image objects: is it there already, replace old chunks",
            &format!("\"$JS.API.DIRECT.GET.OBJ_{images}.>\""),
            &format!("\"$JS.API.STREAM.MSG.GET.OBJ_{images}\""),
            &format!("\"$JS.API.STREAM.PURGE.OBJ_{images}\""),
            "# node registry: read",
            &format!("\"$JS.API.DIRECT.GET.KV_{nodes}.>\""),
            &format!("\"$JS.API.CONSUMER.CREATE.KV_{nodes}\""),
            &format!("\"$JS.API.CONSUMER.CREATE.KV_{nodes}.>\""),
            &format!("\"$JS.FC.KV_{nodes}.>\""),
            "# its event consumers: info, pull, flow control, delete (an ordered one is replaced after a gap)",
            &format!("\"$JS.API.CONSUMER.INFO.{events}.>\""),
            &format!("\"$JS.API.CONSUMER.DELETE.{events}.>\""),
            &format!("\"$JS.API.CONSUMER.MSG.NEXT.{events}.>\""),
            &format!("\"$JS.FC.{events}.>\""),
        ]
        .map(str::to_owned),
    );
    let indent = |lines: &[String]| {
        lines
            .iter()
            .map(|l| format!("              {l}\n"))
            .collect::<String>()
    };
    format!(
        "      # CI of {domains}: made by `hostkit admin nats-user --domain {flags}`\n\
         \x20     {{\n\
         \x20       user: {user}\n\
         \x20       password: ${variable}\n\
         \x20       permissions: {{\n\
         \x20         publish: {{\n\
         \x20           allow: [\n{publish}\
         \x20           ]\n\
         \x20         }}\n\
         \x20         subscribe: {{\n\
         \x20           allow: [\n{subscribe}\
         \x20           ]\n\
         \x20         }}\n\
         \x20       }}\n\
         \x20     }}",
        domains = list.join(", "),
        flags = list.join(" --domain "),
        publish = indent(&publish),
        subscribe = indent(&subscribe),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_names_only_its_domains_subjects() {
        let domains: Vec<Domain> = vec![
            "example.com".parse().unwrap(),
            "shop.example.com".parse().unwrap(),
        ];
        let block = user_block(&Names::default(), &domains, None);
        assert!(block.contains("user: ci-example-com"), "{block}");
        assert!(block.contains("password: $HOSTKIT_CI_EXAMPLE_COM_PASSWORD"));
        for needle in [
            "\"hostkit.jobs.*.example_com\"",
            "\"hostkit.jobs.*.shop_example_com\"",
            "\"hostkit.ctl.*.*.example_com\"",
            "\"hostkit.events.shop_example_com.>\"",
            "\"$JS.API.CONSUMER.CREATE.HOSTKIT_EVENTS.*.hostkit.events.example_com.>\"",
        ] {
            assert!(block.contains(needle), "{needle} missing:\n{block}");
        }
        for wide in [
            "\"hostkit.jobs.>\"",
            "\"hostkit.events.>\"",
            "\"hostkit.ctl.*.*\"\n",
        ] {
            assert!(
                !block.contains(wide),
                "{wide} grants every domain:\n{block}"
            );
        }
    }

    #[test]
    fn the_shipped_example_is_what_the_command_prints() {
        let shipped = include_str!("../../../dist/nats-server.conf");
        let block = user_block(&Names::default(), &["example.com".parse().unwrap()], None);
        assert!(
            shipped.contains(&block),
            "dist/nats-server.conf must hold the output of `hostkit admin nats-user --domain example.com`:\n{block}"
        );
    }
}
