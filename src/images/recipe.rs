//! Which Debian packages stand in for a registry image that cannot be pulled.

/// Debian packages that make an image equivalent (for dbtopo's purposes) to a registry image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianRecipe {
    /// Debian release to bootstrap, e.g. `trixie`.
    pub suite: String,
    /// Packages to install on top of the minimal base.
    pub packages: Vec<String>,
    /// Directories put in front of the standard `PATH`, so the image's commands resolve as in
    /// the official image.
    pub path_dirs: Vec<String>,
}

/// PostgreSQL majors Debian ships in a stable release, with that release.
const POSTGRES_SUITES: &[(u32, &str)] = &[(17, "trixie"), (15, "bookworm")];

/// The major `postgres` / `postgres:latest` stands for.
const POSTGRES_LATEST: u32 = 17;

/// The PostgreSQL major of an official `postgres` image reference (`postgres:17`,
/// `docker.io/library/postgres:17.2`, `postgres`), `None` for any other image.
pub fn postgres_major(reference: &str) -> Option<u32> {
    let (name, tag) = split_reference(reference)?;
    let name = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("index.docker.io/library/"))
        .or_else(|| name.strip_prefix("library/"))
        .unwrap_or(name);
    if name != "postgres" {
        return None;
    }
    match tag {
        None | Some("latest") => Some(POSTGRES_LATEST),
        Some(tag) => tag_major(tag),
    }
}

/// Pure: which Debian packages make an image equivalent to `reference`.
pub fn debian_recipe(reference: &str) -> Option<DebianRecipe> {
    let major = postgres_major(reference)?;
    let (_, suite) = POSTGRES_SUITES.iter().find(|(m, _)| *m == major)?;
    Some(DebianRecipe {
        suite: (*suite).to_string(),
        packages: vec![format!("postgresql-{major}")],
        path_dirs: vec![format!("/usr/lib/postgresql/{major}/bin")],
    })
}

/// Splits `name[:tag]`; `None` for digest references, which no rebuild can reproduce.
pub(crate) fn split_reference(reference: &str) -> Option<(&str, Option<&str>)> {
    if reference.is_empty() || reference.contains('@') {
        return None;
    }
    // A colon before the last slash belongs to a registry host:port, not to a tag.
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    Some(match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            Some(&reference[last_slash + i + 1..]),
        ),
        None => (reference, None),
    })
}

/// `17`, `17.2`, `17-bookworm`, `17.2-trixie` → 17; `17rc1`, `bookworm` → none.
fn tag_major(tag: &str) -> Option<u32> {
    let end = tag.find(['.', '-']).unwrap_or(tag.len());
    let digits = &tag[..end];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(suite: &str, major: u32) -> Option<DebianRecipe> {
        Some(DebianRecipe {
            suite: suite.into(),
            packages: vec![format!("postgresql-{major}")],
            path_dirs: vec![format!("/usr/lib/postgresql/{major}/bin")],
        })
    }

    #[test]
    fn postgres_17_tags_map_to_trixie() {
        for r in [
            "postgres:17",
            "postgres:17.2",
            "postgres:17-bookworm",
            "postgres:17.5-trixie",
            "library/postgres:17",
            "docker.io/library/postgres:17",
        ] {
            assert_eq!(debian_recipe(r), recipe("trixie", 17), "{r}");
        }
    }

    #[test]
    fn latest_maps_to_17() {
        for r in ["postgres", "postgres:latest", "docker.io/library/postgres"] {
            assert_eq!(debian_recipe(r), recipe("trixie", 17), "{r}");
        }
    }

    #[test]
    fn postgres_15_maps_to_bookworm() {
        for r in ["postgres:15", "postgres:15.8", "postgres:15-bookworm"] {
            assert_eq!(debian_recipe(r), recipe("bookworm", 15), "{r}");
        }
    }

    #[test]
    fn others_have_no_recipe() {
        for r in [
            "postgres:16",
            "postgres:18",
            "postgres:1",
            "postgres:170",
            "postgres:17rc1",
            "postgres:bookworm",
            "postgres:",
            "postgres@sha256:0123abcd",
            "postgres:17@sha256:0123abcd",
            "mongo:7",
            "bitnami/postgresql:17",
            "myregistry:5000/postgres:17",
            "quay.io/library/postgres:17",
            "postgresql:17",
            "",
        ] {
            assert_eq!(debian_recipe(r), None, "{r}");
        }
    }

    #[test]
    fn split_reference_keeps_registry_ports() {
        assert_eq!(
            split_reference("postgres:17"),
            Some(("postgres", Some("17")))
        );
        assert_eq!(split_reference("postgres"), Some(("postgres", None)));
        assert_eq!(
            split_reference("localhost:5000/postgres"),
            Some(("localhost:5000/postgres", None))
        );
        assert_eq!(
            split_reference("localhost:5000/a/postgres:15"),
            Some(("localhost:5000/a/postgres", Some("15")))
        );
    }
}
