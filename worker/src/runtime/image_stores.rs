//! The object stores image blobs come from: the fleet's shared bucket, and
//! the private buckets of tenants (`[[security.image_buckets]]`). A job
//! loads its blobs from its domain's bucket and from no other, so a tenant
//! whose CI may write only its own bucket decides what its domains load,
//! and nobody else's CI can read, replace or purge its images.

use async_nats::jetstream::object_store::ObjectStore;
use hostkit_proto::Domain;
use hostkit_proto::name::DomainPattern;

/// A tenant's private bucket and the domains it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateBucket {
    /// The object store's name.
    pub bucket: String,
    /// The domains whose blobs come from it.
    pub domains: Vec<DomainPattern>,
}

/// Every image bucket of this node, opened.
pub struct ImageStores {
    shared: (String, ObjectStore),
    private: Vec<(PrivateBucket, ObjectStore)>,
}

impl ImageStores {
    /// The shared bucket and the opened private ones.
    pub fn new(
        shared: (String, ObjectStore),
        private: Vec<(PrivateBucket, ObjectStore)>,
    ) -> ImageStores {
        ImageStores { shared, private }
    }

    /// The bucket `domain`'s blobs come from, and its name.
    pub fn for_domain(&self, domain: &Domain) -> (&str, &ObjectStore) {
        match private_bucket_for(self.private.iter().map(|(rule, _)| rule), domain) {
            Some(i) => (self.private[i].0.bucket.as_str(), &self.private[i].1),
            None => (self.shared.0.as_str(), &self.shared.1),
        }
    }
}

/// Which private bucket serves `domain` (its index among `rules`): the one
/// whose pattern names the domain most specifically, the first on a tie;
/// `None`: the shared bucket.
pub fn private_bucket_for<'a>(
    rules: impl IntoIterator<Item = &'a PrivateBucket>,
    domain: &Domain,
) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, rule) in rules.into_iter().enumerate() {
        let Some(specificity) = rule
            .domains
            .iter()
            .filter_map(|p| p.specificity(domain))
            .max()
        else {
            continue;
        };
        if best.is_none_or(|(_, b)| specificity > b) {
            best = Some((i, specificity));
        }
    }
    best.map(|(i, _)| i)
}

impl std::fmt::Debug for ImageStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStores")
            .field("shared", &self.shared.0)
            .field(
                "private",
                &self.private.iter().map(|(b, _)| b).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(bucket: &str, domains: &[&str]) -> PrivateBucket {
        PrivateBucket {
            bucket: bucket.into(),
            domains: domains.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn the_most_specific_private_bucket_serves_a_domain() {
        let rules = [
            rule("acme", &["acme.test", "*.acme.test"]),
            rule("shop", &["shop.acme.test"]),
        ];
        let pick = |d: &str| private_bucket_for(&rules, &d.parse().unwrap());
        assert_eq!(pick("acme.test"), Some(0));
        assert_eq!(pick("www.acme.test"), Some(0));
        assert_eq!(pick("shop.acme.test"), Some(1));
        assert_eq!(pick("other.test"), None);
        assert_eq!(pick("notacme.test"), None);
    }
}
