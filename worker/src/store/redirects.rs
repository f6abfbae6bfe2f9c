//! Redirect domains: names answered with a 301 to a domain, kept per domain
//! until a deploy changes them ([`Change::SetRedirects`](super::Change)). A
//! name redirects to one domain at most (the table's key).

use rusqlite::{Connection, OptionalExtension, params};

use hostkit_proto::Domain;

use super::Store;
use super::error::Res;
use super::sql;

/// Who serves a name on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameOwner {
    /// The name is a domain of its own.
    Domain(Domain),
    /// The name redirects to this domain.
    RedirectOf(Domain),
}

impl Store {
    /// Who serves `name` on this node: a domain of that name, or the domain
    /// it redirects to; `None` when nobody does.
    pub async fn name_owner(&self, name: Domain) -> Result<Option<NameOwner>, super::StoreError> {
        self.read("name owner", move |conn| {
            let own = conn
                .query_row(
                    "SELECT 1 FROM domains WHERE domain = ?1",
                    [name.as_str()],
                    |_| Ok(()),
                )
                .optional()?;
            if own.is_some() {
                return Ok(Some(NameOwner::Domain(name)));
            }
            let target = conn
                .query_row(
                    "SELECT domain FROM redirects WHERE name = ?1",
                    [name.as_str()],
                    |row| sql::domain(row, 0),
                )
                .optional()?;
            Ok(target.map(NameOwner::RedirectOf))
        })
        .await
    }
}

/// The domain's redirect domains, in order.
pub(super) fn of(conn: &Connection, domain: &Domain) -> Res<Vec<Domain>> {
    let mut stmt =
        conn.prepare("SELECT name FROM redirects WHERE domain = ?1 ORDER BY position")?;
    let names = stmt
        .query_map([domain.as_str()], |row| sql::domain(row, 0))?
        .collect::<Result<_, _>>()?;
    Ok(names)
}

/// Replace the domain's redirect domains.
pub(super) fn set(conn: &Connection, domain: &Domain, redirects: &[Domain]) -> Res<()> {
    conn.execute("DELETE FROM redirects WHERE domain = ?1", [domain.as_str()])?;
    for (position, name) in redirects.iter().enumerate() {
        conn.execute(
            "INSERT INTO redirects (name, domain, position) VALUES (?1, ?2, ?3)",
            params![
                name.as_str(),
                domain.as_str(),
                i64::try_from(position).unwrap_or(i64::MAX)
            ],
        )?;
    }
    Ok(())
}
