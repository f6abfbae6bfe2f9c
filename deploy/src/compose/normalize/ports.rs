//! `ports:` (short `[ip:][host:]container[/proto]`, ranges, long form) and
//! `expose:`.

use super::value::{expected, fields, items, string};
use crate::compose::error::ComposeError;
use crate::compose::keys::Scope;
use crate::compose::model::{PortMapping, PortMode, Protocol};
use crate::compose::path::KeyPath;
use serde_yaml::Value;
use std::net::IpAddr;

/// Largest port range accepted in one entry.
pub const MAX_RANGE: u32 = 1024;

type Range = (u16, u16);

/// Parses a `ports:` list.
pub fn ports(value: &Value, path: &KeyPath) -> Result<Vec<PortMapping>, ComposeError> {
    let mut out = Vec::new();
    for (item, p) in items(value, path)? {
        match item {
            Value::Mapping(_) => out.extend(long(item, &p)?),
            Value::Number(_) | Value::String(_) => out.extend(short(&string(item, &p)?, &p)?),
            _ => return Err(expected("a port string or mapping", item, &p)),
        }
    }
    Ok(out)
}

fn protocol(text: &str, path: &KeyPath) -> Result<Protocol, ComposeError> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        _ => Err(ComposeError::invalid(
            path,
            format!("unknown protocol `{text}` (tcp, udp, sctp)"),
        )),
    }
}

fn port_number(text: &str, path: &KeyPath) -> Result<u16, ComposeError> {
    match text.trim().parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ComposeError::invalid(
            path,
            format!("invalid port `{text}` (1-65535)"),
        )),
    }
}

fn range(text: &str, path: &KeyPath) -> Result<Range, ComposeError> {
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (port_number(a, path)?, port_number(b, path)?),
        None => {
            let n = port_number(text, path)?;
            (n, n)
        }
    };
    if end < start {
        return Err(ComposeError::invalid(
            path,
            format!("invalid port range `{text}`"),
        ));
    }
    if u32::from(end - start) >= MAX_RANGE {
        return Err(ComposeError::invalid(
            path,
            format!("port range `{text}` is longer than {MAX_RANGE}"),
        ));
    }
    Ok((start, end))
}

fn host_ip(text: &str, path: &KeyPath) -> Result<Option<IpAddr>, ComposeError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse()
        .map(Some)
        .map_err(|_| ComposeError::invalid(path, format!("invalid host IP `{text}`")))
}

/// Expands target and published ranges into single mappings.
fn expand(
    target: Range,
    published: Option<Range>,
    host_ip: Option<IpAddr>,
    protocol: Protocol,
    mode: PortMode,
    path: &KeyPath,
) -> Result<Vec<PortMapping>, ComposeError> {
    let count = target.1 - target.0;
    let published_for = |i: u16| -> Result<Option<u16>, ComposeError> {
        match published {
            None => Ok(None),
            Some((a, b)) if b - a == count => Ok(Some(a + i)),
            // One target, a range of host ports: any port of the range.
            Some((a, b)) if count == 0 => Ok((a == b).then_some(a)),
            Some(_) => Err(ComposeError::invalid(
                path,
                "host and container port ranges differ in length",
            )),
        }
    };
    (0..=count)
        .map(|i| {
            Ok(PortMapping {
                target: target.0 + i,
                published: published_for(i)?,
                host_ip,
                protocol,
                mode,
            })
        })
        .collect()
}

fn short(spec: &str, path: &KeyPath) -> Result<Vec<PortMapping>, ComposeError> {
    let spec = spec.trim();
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, protocol(proto, path)?),
        None => (spec, Protocol::Tcp),
    };
    let mut parts = rest.rsplitn(3, ':');
    let target = range(parts.next().unwrap_or_default(), path)?;
    let published = match parts.next() {
        Some(p) if !p.trim().is_empty() => Some(range(p, path)?),
        _ => None,
    };
    let ip = match parts.next() {
        Some(ip) => host_ip(ip, path)?,
        None => None,
    };
    expand(target, published, ip, proto, PortMode::Ingress, path)
}

