//! Where lookups for a reference go: mirrors, relocated registries and plain-HTTP registries.
//!
//! Reads the `[[registry]]` tables of a containers-registries.conf v2 file (`prefix`,
//! `location`, `insecure`, `[[registry.mirror]]`) and maps a normalised image name to the
//! endpoints to query, mirrors first. It deliberately ignores the rest of that format
//! (`unqualified-search-registries`, `blocked`, `mirror-by-digest-only`, aliases, the v1
//! format): cru never expands short names by search and only reads from registries.
//! Parsing ([`RegistriesConf::parse`]) and mapping ([`RegistriesConf::endpoints`]) are pure;
//! only [`RegistriesConf::discover`] touches the file system.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::docker_hub;

/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = docker_hub::API_HOST;

/// Why a registries.conf could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read registries config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not have the expected shape.
    #[error("invalid registries config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, from the TOML parser.
        message: String,
    },
}

/// One place to send a lookup: a registry API base and the repository path there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The API host with optional port (`registry-1.docker.io`, `127.0.0.1:5000`).
    pub host: String,
    /// The repository path on that host (`library/python`).
    pub repository: String,
}

impl Endpoint {
    /// The base URL of the registry API, `https://host`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }
}

/// The `[[registry]]` entries of a containers-registries.conf v2 file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    registries: Vec<RegistryEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RegistryEntry {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    mirror: Vec<MirrorEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct MirrorEntry {
    location: String,
    #[serde(default)]
    insecure: bool,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    registry: Vec<RegistryEntry>,
}

impl RegistriesConf {
    /// Parses the text of a registries.conf; `path` is only used in the error.
    pub fn parse(text: &str, path: &Path) -> Result<RegistriesConf, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        for entry in &file.registry {
            if entry.prefix.is_none() && entry.location.is_none() {
                return Err(ConfigError::Parse {
                    path: path.to_owned(),
                    message: "a [[registry]] needs a prefix or a location".into(),
                });
            }
        }
        Ok(RegistriesConf {
            registries: file.registry,
        })
    }

    /// Reads the registries.conf at `path`.
    pub fn load(path: &Path) -> Result<RegistriesConf, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        RegistriesConf::parse(&text, path)
    }

    /// Reads the file the settings chose (`--registries-conf`, `$CRU_REGISTRIES_CONF`, the
    /// configuration's `registries-conf:`, else the first of the user's and the system's
    /// files that exists: see `settings`); `None` means no mirrors and no insecure registries.
    pub fn discover(path: Option<&Path>) -> Result<RegistriesConf, ConfigError> {
        match path {
            Some(path) => {
                tracing::debug!(path = %path.display(), "using registries config");
                RegistriesConf::load(path)
            }
            None => Ok(RegistriesConf::default()),
        }
    }

    /// Where the registries.conf is looked for when nothing names one: the user's
    /// `$XDG_CONFIG_HOME/containers/registries.conf` (or `~/.config/…`), then the system's.
    /// `user_config` is the user's configuration folder, as the caller found it.
    pub fn default_locations(user_config: Option<&Path>) -> Vec<PathBuf> {
        user_config
            .map(|d| d.join("containers/registries.conf"))
            .into_iter()
            .chain([PathBuf::from("/etc/containers/registries.conf")])
            .collect()
    }

    /// The endpoints to query for `registry/repository` (a normalised name), in order: the
    /// mirrors of the matching entry, then its location (or the registry itself).
    pub fn endpoints(&self, registry: &str, repository: &str) -> Vec<Endpoint> {
        let name = format!("{registry}/{repository}");
        let entry = self
            .registries
            .iter()
            .filter_map(|e| {
                let prefix = e.prefix.as_deref().or(e.location.as_deref())?;
                prefix_matches(prefix, &name).then_some((prefix, e))
            })
            .max_by_key(|(prefix, _)| prefix.len());
        let Some((prefix, entry)) = entry else {
            return vec![endpoint_for(&name, false)];
        };
        if prefix.starts_with("*.") {
            // A wildcard entry has no location to substitute; only `insecure` applies.
            return vec![endpoint_for(&name, entry.insecure)];
        }
        let rest = &name[prefix.len()..];
        let mut out: Vec<Endpoint> = entry
            .mirror
            .iter()
            .map(|m| endpoint_for(&format!("{}{rest}", m.location), m.insecure))
            .collect();
        let location = entry.location.as_deref().unwrap_or(prefix);
        out.push(endpoint_for(&format!("{location}{rest}"), entry.insecure));
        out
    }
}

impl RegistriesConf {
    /// Where to push `registry/repository`: the registry itself, never a mirror or a
    /// relocated `location` (a push must land where the name says); only the matching
    /// entry's `insecure` applies.
    pub fn push_endpoint(&self, registry: &str, repository: &str) -> Endpoint {
        let name = format!("{registry}/{repository}");
        let insecure = self
            .registries
            .iter()
            .filter_map(|e| {
                let prefix = e.prefix.as_deref().or(e.location.as_deref())?;
                prefix_matches(prefix, &name).then_some((prefix.len(), e.insecure))
            })
            .max_by_key(|(len, _)| *len)
            .is_some_and(|(_, insecure)| insecure);
        endpoint_for(&name, insecure)
    }
}

