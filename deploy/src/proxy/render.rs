//! A domain's nginx file, rendered: the upstream of the main service's
//! replicas, the domain's server blocks and its redirect domains' (301 to
//! the domain, as HostKit v1 does), the ACME challenge location on every
//! plain-HTTP block, TLS when a certificate exists, and the reload probe.
//! The file's first lines carry what it was rendered from ([`Site`]), so
//! it can be rendered again when only its certificate changed.

use serde::{Deserialize, Serialize};

use hostkit_proto::Domain;

use super::certs::CertFiles;
use super::{PROBE_PATH, ProxyConfig};

/// What a domain's file routes: the main service's replicas (`host:port`)
/// and the names redirected to the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// `host:port` of each replica.
    pub upstreams: Vec<String>,
    /// Names answered with a 301 to the domain.
    #[serde(default)]
    pub redirects: Vec<Domain>,
}

/// Marks the line holding the [`Site`] a file was rendered from.
const SITE_MARKER: &str = "# hostkit-site: ";

impl Site {
    /// The site a rendered file routes: its `# hostkit-site:` line, or for
    /// a file HostKit wrote before that line existed, its upstream's
    /// `server … max_fails=` lines (such files had no redirect domains).
    /// `None` for anything else (a file written by hand).
    pub fn of_file(text: &str) -> Option<Site> {
        if let Some(json) = text.lines().find_map(|l| l.strip_prefix(SITE_MARKER)) {
            return serde_json::from_str(json).ok();
        }
        if !text.starts_with("# Managed by HostKit") {
            return None;
        }
        let upstreams: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("server "))
            .filter(|rest| rest.contains(" max_fails="))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        (!upstreams.is_empty()).then_some(Site {
            upstreams,
            redirects: Vec::new(),
        })
    }
}

/// A short id of the rendered file without its probe line.
pub(super) fn config_id(rendered: &str) -> String {
    use sha2::{Digest, Sha256};
    let body: Vec<&str> = rendered
        .lines()
        .filter(|l| !l.contains(PROBE_PATH))
        .collect();
    hex::encode(&Sha256::digest(body.join("\n").as_bytes())[..8])
}

/// The domain's whole file, probe included.
pub(super) fn render(
    config: &ProxyConfig,
    domain: &Domain,
    site: &Site,
    certs: Option<&CertFiles>,
) -> String {
    let body = blocks(config, domain, site, certs, "");
    let probe = format!(
        "    location = {PROBE_PATH} {{ access_log off; default_type text/plain; return 200 \"{}\"; }}\n",
        config_id(&body)
    );
    blocks(config, domain, site, certs, &probe)
}