fn long(value: &Value, path: &KeyPath) -> Result<Vec<PortMapping>, ComposeError> {
    let mut target = None;
    let mut published = None;
    let mut ip = None;
    let mut proto = Protocol::Tcp;
    let mut mode = PortMode::Ingress;
    for (key, v, p) in fields(value, Scope::Port, path)? {
        match key.as_str() {
            "target" => target = Some(range(&string(v, &p)?, &p)?),
            "published" => {
                let text = string(v, &p)?;
                if !text.trim().is_empty() {
                    published = Some(range(&text, &p)?);
                }
            }
            "host_ip" => ip = host_ip(&string(v, &p)?, &p)?,
            "protocol" => proto = protocol(&string(v, &p)?, &p)?,
            "mode" => {
                mode = match string(v, &p)?.as_str() {
                    "ingress" => PortMode::Ingress,
                    "host" => PortMode::Host,
                    other => {
                        return Err(ComposeError::invalid(
                            &p,
                            format!("unknown mode `{other}` (ingress, host)"),
                        ));
                    }
                }
            }
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    let target = target.ok_or_else(|| ComposeError::invalid(path, "a port needs `target`"))?;
    if target.0 != target.1 {
        return Err(ComposeError::invalid(
            &path.key("target"),
            "`target` must be a single port",
        ));
    }
    expand(target, published, ip, proto, mode, path)
}

/// Parses and validates an `expose:` list (`3000`, `8000-8010`, `53/udp`).
pub fn expose(value: &Value, path: &KeyPath) -> Result<Vec<String>, ComposeError> {
    items(value, path)?
        .into_iter()
        .map(|(v, p)| {
            let text = string(v, &p)?;
            let text = text.trim();
            let ports = match text.rsplit_once('/') {
                Some((ports, proto)) => {
                    protocol(proto, &p)?;
                    ports
                }
                None => text,
            };
            range(ports, &p)?;
            Ok(text.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<PortMapping>, ComposeError> {
        let v: Value = serde_yaml::from_str(text).expect("yaml");
        ports(&v, &KeyPath::from_keys(["ports"]))
    }

    fn pm(
        target: u16,
        published: Option<u16>,
        ip: Option<&str>,
        protocol: Protocol,
    ) -> PortMapping {
        PortMapping {
            target,
            published,
            host_ip: ip.map(|i| i.parse().expect("ip")),
            protocol,
            mode: PortMode::Ingress,
        }
    }

    #[test]
    fn short_forms() {
        use Protocol::*;
        let got = parse(
            "[\"80\", 8080, \"8080:80\", \"127.0.0.1:8081:81/tcp\", \"127.0.0.1::82\", \"53:53/udp\", \"[::1]:9000:90\", \"::1:9001:91\"]",
        )
        .expect("ports");
        assert_eq!(
            got,
            vec![
                pm(80, None, None, Tcp),
                pm(8080, None, None, Tcp),
                pm(80, Some(8080), None, Tcp),
                pm(81, Some(8081), Some("127.0.0.1"), Tcp),
                pm(82, None, Some("127.0.0.1"), Tcp),
                pm(53, Some(53), None, Udp),
                pm(90, Some(9000), Some("::1"), Tcp),
                pm(91, Some(9001), Some("::1"), Tcp),
            ]
        );
    }

    #[test]
    fn ranges_expand() {
        use Protocol::*;
        let got =
            parse("[\"3000-3001\", \"9090-9091:8080-8081\", \"5000-5010:5000\"]").expect("ports");
        assert_eq!(
            got,
            vec![
                pm(3000, None, None, Tcp),
                pm(3001, None, None, Tcp),
                pm(8080, Some(9090), None, Tcp),
                pm(8081, Some(9091), None, Tcp),
                pm(5000, None, None, Tcp),
            ]
        );
        assert!(parse("[\"1-2:1-3\"]").is_err());
        assert!(parse("[\"1-5000\"]").is_err());
        assert!(parse("[\"9-1\"]").is_err());
    }

    #[test]
    fn long_form() {
        let got = parse(
            "- target: 80\n  published: \"8080\"\n  host_ip: 127.0.0.1\n  protocol: udp\n  mode: host\n- target: 81\n",
        )
        .expect("ports");
        assert_eq!(
            got[0],
            PortMapping {
                target: 80,
                published: Some(8080),
                host_ip: Some("127.0.0.1".parse().expect("ip")),
                protocol: Protocol::Udp,
                mode: PortMode::Host,
            }
        );
        assert_eq!(got[1], pm(81, None, None, Protocol::Tcp));
    }

    #[test]
    fn invalid_ports() {
        for bad in [
            "[0]",
            "[70000]",
            "[\"80/xtp\"]",
            "[\"x:80\"]",
            "[\"1.2.3:80:80\"]",
            "[[80]]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("- published: 80\n").is_err());
        assert!(parse("- target: 80\n  mode: swarm\n").is_err());
        let e = parse("- target: 80\n  name: web\n").expect_err("unsupported");
        assert_eq!(e.code(), "compose.unsupported");
        assert!(e.to_string().contains("ports[0].name"), "{e}");
    }

    #[test]
    fn expose_entries() {
        let v: Value = serde_yaml::from_str("[3000, \"8000-8010\", \"53/udp\"]").expect("yaml");
        let got = expose(&v, &KeyPath::root()).expect("expose");
        assert_eq!(got, ["3000", "8000-8010", "53/udp"]);
        let v: Value = serde_yaml::from_str("[\"http\"]").expect("yaml");
        assert!(expose(&v, &KeyPath::root()).is_err());
    }
}
