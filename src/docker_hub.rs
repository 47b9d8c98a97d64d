//! Docker Hub's names: the one place that knows its spellings (`docker.io`, `index.docker.io`,
//! `registry-1.docker.io`, `registry.hub.docker.com`), its API host, its key in docker's
//! `config.json` and the `library/` namespace of its official images. Pure: it knows nothing
//! of references' grammar ([`crate::reference`]) nor of how the registry is reached
//! ([`crate::registry`]).

/// The registry that names without a host refer to, as cru writes it in normalised names.
pub const NAME: &str = "docker.io";

/// The host that serves Docker Hub's registry API.
pub const API_HOST: &str = "registry-1.docker.io";

/// Docker Hub's key in `config.json` and the server name its credential helpers know.
pub const CONFIG_SERVER: &str = "https://index.docker.io/v1/";

/// The namespace of Docker Hub's official images: `nginx` is `library/nginx`.
pub const OFFICIAL_NAMESPACE: &str = "library";

/// Every host name that means Docker Hub, in the order `config.json` keys are tried.
pub const HOSTS: [&str; 4] = ["index.docker.io", NAME, API_HOST, "registry.hub.docker.com"];

/// Whether `host` (any case, no port) is one of Docker Hub's spellings.
pub fn is_hub(host: &str) -> bool {
    HOSTS.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// The host as normalised names carry it: lowercase, and [`NAME`] for Docker Hub.
pub fn normalise_host(host: &str) -> String {
    if is_hub(host) {
        NAME.to_owned()
    } else {
        host.to_ascii_lowercase()
    }
}

/// The repository path on Docker Hub: a one-component path is an official image
/// (`nginx` → `library/nginx`); others are as written.
pub fn repository(path: &str) -> String {
    if path.contains('/') {
        path.to_owned()
    } else {
        format!("{OFFICIAL_NAMESPACE}/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_docker_hub_in_any_case() {
        for host in [
            "docker.io",
            "Docker.IO",
            "index.docker.io",
            "registry-1.docker.io",
            "registry.hub.docker.com",
        ] {
            assert!(is_hub(host), "{host}");
            assert_eq!(normalise_host(host), "docker.io");
        }
        for host in [
            "docker.ioo",
            "gcr.io",
            "auth.docker.io",
            "hub.docker.com",
            "",
        ] {
            assert!(!is_hub(host), "{host}");
        }
        assert_eq!(normalise_host("GCR.io"), "gcr.io");
    }

    #[test]
    fn official_images_live_under_library() {
        assert_eq!(repository("nginx"), "library/nginx");
        assert_eq!(repository("bitnami/nginx"), "bitnami/nginx");
    }
}
