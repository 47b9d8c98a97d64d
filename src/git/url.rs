//! Repository locations as the user types them: classifying them (local path, `file://`,
//! network URL, scp-like `git@host:org/repo.git`) and redacting the secrets in them before
//! they reach a message. Pure functions over strings; nothing here touches the network.

use std::path::PathBuf;

use crate::redact::redact_url;

/// Where a repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local path to a working tree (or somewhere inside one): opened in place.
    Path(PathBuf),
    /// A URL to clone: `file://`, `https://`, `http://`, `ssh://`, `git://` or scp-like.
    Remote(String),
}

impl Location {
    /// Classifies what the user typed as `--repository`.
    pub fn parse(text: &str) -> Location {
        if text.contains("://") || is_scp_like(text) {
            Location::Remote(text.to_string())
        } else {
            Location::Path(PathBuf::from(text))
        }
    }
}

/// Whether `text` is an scp-like ssh location (`[user@]host:path`), as git decides: a colon
/// before any slash, and not a Windows drive letter.
pub fn is_scp_like(text: &str) -> bool {
    if text.contains("://") {
        return false;
    }
    match (text.find(':'), text.find('/')) {
        (Some(colon), slash) => colon > 1 && slash.is_none_or(|s| colon < s),
        (None, _) => false,
    }
}

/// The local repository a `file://` URL points to, if it is one.
pub fn file_url_path(text: &str) -> Option<PathBuf> {
    let rest = text.strip_prefix("file://")?;
    let decoded = url::Url::parse(text)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .unwrap_or_else(|| PathBuf::from(rest));
    Some(decoded)
}

/// The user name and password written in a URL (`https://user:password@host/…`), decoded.
pub fn userinfo(text: &str) -> (Option<String>, Option<String>) {
    if is_scp_like(text) {
        let user = text.split_once('@').map(|(u, _)| u.to_string());
        return (user, None);
    }
    let Ok(url) = url::Url::parse(text) else {
        return (None, None);
    };
    let decode = |s: &str| percent_decode(s).unwrap_or_else(|| s.to_string());
    let user = Some(url.username()).filter(|u| !u.is_empty()).map(decode);
    let password = url.password().map(decode);
    (user, password)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URL without user name and password, as handed to credential helpers.
pub fn without_userinfo(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if !is_scp_like(text) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => text.to_string(),
    }
}

/// The URL handed to libgit2 and kept in a clone's `.git/config`: no password ever, and no
/// user name in an http(s) URL (where it is often a token). The secrets are given through the
/// credentials callback from memory instead, and only to the URL's own origin.
pub fn connect_url(text: &str) -> String {
    if is_scp_like(text) || !text.contains("://") {
        return text.to_string();
    }
    match url::Url::parse(text) {
        Ok(mut url) => {
            let _ = url.set_password(None);
            if url.scheme().starts_with("http") {
                let _ = url.set_username("");
            }
            url.to_string()
        }
        // Unparsable: libgit2 will refuse it too; never hand on what may be a secret.
        Err(_) => redact_url(text),
    }
}

/// A URL's origin: scheme, host and port (the scheme's default when none is written);
/// scp-like locations are ssh on port 22.
pub fn origin(text: &str) -> Option<(String, String, u16)> {
    if is_scp_like(text) {
        return host(text).map(|h| ("ssh".to_string(), h.to_ascii_lowercase(), 22));
    }
    let url = url::Url::parse(text).ok()?;
    let scheme = url.scheme().to_ascii_lowercase();
    let port = url.port_or_known_default().or(match scheme.as_str() {
        "ssh" | "git+ssh" | "ssh+git" => Some(22),
        "git" => Some(9418),
        _ => None,
    })?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some((scheme, host, port))
}

