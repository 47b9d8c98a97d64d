//! Credentials and authentication challenges, the way docker, crane and skopeo find them.
//!
//! Reads `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`): `auths` entries
//! (`auth`, `username`/`password`, `identitytoken`), `credHelpers` and `credsStore`
//! (`docker-credential-NAME get`). Parses `WWW-Authenticate` challenges and token responses,
//! and decides whether a token realm may see a registry's credentials ([`realm_refusal`]).
//! It does not send registry requests (that is [`super::client`]) and never writes
//! credentials anywhere: secrets are held in [`Secret`], whose `Debug` is redacted and which
//! has no `Display`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::docker_hub;
use crate::report::{Event, Reporter};

/// A secret string (password, token). `Debug` prints `<redacted>`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for building a request header; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What to present to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or a personal access token used as one).
    Basic {
        /// The user name (not secret).
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth2 refresh token from `docker login` with an identity provider.
    IdentityToken(Secret),
}

impl Credential {
    /// The `Authorization: Basic …` header value, for basic credentials.
    pub fn basic_header(&self) -> Option<Secret> {
        match self {
            Credential::Basic { username, password } => Some(Secret(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            ))),
            Credential::IdentityToken(_) => None,
        }
    }
}

/// Why the docker config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The config file exists but could not be read.
    #[error("cannot read docker config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not the expected JSON.
    #[error("invalid docker config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the file's content).
        message: String,
    },
}

/// Where a registry's credentials come from, decided from the docker config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// No credentials: anonymous access.
    Anonymous,
    /// Stored in the config file.
    Static(Credential),
    /// Ask `docker-credential-NAME get` about `server`.
    Helper {
        /// The helper's suffix (`ecr-login`, `gcloud`, `desktop`).
        name: String,
        /// The server name to send on its stdin.
        server: String,
    },
}

/// The parts of a docker `config.json` that matter for pulling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerConfig {
    auths: BTreeMap<String, Option<Credential>>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl DockerConfig {
    /// Parses a config.json; `path` is only used in errors. Contents never reach an error.
    pub fn parse(text: &str, path: &Path) -> Result<DockerConfig, AuthError> {
        let parse_err = |message: String| AuthError::Parse {
            path: path.to_owned(),
            message,
        };
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| {
            // serde_json messages can quote input; keep only the position.
            parse_err(format!(
                "not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let mut auths = BTreeMap::new();
        for (key, entry) in raw.auths {
            let credential = if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Some(Credential::IdentityToken(Secret(token)))
            } else if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        parse_err(format!("auths.{key}.auth is not base64 user:password"))
                    })?;
                let (user, pass) = decoded
                    .split_once(':')
                    .ok_or_else(|| parse_err(format!("auths.{key}.auth is not user:password")))?;
                Some(Credential::Basic {
                    username: user.to_owned(),
                    password: Secret(pass.to_owned()),
                })
            } else {
                match (entry.username, entry.password) {
                    (Some(username), Some(password)) if !username.is_empty() => {
                        Some(Credential::Basic {
                            username,
                            password: Secret(password),
                        })
                    }
                    _ => None,
                }
            };
            auths.insert(normalize_server(&key), credential);
        }
        let cred_helpers = raw
            .cred_helpers
            .into_iter()
            .map(|(k, v)| (normalize_server(&k), v))
            .collect();
        Ok(DockerConfig {
            auths,
            cred_helpers,
            creds_store: raw.creds_store.filter(|s| !s.is_empty()),
        })
    }

    /// Reads `dir/config.json`; a missing file means no credentials. Which folder
    /// (`$DOCKER_CONFIG`, else `~/.docker`) is the settings' choice: this never looks at the
    /// environment.
    pub fn discover(dir: &Path) -> Result<DockerConfig, AuthError> {
        let path = dir.join("config.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => DockerConfig::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
            Err(source) => Err(AuthError::Read { path, source }),
        }
    }

    /// Where the credentials for the API host `host` (`registry-1.docker.io`,
    /// `127.0.0.1:5000`) come from: a `credHelpers` entry, else an `auths` entry with a
    /// credential, else the `credsStore`, else none.
    pub fn source_for(&self, host: &str) -> CredentialSource {
        let host = host.to_ascii_lowercase();
        let is_hub = docker_hub::is_hub(&host);
        let keys: Vec<&str> = if is_hub {
            docker_hub::HOSTS.to_vec()
        } else {
            vec![host.as_str()]
        };
        let server = if is_hub {
            docker_hub::CONFIG_SERVER.to_owned()
        } else {
            host.clone()
        };
        if let Some(name) = keys.iter().find_map(|k| self.cred_helpers.get(*k)) {
            return CredentialSource::Helper {
                name: name.clone(),
                server,
            };
        }
        if let Some(credential) = keys
            .iter()
            .find_map(|k| self.auths.get(*k).cloned().flatten())
        {
            return CredentialSource::Static(credential);
        }
        match &self.creds_store {
            Some(name) => CredentialSource::Helper {
                name: name.clone(),
                server,
            },
            None => CredentialSource::Anonymous,
        }
    }
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `Host:5000/path` → `host:5000`.
fn normalize_server(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or("").to_ascii_lowercase()
}

