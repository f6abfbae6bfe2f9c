//! `hostkit admin nats-user`: the nats-server user block of a CI identity
//! confined to its own domains (DESIGN §6 "Across the fleet"). The block
//! grants that identity its domains' job, event and control subjects only,
//! plus what every CI needs (uploading image blobs, reading placement and
//! the node registry). Paste it into the `users` of the HOSTKIT account.
//!
//! In operator (JWT) mode (`--account-seed`), it prints a credentials file
//! instead: a user JWT with the same rights, signed by the account key.
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
    request: &NatsUserRequest<'_>,
) -> Result<Exit, Error> {
    let NatsUserRequest {
        domains,
        user,
        image_bucket,
        account_seed,
        account,
    } = *request;
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
    let bucket = image_bucket.map_or_else(|| names.images_bucket(), str::to_owned);
    if let Some(path) = account_seed {
        let key = account_signing_key(path)?;
        if let Some(account) = account {
            let valid =
                account.starts_with('A') && nats_jwt::KeyPair::from_public_key(account).is_ok();
            if !valid {
                return Err(Error::usage(format!(
                    "--account: {account:?} is not an account public key (56 characters starting with `A`)"
                )));
            }
        }
        out.line(user_creds(names, &parsed, user, &bucket, &key, account));
        return Ok(Exit::Success);
    }
    out.line(user_block(names, &parsed, user, &bucket));
    if bucket != names.images_bucket() {
        out.line(private_bucket_setup(&bucket, domains));
    }
    Ok(Exit::Success)
}

/// What `hostkit admin nats-user` was asked for.
#[derive(Debug, Clone, Copy)]
pub struct NatsUserRequest<'a> {
    /// `--domain`s.
    pub domains: &'a [String],
    /// `--user`.
    pub user: Option<&'a str>,
    /// `--image-bucket`.
    pub image_bucket: Option<&'a str>,
    /// `--account-seed`: operator mode, print creds.
    pub account_seed: Option<&'a std::path::Path>,
    /// `--account`: the account's public key when the seed is one of its
    /// signing keys.
    pub account: Option<&'a str>,
}

/// The account key (or account signing key) in `path`: one line, `SA…`.
fn account_signing_key(path: &std::path::Path) -> Result<nats_jwt::KeyPair, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!("--account-seed: cannot read {}", path.display())).with_source(e)
    })?;
    let seed = text.trim();
    if !seed.starts_with("SA") {
        return Err(Error::usage(format!(
            "--account-seed: {} does not hold an account seed (one line starting with `SA`)",
            path.display()
        )));
    }
    nats_jwt::KeyPair::from_seed(seed).map_err(|_| {
        Error::usage(format!(
            "--account-seed: {} holds a seed that does not decode",
            path.display()
        ))
    })
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

/// What the workers need for a tenant's private image bucket: the lines of
/// every `worker-<node>` block and the worker.toml entry.
pub fn private_bucket_setup(bucket: &str, domains: &[String]) -> String {
    let lines: String = worker_image_rights(bucket)
        .iter()
        .map(|l| format!("#   {l}\n"))
        .collect();
    let quoted: Vec<String> = domains.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "\n# Add to the publish allow list of every worker-<node> block, so that the\n\
         # workers create, read and clean up {bucket}:\n{lines}\n\
         # And to [security] of every worker's worker.toml:\n\
         # [[security.image_buckets]]\n\
         # bucket = \"{bucket}\"\n\
         # domains = [{}]",
        quoted.join(", ")
    )
}

/// A worker's rights on an image bucket: create or check it, read blobs
/// (direct get, an ephemeral push consumer with flow control), delete a
/// blob that does not hash to its name (metadata, purge of its chunks).
pub fn worker_image_rights(bucket: &str) -> Vec<String> {
    [
        format!("$JS.API.STREAM.INFO.OBJ_{bucket}"),
        format!("$JS.API.STREAM.CREATE.OBJ_{bucket}"),
        format!("$JS.API.DIRECT.GET.OBJ_{bucket}.>"),
        format!("$JS.API.STREAM.MSG.GET.OBJ_{bucket}"),
        format!("$JS.API.CONSUMER.CREATE.OBJ_{bucket}"),
        format!("$JS.API.CONSUMER.CREATE.OBJ_{bucket}.>"),
        format!("$JS.API.CONSUMER.DELETE.OBJ_{bucket}.>"),
        format!("$JS.FC.OBJ_{bucket}.>"),
        format!("$O.{bucket}.M.>"),
        format!("$JS.API.STREAM.PURGE.OBJ_{bucket}"),
    ]
    .map(|s| format!("\"{s}\""))
    .to_vec()
}

/// A CI identity's rights: publish and subscribe allow lists, each line a
/// quoted subject or a `#` comment (nats-server config syntax).
struct Grants {
    publish: Vec<String>,
    subscribe: Vec<String>,
}

impl Grants {
    /// The subjects alone, unquoted (for a user JWT).
    fn subjects(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix('"').and_then(|l| l.strip_suffix('"')))
            .map(str::to_owned)
            .collect()
    }
}