/// Whether two URLs have the same origin (scheme, host and port); an unparsable one has none.
pub fn same_origin(a: &str, b: &str) -> bool {
    match (origin(a), origin(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Replaces every secret of `url` (its password, raw and decoded) in `message` by `***`:
/// messages from libgit2 and helpers may quote what they were given.
pub fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, &redact_url(url));
    let (user, password) = userinfo(url);
    let raw_password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .and_then(|auth| auth.rsplit_once('@'))
        .and_then(|(info, _)| info.split_once(':'))
        .map(|(_, p)| p.to_string());
    for secret in [password, raw_password].into_iter().flatten() {
        if !secret.is_empty() {
            out = out.replace(&secret, "***");
        }
    }
    if url.starts_with("http") && userinfo(url).1.is_none() {
        if let Some(token) = user.filter(|u| u.len() >= 8) {
            out = out.replace(&token, "***");
        }
    }
    out
}

/// The host of a URL (`host` of `ssh://git@host:22/x`, of `git@host:x`), for ssh config.
pub fn host(text: &str) -> Option<String> {
    if is_scp_like(text) {
        let after_user = text.split_once('@').map_or(text, |(_, h)| h);
        return after_user.split_once(':').map(|(h, _)| h.to_string());
    }
    url::Url::parse(text)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_classified_like_git_does() {
        let remote = |s: &str| Location::Remote(s.to_string());
        assert_eq!(
            Location::parse("git@github.com:org/repo.git"),
            remote("git@github.com:org/repo.git")
        );
        assert_eq!(Location::parse("host:repo"), remote("host:repo"));
        assert_eq!(
            Location::parse("https://h/r.git"),
            remote("https://h/r.git")
        );
        assert_eq!(
            Location::parse("file:///tmp/r.git"),
            remote("file:///tmp/r.git")
        );
        assert_eq!(
            Location::parse("ssh://git@h:2222/r"),
            remote("ssh://git@h:2222/r")
        );
        assert_eq!(Location::parse("."), Location::Path(".".into()));
        assert_eq!(Location::parse("./a:b"), Location::Path("./a:b".into()));
        assert_eq!(
            Location::parse("/srv/repo"),
            Location::Path("/srv/repo".into())
        );
        assert_eq!(Location::parse("C:"), Location::Path("C:".into()));
    }

    #[test]
    fn scrub_removes_raw_and_decoded_passwords() {
        let url = "https://alice:p%40ss@host/r.git";
        let msg = format!("failed for {url}: bad p@ss and p%40ss");
        let clean = scrub(&msg, url);
        assert_eq!(clean, "failed for https://***@host/r.git: bad *** and ***");
    }

    #[test]
    fn userinfo_is_decoded() {
        assert_eq!(
            userinfo("https://alice:p%40ss@host/r"),
            (Some("alice".into()), Some("p@ss".into()))
        );
        assert_eq!(userinfo("git@host:o/r"), (Some("git".into()), None));
        assert_eq!(userinfo("https://host/r"), (None, None));
        assert_eq!(without_userinfo("https://a:b@host/r"), "https://host/r");
    }

    #[test]
    fn connect_urls_hold_no_secret() {
        assert_eq!(
            connect_url("https://alice:s3cret@h:8443/r.git"),
            "https://h:8443/r.git"
        );
        assert_eq!(connect_url("https://ghp_token@h/r.git"), "https://h/r.git");
        assert_eq!(
            connect_url("ssh://git:pw@h:2222/r.git"),
            "ssh://git@h:2222/r.git"
        );
        assert_eq!(connect_url("ssh://git@h/r.git"), "ssh://git@h/r.git");
        assert_eq!(connect_url("git@h:o/r.git"), "git@h:o/r.git");
        assert_eq!(connect_url("/srv/r.git"), "/srv/r.git");
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(
            "http://a:b@127.0.0.1:8080/x",
            "http://127.0.0.1:8080/y/info/refs"
        ));
        assert!(!same_origin(
            "http://127.0.0.1:8080/x",
            "http://127.0.0.1:8081/x"
        ));
        assert!(!same_origin("http://h/x", "https://h/x"));
        assert!(!same_origin("https://h/x", "https://evil/x"));
        assert!(same_origin("https://H/x", "https://h:443/x"));
        assert!(same_origin("git@h:o/r", "ssh://git@h/o/r"));
        assert!(same_origin("ssh://git@h:2222/r", "ssh://h:2222/other"));
        assert!(!same_origin("ssh://git@h:2222/r", "ssh://h/r"));
        assert!(!same_origin("not a url", "not a url"));
    }

    #[test]
    fn hosts_are_found() {
        assert_eq!(host("git@github.com:o/r").as_deref(), Some("github.com"));
        assert_eq!(host("ssh://git@h:2222/r").as_deref(), Some("h"));
        assert_eq!(host("https://h/r").as_deref(), Some("h"));
    }

    #[test]
    fn file_urls_become_paths() {
        assert_eq!(
            file_url_path("file:///tmp/a%20b.git"),
            Some("/tmp/a b.git".into())
        );
        assert_eq!(file_url_path("https://h/r"), None);
    }
}