/// Reads the JSON a credential helper prints for `get`. `<token>` as the user name means
/// the secret is an identity token.
pub fn parse_helper_output(stdout: &[u8]) -> Option<Credential> {
    #[derive(Deserialize)]
    struct Out {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let out: Out = serde_json::from_slice(stdout).ok()?;
    if out.secret.is_empty() {
        return None;
    }
    Some(if out.username == "<token>" {
        Credential::IdentityToken(Secret(out.secret))
    } else {
        Credential::Basic {
            username: out.username,
            password: Secret(out.secret),
        }
    })
}

/// Time a credential helper has to answer and exit.
const HELPER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// Time to wait for the end of a helper's output once it has exited: a grandchild it left
/// behind may hold the pipe open for ever, and what the helper printed is already there.
const HELPER_DRAIN: std::time::Duration = std::time::Duration::from_millis(200);
/// Largest helper answer read.
const HELPER_MAX_OUTPUT: usize = 64 << 10;

/// Runs `docker-credential-NAME get` with `server` on stdin. A helper that is missing,
/// fails, knows nothing or takes longer than 30 s yields `None` (with a warning): the
/// registry then answers anonymous requests or says unauthorized, which names the fix.
pub async fn run_helper(name: &str, server: &str, reporter: &dyn Reporter) -> Option<Credential> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let program = format!("docker-credential-{name}");
    let child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            reporter.report(Event::Warning(format!(
                "cannot run credential helper {program} for {server}: {e}; trying anonymously"
            )));
            return None;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes()).await;
    }
    let mut stdout = child.stdout.take()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut eof = false;
    let mut status = None;
    let deadline = tokio::time::Instant::now() + HELPER_DEADLINE;
    // Read while waiting for the exit (a large answer must not block the helper on a full
    // pipe), then stop reading shortly after it: EOF is not awaited, the exit is.
    let mut drain = None;
    let outcome = loop {
        if status.is_some() && eof {
            break Ok(());
        }
        tokio::select! {
            read = stdout.read(&mut buf), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) if out.len() + n > HELPER_MAX_OUTPUT => break Err("printed too much"),
                Ok(n) => out.extend_from_slice(&buf[..n]),
            },
            exit = child.wait(), if status.is_none() => match exit {
                Ok(s) => {
                    status = Some(s);
                    drain = Some(tokio::time::Instant::now() + HELPER_DRAIN);
                }
                Err(_) => break Err("could not be waited for"),
            },
            () = tokio::time::sleep_until(drain.unwrap_or(deadline)) => {
                if status.is_some() {
                    break Ok(());
                }
                break Err("timed out");
            }
        }
    };
    match (outcome, status) {
        (Ok(()), Some(status)) if status.success() => {
            let credential = parse_helper_output(&out);
            if credential.is_none() {
                reporter.report(Event::Warning(format!(
                    "credential helper {program} gave no usable credentials for {server}"
                )));
            }
            credential
        }
        (Ok(()), Some(status)) => {
            // stdout may say "credentials not found"; it is not logged in case it holds more.
            tracing::debug!(
                "credential helper {program} has no credentials for {server} ({status})"
            );
            None
        }
        (outcome, _) => {
            let why = outcome.err().unwrap_or("failed");
            reporter.report(Event::Warning(format!(
                "credential helper {program} {why} for {server}; trying anonymously"
            )));
            None
        }
    }
}

/// How a registry asks clients to authenticate, from `GET /v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// No authentication needed.
    None,
    /// Send basic credentials with every request.
    Basic,
    /// Get a token from `realm` for `service` and a per-repository scope.
    Bearer {
        /// The token endpoint URL.
        realm: String,
        /// The `service` parameter, if given.
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value: `Bearer realm="…",service="…",scope="…"`
/// or `Basic realm="…"`. Unknown schemes yield `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    let realm = params.iter().find(|(k, _)| k == "realm")?.1.clone();
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone());
    Some(Challenge::Bearer { realm, service })
}

/// `a="x, y",b=z` → `[(a, "x, y"), (b, z)]`, keys lowercased.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        out.push((key, value));
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Reads a token endpoint's answer: `{"token": …}` or `{"access_token": …}`.
pub fn parse_token_response(body: &[u8]) -> Option<Secret> {
    #[derive(Deserialize)]
    struct Out {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
    }
    let out: Out = serde_json::from_slice(body).ok()?;
    out.token
        .filter(|t| !t.is_empty())
        .or(out.access_token.filter(|t| !t.is_empty()))
        .map(Secret)
}

