//! The policy's look at the domain directory itself (worker side): no
//! symbolic link on the way to a bind source or a file HostKit reads. The
//! same walk runs again before every container start (`engine::binds`).

use std::path::Path;

use super::binds::bind_sources;
use super::{Rule, Violation};
use crate::compose::Project;
use crate::domain_dir::{DomainDir, DomainDirError};

/// Every link found, as violations of [`Rule::Symlink`].
pub(super) fn collect(project: &Project, dir: &DomainDir) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut visit = |service: Option<&str>, key: String, written: &str| {
        if written.starts_with('~') || dir.components(Path::new(written)).is_none() {
            return; // outside: the lexical rules decide
        }
        if let Err(DomainDirError::Symlink { path }) = dir.entry(Path::new(written)) {
            out.push(Violation {
                rule: Rule::Symlink,
                service: service.map(str::to_owned),
                path: key,
                message: format!(
                    "`{written}` goes through the symbolic link `{path}`, which is never followed"
                ),
            });
        }
    };
    for source in bind_sources(project, dir.root()) {
        visit(Some(&source.service), source.key, &source.written);
    }
    for (name, service) in &project.services {
        for (i, file) in service.env_file.iter().enumerate() {
            visit(
                Some(name),
                format!("services.{name}.env_file[{i}]"),
                &file.path,
            );
        }
    }
    for (kind, objects) in [("secrets", &project.secrets), ("configs", &project.configs)] {
        for (name, file) in objects.iter().filter_map(|(n, o)| Some((n, o.file()?))) {
            visit(None, format!("{kind}.{name}.file"), file);
        }
    }
    out
}
