//! Domain patterns: `example.com` (exactly), `*.example.com` (every name
//! below it, not itself), `*` (every domain). Used wherever a setting is
//! bound to domains: trusted job keys, stack budgets.

use std::fmt;
use std::str::FromStr;

use super::Domain;

/// A domain pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPattern {
    /// Every domain (an operator's key).
    Any,
    /// Exactly this domain.
    Exact(String),
    /// Any subdomain of this one (`*.example.com`; not `example.com` itself).
    Subdomains(String),
}

impl DomainPattern {
    /// Whether `domain` falls under the pattern.
    pub fn matches(&self, domain: &Domain) -> bool {
        self.specificity(domain).is_some()
    }

    /// How specific a match of `domain` is (an exact name beats the longest
    /// parent, which beats `*`), or `None` when it does not match.
    pub fn specificity(&self, domain: &Domain) -> Option<usize> {
        let name = domain.as_str();
        match self {
            DomainPattern::Any => Some(0),
            DomainPattern::Exact(exact) => (name == exact).then_some(usize::MAX),
            DomainPattern::Subdomains(parent) => name
                .strip_suffix(parent.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
                .then_some(parent.len()),
        }
    }
}

impl FromStr for DomainPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "*" {
            return Ok(DomainPattern::Any);
        }
        let (wild, rest) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let domain: Domain = rest.parse().map_err(|e| {
            format!("`{s}` is not a domain pattern (`example.com`, `*.example.com` or `*`): {e}")
        })?;
        let name = domain.as_str().to_owned();
        Ok(if wild {
            DomainPattern::Subdomains(name)
        } else {
            DomainPattern::Exact(name)
        })
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Any => f.write_str("*"),
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Subdomains(d) => write!(f, "*.{d}"),
        }
    }
}