fn blocks(
    config: &ProxyConfig,
    domain: &Domain,
    site: &Site,
    certs: Option<&CertFiles>,
    probe: &str,
) -> String {
    let upstream = format!("hostkit_{}", domain.token());
    let site_line = serde_json::to_string(site).unwrap_or_default();
    let mut out = format!(
        "# Managed by HostKit for {domain}: rewritten on every deploy, do not edit.\n{SITE_MARKER}{site_line}\n"
    );
    out.push_str(&format!("upstream {upstream} {{\n"));
    for server in &site.upstreams {
        out.push_str(&format!(
            "    server {server} max_fails=1 fail_timeout=2s;\n"
        ));
    }
    out.push_str("    keepalive 16;\n}\n");

    let acme = match &config.acme_webroot {
        Some(root) => format!(
            "    location ^~ /.well-known/acme-challenge/ {{ root {}; default_type text/plain; try_files $uri =404; }}\n",
            root.display()
        ),
        None => String::new(),
    };
    let proxy = format!(
        "    location / {{\n\
         \x20       proxy_pass http://{upstream};\n\
         \x20       proxy_http_version 1.1;\n\
         \x20       proxy_set_header Connection \"\";\n\
         \x20       proxy_set_header Host $host;\n\
         \x20       proxy_set_header X-Real-IP $remote_addr;\n\
         \x20       proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20       proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20       proxy_next_upstream error timeout http_502 http_503;\n\
         \x20   }}\n"
    );
    let scheme = if certs.is_some() { "https" } else { "http" };
    let to_domain = format!("    location / {{ return 301 {scheme}://{domain}$request_uri; }}\n");
    let server = |listen: &str, names: &str, body: &str| {
        format!("\nserver {{\n    listen {listen};\n    server_name {names};\n{body}}}\n")
    };
    let tls = |cert: &CertFiles| {
        format!(
            "    ssl_certificate {};\n    ssl_certificate_key {};\n",
            cert.cert.display(),
            cert.key.display()
        )
    };

    // The domain on plain HTTP: the probe and the ACME location always;
    // the site itself, or a redirect to it once TLS is there.
    let main_http = match certs {
        None => format!("{probe}{acme}{proxy}"),
        Some(_) => format!("{probe}{acme}{to_domain}"),
    };
    out.push_str(&server(&config.listen, domain.as_str(), &main_http));
    if let Some(cert) = certs {
        out.push_str(&server(
            &config.listen_tls,
            domain.as_str(),
            &format!("{}{proxy}", tls(cert)),
        ));
    }
    if !site.redirects.is_empty() {
        let names = site
            .redirects
            .iter()
            .map(Domain::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&server(
            &config.listen,
            &names,
            &format!("{acme}{to_domain}"),
        ));
        if let Some(cert) = certs {
            out.push_str(&server(
                &config.listen_tls,
                &names,
                &format!("{}{to_domain}", tls(cert)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn domain() -> Domain {
        "example.com".parse().expect("valid domain")
    }

    fn site(upstreams: &[&str], redirects: &[&str]) -> Site {
        Site {
            upstreams: upstreams.iter().map(|s| s.to_string()).collect(),
            redirects: redirects.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn certs() -> CertFiles {
        CertFiles {
            cert: PathBuf::from("/c/fullchain.pem"),
            key: PathBuf::from("/c/privkey.pem"),
        }
    }

    fn acme_config() -> ProxyConfig {
        ProxyConfig {
            acme_webroot: Some(PathBuf::from("/run/hostkit-acme")),
            ..ProxyConfig::default()
        }
    }

    /// The server block whose `server_name` line is `names` and whose
    /// `listen` line contains `listen`.
    fn block<'a>(text: &'a str, listen: &str, names: &str) -> &'a str {
        text.split("\nserver {\n")
            .skip(1)
            .find(|b| {
                b.contains(&format!("    server_name {names};\n"))
                    && b.lines().next().is_some_and(|l| l.contains(listen))
            })
            .unwrap_or_else(|| panic!("no block for {names} on {listen}:\n{text}"))
    }

    #[test]
    fn renders_one_upstream_per_replica() {
        let config = ProxyConfig::default();
        let text = render(
            &config,
            &domain(),
            &site(&["127.0.0.1:20000", "127.0.0.1:20001"], &[]),
            None,
        );
        assert!(text.contains("upstream hostkit_example_com {"), "{text}");
        assert!(
            text.contains("server 127.0.0.1:20000 max_fails=1"),
            "{text}"
        );
        assert!(
            text.contains("server 127.0.0.1:20001 max_fails=1"),
            "{text}"
        );
        assert!(text.contains("server_name example.com;"), "{text}");
        assert!(text.contains("listen 80;"), "{text}");
        assert!(!text.contains("ssl_certificate"), "{text}");
        assert!(
            !text.contains("acme-challenge"),
            "no webroot, no location: {text}"
        );
        let id = config_id(&text);
        assert!(text.contains(&format!("location = {PROBE_PATH} {{ access_log off; default_type text/plain; return 200 \"{id}\"; }}")), "{text}");
    }

    #[test]
    fn the_file_says_what_it_routes() {
        let s = site(&["127.0.0.1:20000"], &["www.example.com"]);
        let text = render(&ProxyConfig::default(), &domain(), &s, None);
        assert_eq!(Site::of_file(&text), Some(s));
        assert_eq!(Site::of_file("upstream x { server a; }"), None);
        // A file from before the site line.
        let old = "# Managed by HostKit for example.com: rewritten on every deploy, do not edit.\n\
                   upstream hostkit_example_com {\n    server 127.0.0.1:20000 max_fails=1 fail_timeout=2s;\n\
                   \x20   server 127.0.0.1:20001 max_fails=1 fail_timeout=2s;\n    keepalive 16;\n}\n\n\
                   server {\n    listen 80;\n    server_name example.com;\n}\n";
        assert_eq!(
            Site::of_file(old),
            Some(site(&["127.0.0.1:20000", "127.0.0.1:20001"], &[]))
        );
    }

    #[test]
    fn without_a_certificate_redirect_domains_go_to_http_and_acme_is_served_everywhere() {
        let text = render(
            &acme_config(),
            &domain(),
            &site(&["127.0.0.1:20000"], &["www.example.com", "example.net"]),
            None,
        );
        let acme = "location ^~ /.well-known/acme-challenge/ { root /run/hostkit-acme;";
        let main = block(&text, "80", "example.com");
        assert!(main.contains(acme), "{main}");
        assert!(
            main.contains("proxy_pass http://hostkit_example_com;"),
            "{main}"
        );
        assert!(main.contains(PROBE_PATH), "{main}");
        let redirects = block(&text, "80", "www.example.com example.net");
        assert!(redirects.contains(acme), "{redirects}");
        assert!(
            redirects.contains("return 301 http://example.com$request_uri;"),
            "{redirects}"
        );
        assert!(!redirects.contains(PROBE_PATH), "{redirects}");
        assert!(!text.contains("ssl"), "{text}");
    }

    #[test]
    fn with_a_certificate_http_redirects_to_https_but_keeps_acme() {
        let text = render(
            &acme_config(),
            &domain(),
            &site(&["127.0.0.1:20000"], &["www.example.com"]),
            Some(&certs()),
        );
        let acme = "location ^~ /.well-known/acme-challenge/";
        let main_http = block(&text, "80", "example.com");
        assert!(main_http.contains(acme), "{main_http}");
        assert!(main_http.contains(PROBE_PATH), "{main_http}");
        assert!(
            main_http.contains("return 301 https://example.com$request_uri;"),
            "{main_http}"
        );
        assert!(!main_http.contains("proxy_pass"), "{main_http}");
        let main_tls = block(&text, "443 ssl", "example.com");
        assert!(
            main_tls.contains("ssl_certificate /c/fullchain.pem;"),
            "{main_tls}"
        );
        assert!(
            main_tls.contains("ssl_certificate_key /c/privkey.pem;"),
            "{main_tls}"
        );
        assert!(
            main_tls.contains("proxy_pass http://hostkit_example_com;"),
            "{main_tls}"
        );
        let redirect_http = block(&text, "80", "www.example.com");
        assert!(redirect_http.contains(acme), "{redirect_http}");
        assert!(
            redirect_http.contains("return 301 https://example.com$request_uri;"),
            "{redirect_http}"
        );
        let redirect_tls = block(&text, "443 ssl", "www.example.com");
        assert!(
            redirect_tls.contains("ssl_certificate /c/fullchain.pem;"),
            "{redirect_tls}"
        );
        assert!(
            redirect_tls.contains("return 301 https://example.com$request_uri;"),
            "{redirect_tls}"
        );
    }
}
