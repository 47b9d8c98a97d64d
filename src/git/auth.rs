//! Credentials for libgit2's network transports, tried in a fixed order and each at most
//! once, so that a wrong password ends in an error that says what was tried instead of a
//! loop or a prompt: https takes the user:password of the URL, then the git credential
//! helpers (`credential.helper`), then `GIT_ASKPASS` (or `core.askPass`); ssh takes the
//! ssh-agent, then the `IdentityFile`s of `~/.ssh/config` for the host, then the default key
//! files. Keys with a passphrase are not supported (use the agent). Nothing here prompts on
//! a terminal, and no secret is ever put in a message or a log line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Cred, CredentialType};

use super::helper;
use super::url as gurl;
use crate::redact::redact_url;

/// The credential sources for one remote, remembering which were tried.
pub struct Credentials {
    url: String,
    config: Option<git2::Config>,
    url_password: bool,
    helper: bool,
    askpass: bool,
    agent: bool,
    keys: Option<Vec<PathBuf>>,
    tried: Vec<String>,
    missing: Vec<&'static str>,
    calls: u32,
}

/// How often libgit2 may ask before cru gives up, whatever it asks for: a backstop against a
/// transport that keeps asking for the same thing.
const MAX_CALLS: u32 = 32;

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("url", &redact_url(&self.url))
            .field("tried", &self.tried)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Sources for `url`, with `config` for credential helpers and `core.askPass`.
    pub fn new(url: &str, config: Option<git2::Config>) -> Credentials {
        Credentials {
            url: url.to_string(),
            config,
            url_password: false,
            helper: false,
            askpass: false,
            agent: false,
            keys: None,
            tried: Vec::new(),
            missing: Vec::new(),
            calls: 0,
        }
    }

    /// The sources tried so far and those that were not there, for an error message.
    pub fn tried(&self) -> String {
        let tried = if self.tried.is_empty() {
            "none".to_string()
        } else {
            self.tried.join(", ")
        };
        if self.missing.is_empty() {
            tried
        } else {
            format!("{tried}; not found: {}", self.missing.join(", "))
        }
    }

    /// libgit2's credentials callback for `asked` (the URL the transport is talking to): the
    /// next source not tried yet, or an error naming them. Every source holds credentials for
    /// the repository's own origin, so none is given to another one (a server that redirected
    /// elsewhere).
    pub fn next(
        &mut self,
        asked: &str,
        username_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        if !gurl::same_origin(asked, &self.url) {
            return Err(git2::Error::from_str(&format!(
                "the server sent cru on to {} (a redirect?), which asks for credentials: cru \
                 gives a repository's credentials only to its own scheme, host and port ({}); \
                 use the URL the repository really lives at",
                redact_url(&gurl::without_userinfo(asked)),
                origin_text(&self.url)
            )));
        }
        self.calls += 1;
        if self.calls > MAX_CALLS {
            return Err(git2::Error::from_str(&format!(
                "authentication failed after {MAX_CALLS} attempts (credentials tried: {})",
                self.tried()
            )));
        }
        let (url_user, url_password) = gurl::userinfo(&self.url);
        let user = username_from_url.map(str::to_string).or(url_user);
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user.as_deref().unwrap_or("git"));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Some(cred) = self.next_password(user.as_deref(), url_password) {
                return Ok(cred);
            }
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            if let Some(cred) = self.next_key(user.as_deref().unwrap_or("git")) {
                return Ok(cred);
            }
        }
        Err(git2::Error::from_str(&format!(
            "authentication failed (credentials tried: {})",
            self.tried()
        )))
    }

    fn next_password(&mut self, user: Option<&str>, password: Option<String>) -> Option<Cred> {
        if !self.url_password {
            self.url_password = true;
            // `https://TOKEN@host/…`: the token is the user, with an empty password (as git
            // and libgit2 send it when the URL itself reaches them).
            let token = password.is_none()
                && self.url.starts_with("http")
                && gurl::userinfo(&self.url).0.is_some();
            let password = password.or_else(|| token.then(String::new));
            if let (Some(user), Some(password)) = (user, password) {
                self.tried.push(if token {
                    "token in the URL".into()
                } else {
                    "user:password in the URL".into()
                });
                tracing::debug!("trying the user and password of the URL");
                if let Ok(cred) = Cred::userpass_plaintext(user, &password) {
                    return Some(cred);
                }
            } else {
                self.missing.push("user:password in the URL");
            }
        }
        if !self.helper {
            self.helper = true;
            if let Some(config) = &self.config {
                self.tried.push("git credential helpers".into());
                let clean = gurl::without_userinfo(&self.url);
                tracing::debug!("asking the git credential helpers");
                let helpers = helper::GitHelpers::new(config, &clean, user);
                if let Some(cred) = helpers
                    .get()
                    .and_then(|(user, password)| Cred::userpass_plaintext(&user, &password).ok())
                {
                    return Some(cred);
                }
            }
        }
        if !self.askpass {
            self.askpass = true;
            let program = std::env::var("GIT_ASKPASS")
                .ok()
                .filter(|p| !p.is_empty())
                .map(|p| ("GIT_ASKPASS", p))
                .or_else(|| {
                    let config = self.config.as_ref()?;
                    let p = config.get_string("core.askPass").ok()?;
                    Some(("core.askPass", p)).filter(|(_, p)| !p.is_empty())
                });
            if let Some((source, program)) = program {
                self.tried.push(source.into());
                tracing::debug!("asking {source}");
                let shown = gurl::without_userinfo(&self.url);
                let user = match user {
                    Some(u) => u.to_string(),
                    None => askpass(&program, &format!("Username for '{shown}': "))?,
                };
                let password = askpass(&program, &format!("Password for '{shown}': "))?;
                return Cred::userpass_plaintext(&user, &password).ok();
            }
            self.missing.push("GIT_ASKPASS");
        }
        None
    }

    fn next_key(&mut self, user: &str) -> Option<Cred> {
        if !self.agent {
            self.agent = true;
            if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                self.tried.push("ssh-agent".into());
                tracing::debug!("trying the keys of the ssh-agent");
                if let Ok(cred) = Cred::ssh_key_from_agent(user) {
                    return Some(cred);
                }
            } else {
                self.missing.push("ssh-agent (SSH_AUTH_SOCK is not set)");
            }
        }
        let url = self.url.clone();
        if self.keys.is_none() {
            let keys = key_files(&url);
            if keys.is_empty() {
                self.missing
                    .push("key files (IdentityFile in ~/.ssh/config, ~/.ssh/id_ed25519, id_ecdsa, id_rsa)");
            }
            self.keys = Some(keys);
        }
        let keys = self.keys.get_or_insert_with(Vec::new);
        while !keys.is_empty() {
            let key = keys.remove(0);
            self.tried.push(format!("key {}", key.display()));
            tracing::debug!("trying the ssh key {}", key.display());
            let public = key.with_extension(match key.extension() {
                Some(e) => format!("{}.pub", e.to_string_lossy()),
                None => "pub".to_string(),
            });
            let public = public.exists().then_some(public);
            if let Ok(cred) = Cred::ssh_key(user, public.as_deref(), &key, None) {
                return Some(cred);
            }
        }
        None
    }
}