/// The user name of a CI identity: given, or `ci-<first domain>`.
fn user_name(domains: &[Domain], user: Option<&str>) -> String {
    user.map_or_else(
        || format!("ci-{}", domains[0].token().replace('_', "-")),
        str::to_owned,
    )
}

/// The user block (nats-server config syntax); `images` is the bucket the
/// identity uploads to (the shared one, or its private one).
pub fn user_block(names: &Names, domains: &[Domain], user: Option<&str>, images: &str) -> String {
    let user = user_name(domains, user);
    let variable = format!(
        "HOSTKIT_{}_PASSWORD",
        user.to_ascii_uppercase().replace(['-', '.'], "_")
    );
    let shared = images == names.images_bucket();
    let list: Vec<String> = domains.iter().map(ToString::to_string).collect();
    let Grants { publish, subscribe } = grants(names, domains, images);
    let indent = |lines: &[String]| {
        lines
            .iter()
            .map(|l| format!("              {l}\n"))
            .collect::<String>()
    };
    format!(
        "      # CI of {domains}: made by `hostkit admin nats-user --domain {flags}{bucket_flag}`\n\
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
        bucket_flag = if shared {
            String::new()
        } else {
            format!(" --image-bucket {images}")
        },
        publish = indent(&publish),
        subscribe = indent(&subscribe),
    )
}

/// Operator (JWT) mode: a NATS credentials file for a new user with the
/// rights of [`user_block`], its JWT signed by `account_key` (the
/// account's key, or one of its signing keys; then `account` names the
/// account's public key). The user's seed is made here and printed only
/// in the file.
pub fn user_creds(
    names: &Names,
    domains: &[Domain],
    user: Option<&str>,
    images: &str,
    account_key: &nats_jwt::KeyPair,
    account: Option<&str>,
) -> String {
    let user_key = nats_jwt::KeyPair::new_user();
    let issuer_account = account.map_or_else(|| account_key.public_key(), str::to_owned);
    let Grants { publish, subscribe } = grants(names, domains, images);
    let mut token = nats_jwt::Token::new_user(issuer_account, user_key.public_key())
        .name(user_name(domains, user));
    for subject in Grants::subjects(&publish) {
        token = token.allow_publish(subject);
    }
    for subject in Grants::subjects(&subscribe) {
        token = token.allow_subscribe(subject);
    }
    let jwt = token.sign(account_key);
    // A new key's seed always encodes.
    let seed = user_key.seed().unwrap_or_default();
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// The rights of a CI identity for `domains`, uploading to `images`.
fn grants(names: &Names, domains: &[Domain], images: &str) -> Grants {
    let root = names.root();
    let (jobs, events) = (names.jobs_stream(), names.events_stream());
    let (placement, nodes) = (names.placement_bucket(), names.nodes_bucket());
    let shared = images == names.images_bucket();
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
        publish.push(format!("# which node hosts {domain}"));
        publish.push(format!(
            "\"$JS.API.DIRECT.GET.KV_{placement}.$KV.{placement}.{token}.*\""
        ));
        publish.push(format!(
            "\"$JS.API.DIRECT.GET.KV_{placement}.$KV.{placement}.{token}\""
        ));
        subscribe.push(format!("\"{root}.events.{token}.>\""));
    }
    publish.extend(
        [
            if shared {
                "# image upload: object chunks and metadata (blobs are verified by the worker)"
            } else {
                "# image upload to its own bucket: object chunks and metadata"
            },
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
    Grants { publish, subscribe }
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
        let block = user_block(&Names::default(), &domains, None, "hostkit_images");
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
        let names = Names::default();
        let bucket = "hostkit_images_example_com";
        let block = user_block(&names, &["example.com".parse().unwrap()], None, bucket);
        assert!(
            shipped.contains(&block),
            "dist/nats-server.conf must hold the output of `hostkit admin nats-user --domain example.com --image-bucket {bucket}`:\n{block}"
        );
        // Every worker block grants what the workers need on the shared
        // bucket and on the example's private one.
        let workers: Vec<&str> = shipped.split("user: worker-").skip(1).collect();
        assert_eq!(workers.len(), 2, "two worker blocks");
        for worker in workers {
            let block = worker.split("allow_responses").next().unwrap();
            for right in worker_image_rights(bucket)
                .into_iter()
                .chain(worker_image_rights(&names.images_bucket()))
            {
                assert!(block.contains(&right), "a worker block lacks {right}");
            }
        }
    }

    #[test]
    fn a_private_bucket_replaces_the_shared_one_in_the_block() {
        let names = Names::default();
        let block = user_block(
            &names,
            &["example.com".parse().unwrap()],
            None,
            "hostkit_images_acme",
        );
        assert!(block.contains("\"$O.hostkit_images_acme.C.>\""), "{block}");
        assert!(
            block.contains("\"$JS.API.STREAM.PURGE.OBJ_hostkit_images_acme\""),
            "{block}"
        );
        assert!(!block.contains("$O.hostkit_images."), "{block}");
        assert!(!block.contains("OBJ_hostkit_images\""), "{block}");
        assert!(!block.contains("OBJ_hostkit_images."), "{block}");
    }
}