/// The host (and port) of a URL, for messages: never its user, path or query.
pub fn url_host(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => "a URL without a host".to_owned(),
        },
        Err(_) => "an invalid URL".to_owned(),
    }
}

/// Why the token `realm` must not get the credentials of the registry at `scheme://host`,
/// or `None` if it may: only over HTTPS (plain HTTP only for a registry itself spoken to in
/// plain HTTP: insecure or loopback), and only within the registry's site (see [`site`]).
pub fn realm_refusal(scheme: &str, host: &str, realm: &str) -> Option<String> {
    let Ok(url) = url::Url::parse(realm) else {
        return Some("the realm is not a URL".into());
    };
    match url.scheme() {
        "https" => {}
        "http" if scheme == "http" => {}
        other => return Some(format!("the realm is {other}, not https")),
    }
    let realm_host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Some("the realm has no host".into()),
    };
    let registry_host = bare_host(host);
    if site(&realm_host) != site(&registry_host) {
        return Some(format!(
            "it is not on the registry's site ({})",
            site(&registry_host)
        ));
    }
    None
}

/// `host:port` and `[v6]:port` without the port and brackets, lowercased.
fn bare_host(host: &str) -> String {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    bare.to_ascii_lowercase()
}

/// Second-level labels under which country domains register names (`example.co.uk`).
const COUNTRY_SECOND_LEVELS: [&str; 14] = [
    "ac", "co", "com", "edu", "gov", "go", "gob", "mil", "ne", "net", "or", "org", "nic", "ltd",
];

/// The registrable domain of a host, a public-suffix list in miniature: the last two labels
/// (`registry-1.docker.io` → `docker.io`), or three under a country's second level
/// (`r.example.co.uk` → `example.co.uk`). An IP address, `localhost` or a one-label name is
/// its own site. Hosts under shared suffixes (`github.io`) count as one site: the rule errs
/// towards the registry's own provider, never towards another registrable domain.
pub fn site(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
        return host;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    let keep =
        if n >= 3 && labels[n - 1].len() == 2 && COUNTRY_SECOND_LEVELS.contains(&labels[n - 2]) {
            3
        } else {
            2
        };
    labels[n.saturating_sub(keep)..].join(".")
}