/// `scheme://host:port` of a URL, for messages.
fn origin_text(url: &str) -> String {
    match gurl::origin(url) {
        Some((scheme, host, port)) => format!("{scheme}://{host}:{port}"),
        None => redact_url(url),
    }
}

/// Runs an askpass program with a prompt; its first output line is the answer.
fn askpass(program: &str, prompt: &str) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.arg(prompt);
    let output = helper::run(cmd, b"", helper::HELPER_DEADLINE)?;
    let text = String::from_utf8(output).ok()?;
    Some(text.lines().next().unwrap_or("").to_string())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The key files to try for a URL: `IdentityFile`s of `~/.ssh/config` for its host, then the
/// default ones, each once and only if it exists.
fn key_files(url: &str) -> Vec<PathBuf> {
    let Some(home) = home() else {
        return Vec::new();
    };
    let host = gurl::host(url).unwrap_or_default();
    let mut keys = match std::fs::read_to_string(home.join(".ssh/config")) {
        Ok(text) => identity_files(&text, &host, &home),
        Err(_) => Vec::new(),
    };
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        keys.push(home.join(".ssh").join(name));
    }
    let mut seen = Vec::new();
    keys.retain(|k| {
        let keep = k.is_file() && !seen.contains(k);
        seen.push(k.clone());
        keep
    });
    keys
}