/// A prefix matches a name at a path boundary: `docker.io` matches `docker.io/library/x`
/// but not `docker.ioo/x`. `*.example.com` matches any subdomain's names.
fn prefix_matches(prefix: &str, name: &str) -> bool {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let host = name.split('/').next().unwrap_or("");
        return host.ends_with(&format!(".{domain}"));
    }
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Splits `host/path` into an endpoint, choosing the API host and scheme.
fn endpoint_for(name: &str, insecure: bool) -> Endpoint {
    let (host, repository) = name.split_once('/').unwrap_or((name, ""));
    let api_host = if docker_hub::is_hub(host) {
        DOCKER_HUB_API.to_owned()
    } else {
        host.to_ascii_lowercase()
    };
    let scheme = if insecure || is_loopback(&api_host) {
        "http"
    } else {
        "https"
    };
    Endpoint {
        scheme,
        host: api_host,
        repository: repository.to_owned(),
    }
}

/// `localhost`, `127.0.0.0/8` and `[::1]`, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    if bare.eq_ignore_ascii_case("localhost") || bare == "::1" {
        return true;
    }
    bare.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        RegistriesConf::parse(text, Path::new("test.conf")).unwrap()
    }

    fn ep(scheme: &'static str, host: &str, repository: &str) -> Endpoint {
        Endpoint {
            scheme,
            host: host.into(),
            repository: repository.into(),
        }
    }

    #[test]
    fn push_endpoints_are_never_a_mirror_or_location_but_keep_insecure() {
        let c = conf(
            r#"
            [[registry]]
            prefix = "reg.example.com/m"
            location = "elsewhere.example.com/m"
            insecure = true
            [[registry.mirror]]
            location = "mirror.example.com/m"
            "#,
        );
        assert_eq!(
            c.push_endpoint("reg.example.com", "m/library/python"),
            ep("http", "reg.example.com", "m/library/python")
        );
        assert_eq!(
            c.push_endpoint("other.example.com", "x"),
            ep("https", "other.example.com", "x")
        );
    }

    #[test]
    fn no_settings_means_the_registry_itself() {
        let c = RegistriesConf::default();
        assert_eq!(
            c.endpoints("docker.io", "library/nginx"),
            [ep("https", "registry-1.docker.io", "library/nginx")]
        );
        assert_eq!(
            c.endpoints("ghcr.io", "a/b"),
            [ep("https", "ghcr.io", "a/b")]
        );
    }

    #[test]
    fn loopback_is_plain_http() {
        let c = RegistriesConf::default();
        assert_eq!(
            c.endpoints("localhost:5000", "x"),
            [ep("http", "localhost:5000", "x")]
        );
        assert_eq!(
            c.endpoints("127.0.0.2:80", "x"),
            [ep("http", "127.0.0.2:80", "x")]
        );
        assert_eq!(
            c.endpoints("[::1]:5000", "x"),
            [ep("http", "[::1]:5000", "x")]
        );
        assert!(!is_loopback("128.0.0.1"));
        assert!(!is_loopback("localhost.example.com"));
    }

    #[test]
    fn location_replaces_the_prefix() {
        let c = conf(
            r#"
            unqualified-search-registries = ["docker.io"]
            [[registry]]
            prefix = "docker.io"
            location = "127.0.0.1:5000"
            "#,
        );
        assert_eq!(
            c.endpoints("docker.io", "library/python"),
            [ep("http", "127.0.0.1:5000", "library/python")]
        );
        assert_eq!(
            c.endpoints("quay.io", "a/b"),
            [ep("https", "quay.io", "a/b")]
        );
    }

    #[test]
    fn mirrors_come_first_and_longest_prefix_wins() {
        let c = conf(
            r#"
            [[registry]]
            prefix = "example.com"
            location = "example.com"
            [[registry]]
            prefix = "example.com/team"
            location = "internal.example.com/cache/team"
            insecure = true
            [[registry.mirror]]
            location = "mirror.example.com/team"
            "#,
        );
        assert_eq!(
            c.endpoints("example.com", "team/app"),
            [
                ep("https", "mirror.example.com", "team/app"),
                ep("http", "internal.example.com", "cache/team/app"),
            ]
        );
        assert_eq!(
            c.endpoints("example.com", "teamx/app"),
            [ep("https", "example.com", "teamx/app")]
        );
    }

    #[test]
    fn location_alone_is_its_own_prefix_and_docker_hub_mirror_uses_api_host() {
        let c = conf(
            r#"
            [[registry]]
            location = "docker.io"
            [[registry.mirror]]
            location = "mirror.gcr.io"
            "#,
        );
        assert_eq!(
            c.endpoints("docker.io", "library/x"),
            [
                ep("https", "mirror.gcr.io", "library/x"),
                ep("https", "registry-1.docker.io", "library/x"),
            ]
        );
    }

    #[test]
    fn wildcard_prefix() {
        let c = conf("[[registry]]\nprefix = \"*.internal\"\ninsecure = true\n");
        assert_eq!(
            c.endpoints("r.internal", "a"),
            [ep("http", "r.internal", "a")]
        );
    }

    #[test]
    fn bad_files_name_the_path() {
        let e = RegistriesConf::parse("[[registry]]\ninsecure = true\n", Path::new("/x/r.conf"))
            .unwrap_err();
        assert!(e.to_string().contains("/x/r.conf"), "{e}");
        let e = RegistriesConf::parse("[[registry]\n", Path::new("/x/r.conf")).unwrap_err();
        assert!(e.to_string().contains("/x/r.conf"), "{e}");
    }
}