/// URLs in registry messages are redacted by the crate's one [`crate::redact::redact_url`].
pub use crate::redact::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn secret_debug_is_redacted() {
        let c = Credential::Basic {
            username: "me".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{c:?} {:?}", CredentialSource::Static(c.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("me"));
    }

    #[test]
    fn discover_reads_only_the_folder_it_is_handed() {
        let dir = tempfile::tempdir().unwrap();
        // No config.json there: no credentials, whatever $DOCKER_CONFIG or ~/.docker hold.
        let none = DockerConfig::discover(dir.path()).unwrap();
        assert_eq!(none.source_for("ghcr.io"), CredentialSource::Anonymous);
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"ghcr.io": {"username": "u", "password": "p"}}}"#,
        )
        .unwrap();
        let found = DockerConfig::discover(dir.path()).unwrap();
        assert!(matches!(
            found.source_for("ghcr.io"),
            CredentialSource::Static(_)
        ));
    }

    #[test]
    fn auths_in_all_three_forms() {
        let text = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "ghcr.io": {{"username": "u", "password": "p"}},
                "id.example.com": {{"identitytoken": "tok"}},
                "empty.example.com": {{}}
            }}}}"#,
            b64("hub:pw:with:colons")
        );
        let c = DockerConfig::parse(&text, Path::new("c.json")).unwrap();
        assert_eq!(
            c.source_for("registry-1.docker.io"),
            CredentialSource::Static(Credential::Basic {
                username: "hub".into(),
                password: Secret::new("pw:with:colons")
            })
        );
        assert_eq!(
            c.source_for("GHCR.io"),
            CredentialSource::Static(Credential::Basic {
                username: "u".into(),
                password: Secret::new("p")
            })
        );
        assert_eq!(
            c.source_for("id.example.com"),
            CredentialSource::Static(Credential::IdentityToken(Secret::new("tok")))
        );
        assert_eq!(
            c.source_for("empty.example.com"),
            CredentialSource::Anonymous
        );
        assert_eq!(c.source_for("quay.io"), CredentialSource::Anonymous);
    }

    #[test]
    fn helpers_take_precedence_and_store_is_the_fallback() {
        let text = r#"{"auths": {"a.io": {"auth": "dTpw"}, "c.io": {}},
                       "credHelpers": {"a.io": "ecr-login"}, "credsStore": "desktop"}"#;
        let c = DockerConfig::parse(text, Path::new("c.json")).unwrap();
        assert_eq!(
            c.source_for("a.io"),
            CredentialSource::Helper {
                name: "ecr-login".into(),
                server: "a.io".into()
            }
        );
        assert_eq!(
            c.source_for("docker.io"),
            CredentialSource::Helper {
                name: "desktop".into(),
                server: "https://index.docker.io/v1/".into()
            }
        );
    }

    #[test]
    fn bad_config_errors_do_not_quote_the_file() {
        let e = DockerConfig::parse(
            r#"{"auths": {"x": {"auth": "s3cr3t!!"}}}"#,
            Path::new("/c.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(e.contains("/c.json"));
        let e = DockerConfig::parse(r#"{"auths": "s3cr3t"#, Path::new("/c.json"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn helper_output() {
        assert_eq!(
            parse_helper_output(br#"{"ServerURL":"x","Username":"u","Secret":"s"}"#),
            Some(Credential::Basic {
                username: "u".into(),
                password: Secret::new("s")
            })
        );
        assert_eq!(
            parse_helper_output(br#"{"Username":"<token>","Secret":"t"}"#),
            Some(Credential::IdentityToken(Secret::new("t")))
        );
        assert_eq!(parse_helper_output(b"credentials not found"), None);
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=https://r/token, scope="a,b""#),
            Some(Challenge::Bearer {
                realm: "https://r/token".into(),
                service: None
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn token_responses() {
        assert_eq!(
            parse_token_response(br#"{"token":"a"}"#),
            Some(Secret::new("a"))
        );
        assert_eq!(
            parse_token_response(br#"{"token":"","access_token":"b"}"#),
            Some(Secret::new("b"))
        );
        assert_eq!(parse_token_response(b"{}"), None);
    }

    #[test]
    fn sites_are_registrable_domains() {
        assert_eq!(site("registry-1.docker.io"), "docker.io");
        assert_eq!(site("auth.docker.io"), "docker.io");
        assert_eq!(site("registry.gitlab.com"), "gitlab.com");
        assert_eq!(site("gitlab.com"), "gitlab.com");
        assert_eq!(site("r.example.co.uk"), "example.co.uk");
        assert_eq!(site("a.b.example.com.au"), "example.com.au");
        assert_eq!(site("registry.example.de"), "example.de");
        assert_eq!(site("127.0.0.1"), "127.0.0.1");
        assert_eq!(site("::1"), "::1");
        assert_eq!(site("localhost"), "localhost");
        assert_eq!(site("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn credentials_go_to_realms_over_https_on_the_registry_site_only() {
        let ok = |scheme, host, realm| realm_refusal(scheme, host, realm).is_none();
        assert!(ok(
            "https",
            "registry-1.docker.io",
            "https://auth.docker.io/token"
        ));
        assert!(ok(
            "https",
            "registry.gitlab.com",
            "https://gitlab.com/jwt/auth"
        ));
        assert!(ok("https", "ghcr.io", "https://ghcr.io/token"));
        assert!(ok(
            "https",
            "r.example.co.uk:5000",
            "https://auth.example.co.uk/t"
        ));
        // Plain HTTP only for a registry itself spoken to in plain HTTP.
        assert!(!ok(
            "https",
            "registry-1.docker.io",
            "http://auth.docker.io/token"
        ));
        assert!(ok("http", "127.0.0.1:5000", "http://127.0.0.1:5001/token"));
        assert!(ok("http", "[::1]:5000", "http://[::1]:80/token"));
        // Another site, another IP, another name for the same machine: no.
        assert!(!ok(
            "https",
            "registry-1.docker.io",
            "https://docker.io.evil.com/t"
        ));
        assert!(!ok("https", "r.example.co.uk", "https://evil.co.uk/t"));
        assert!(!ok("http", "127.0.0.1:5000", "http://127.0.0.2:5000/token"));
        assert!(!ok("http", "127.0.0.1:5000", "http://localhost:5000/token"));
        assert!(!ok("https", "ghcr.io", "ftp://ghcr.io/token"));
        assert!(!ok("https", "ghcr.io", "not a url"));
        let why = realm_refusal("https", "quay.io", "https://evil.example/t").unwrap();
        assert!(why.contains("quay.io"), "{why}");
    }

    #[test]
    fn url_hosts_drop_user_path_and_query() {
        assert_eq!(
            url_host("https://u:p@auth.example.com/token?secret=1"),
            "auth.example.com"
        );
        assert_eq!(url_host("http://127.0.0.1:5001/t?x"), "127.0.0.1:5001");
        assert_eq!(url_host("::"), "an invalid URL");
    }
}