/// The `IdentityFile`s that apply to `host` in an ssh config text, `~` and `%d` expanded.
pub fn identity_files(config: &str, host: &str, home: &Path) -> Vec<PathBuf> {
    let mut applies = true;
    let mut files = Vec::new();
    for line in config.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k,
                v.trim_start_matches(|c: char| c.is_whitespace() || c == '='),
            ),
            None => continue,
        };
        let value = value.trim().trim_matches('"');
        match key.to_ascii_lowercase().as_str() {
            "host" => applies = host_matches(value, host),
            // Match blocks need more than a host name to decide; skip them.
            "match" => applies = false,
            "identityfile" if applies => {
                let home_text = home.to_string_lossy();
                let expanded = match value.strip_prefix("~/") {
                    Some(rest) => format!("{home_text}/{rest}"),
                    None => value.to_string(),
                };
                files.push(PathBuf::from(expanded.replace("%d", &home_text)));
            }
            _ => {}
        }
    }
    files
}

fn host_matches(patterns: &str, host: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split_whitespace() {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, host) => return false,
            Some(_) => {}
            None => matched |= glob(pattern, host),
        }
    }
    matched
}

/// ssh's pattern matching: `*` any run of characters, `?` exactly one.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_files_follow_host_blocks() {
        let config = "\
IdentityFile ~/.ssh/global
Host github.com gitlab.*
    IdentityFile ~/.ssh/gh
Host *.internal !bad.internal
  IdentityFile=%d/.ssh/internal
Match host foo
  IdentityFile ~/.ssh/never
Host *
  IdentityFile \"/abs/key\"
";
        let home = Path::new("/home/u");
        let files = |host| identity_files(config, host, home);
        assert_eq!(
            files("github.com"),
            [
                PathBuf::from("/home/u/.ssh/global"),
                "/home/u/.ssh/gh".into(),
                "/abs/key".into()
            ]
        );
        assert_eq!(
            files("a.internal"),
            [
                PathBuf::from("/home/u/.ssh/global"),
                "/home/u/.ssh/internal".into(),
                "/abs/key".into()
            ]
        );
        assert_eq!(
            files("bad.internal"),
            [PathBuf::from("/home/u/.ssh/global"), "/abs/key".into()]
        );
    }

    #[test]
    fn globs_match_like_ssh() {
        assert!(glob("*", "anything"));
        assert!(glob("gitlab.*", "GitLab.com"));
        assert!(glob("h?st", "host"));
        assert!(!glob("h?st", "hst"));
        assert!(!glob("*.internal", "internal"));
    }

    #[test]
    fn exhausted_sources_are_named_without_secrets() {
        let mut creds = Credentials::new("https://alice:s3cret@127.0.0.1:1/r.git", None);
        let asked = "https://127.0.0.1:1/r.git";
        let first = creds.next(asked, Some("alice"), CredentialType::USER_PASS_PLAINTEXT);
        assert!(first.is_ok());
        let err = loop {
            match creds.next(asked, Some("alice"), CredentialType::USER_PASS_PLAINTEXT) {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert!(err.message().contains("user:password in the URL"), "{err}");
        assert!(!err.message().contains("s3cret"));
        assert!(!format!("{creds:?}").contains("s3cret"));
    }

    #[test]
    fn a_token_as_user_name_is_sent_with_an_empty_password() {
        let mut creds = Credentials::new("https://ghp_t0ken@127.0.0.1:1/r.git", None);
        let asked = "https://127.0.0.1:1/r.git";
        assert!(creds
            .next(asked, None, CredentialType::USER_PASS_PLAINTEXT)
            .is_ok());
        assert_eq!(creds.tried(), "token in the URL");
        let mut ssh = Credentials::new("ssh://git@127.0.0.1:1/r.git", None);
        let _ = ssh.next(
            "ssh://git@127.0.0.1:1/r.git",
            None,
            CredentialType::USER_PASS_PLAINTEXT,
        );
        assert!(ssh.tried().starts_with("none;"), "{}", ssh.tried());
    }

    #[test]
    fn no_credential_goes_to_another_origin() {
        let mut creds = Credentials::new("http://alice:s3cret@127.0.0.1:8080/r.git", None);
        for other in [
            "http://127.0.0.1:8081/r.git",
            "https://127.0.0.1:8080/r.git",
            "http://evil.example/r.git",
        ] {
            let err = creds
                .next(other, Some("alice"), CredentialType::USER_PASS_PLAINTEXT)
                .err()
                .expect("refused");
            assert!(err.message().contains("only to its own"), "{err}");
            assert!(!err.message().contains("s3cret"), "{err}");
        }
        let own = "http://127.0.0.1:8080/r.git/info/refs";
        assert!(creds
            .next(own, None, CredentialType::USER_PASS_PLAINTEXT)
            .is_ok());
    }
}
