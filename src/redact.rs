//! Redacting URLs before they are shown: the one function every message, log line and answer
//! that names a URL goes through (git remotes, registry requests, token realms, mirror
//! targets). It works on the text, not on a parsed URL, so that an unparsable URL is redacted
//! too. It does not scrub secrets out of free text (see `git::url::scrub` for libgit2's
//! messages).

/// Query parameters whose value is a secret or a signature (compared in lower case, as part of
/// the name: `access_token`, `X-Amz-Signature`, `X-Amz-Credential`, `client_secret`…).
const SECRET_PARAMETERS: &[&str] = &[
    "token",
    "signature",
    "secret",
    "password",
    "passwd",
    "credential",
    "auth",
    "key",
];

/// The URL as it may be shown.
///
/// - Userinfo becomes `***` as a whole (`https://user:pw@host/…` and `https://TOKEN@host/…`
///   both show as `https://***@host/…`): a user name is often a token, and a name next to a
///   password is as good as half of it.
/// - The one exception is a bare user name in an ssh URL (`ssh://git@host/…`): ssh never
///   takes a secret there, and it is what a reader needs to tell keys apart. scp-like
///   locations (`git@host:org/repo`) and paths are shown as written.
/// - The value of a query parameter that names a secret or a signature (`token`, `sig`,
///   `X-Amz-Signature`, `access_token`…) becomes `***`, as a presigned blob URL carries one.
pub fn redact_url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return text.to_string();
    }
    // Userinfo ends at the last `@` before the path.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        None => authority.to_string(),
        Some(at) => {
            let userinfo = &authority[..at];
            let ssh = scheme.to_ascii_lowercase().contains("ssh");
            let shown = if ssh && !userinfo.contains(':') {
                userinfo
            } else {
                "***"
            };
            format!("{shown}{}", &authority[at..])
        }
    };
    format!("{scheme}://{authority}{}", redact_query(tail))
}

/// `tail` (path, query and fragment) with the values of secret query parameters replaced.
fn redact_query(tail: &str) -> String {
    let Some(question) = tail.find('?') else {
        return tail.to_string();
    };
    let (path, after) = tail.split_at(question);
    let after = &after[1..];
    let (query, fragment) = match after.find('#') {
        Some(hash) => after.split_at(hash),
        None => (after, ""),
    };
    let parameters: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_secret_parameter(name) => {
                format!("{name}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}{fragment}", parameters.join("&"))
}

fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "sig" || SECRET_PARAMETERS.iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_becomes_stars_as_a_whole() {
        assert_eq!(
            redact_url("https://user:s3cret@host/r.git"),
            "https://***@host/r.git"
        );
        assert_eq!(
            redact_url("https://ghp_token@host/r.git"),
            "https://***@host/r.git"
        );
        assert_eq!(
            redact_url("https://u:p@ss@host/x@y"),
            "https://***@host/x@y"
        );
        assert_eq!(redact_url("https://u:p@h/x@y"), "https://***@h/x@y");
        assert_eq!(
            redact_url("http://alice:pw@127.0.0.1:80/r"),
            "http://***@127.0.0.1:80/r"
        );
        // Unparsable, still redacted.
        assert_eq!(redact_url("https://a:b@[::/x"), "https://***@[::/x");
    }

    #[test]
    fn an_ssh_user_name_alone_stays_and_a_password_goes() {
        assert_eq!(
            redact_url("ssh://git@host:22/r.git"),
            "ssh://git@host:22/r.git"
        );
        assert_eq!(
            redact_url("ssh://git:pw@host/r.git"),
            "ssh://***@host/r.git"
        );
        assert_eq!(
            redact_url("git+ssh://git:pw@host/r.git"),
            "git+ssh://***@host/r.git"
        );
    }

    #[test]
    fn urls_without_secrets_are_shown_as_written() {
        assert_eq!(redact_url("https://host/r.git"), "https://host/r.git");
        assert_eq!(redact_url("https://h/x"), "https://h/x");
        assert_eq!(redact_url("git@host:org/r.git"), "git@host:org/r.git");
        assert_eq!(redact_url("/tmp/repo"), "/tmp/repo");
        assert_eq!(redact_url("h/x"), "h/x");
        assert_eq!(redact_url(""), "");
        assert_eq!(
            redact_url("https://auth/token?scope=repository:a/b:pull&service=r"),
            "https://auth/token?scope=repository:a/b:pull&service=r"
        );
    }

    #[test]
    fn secret_query_values_are_redacted() {
        assert_eq!(
            redact_url("https://s3/blob?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc&x=1#f"),
            "https://s3/blob?X-Amz-Credential=***&X-Amz-Signature=***&x=1#f"
        );
        assert_eq!(
            redact_url("https://cdn/b?sig=abc&se=2020&access_token=t"),
            "https://cdn/b?sig=***&se=2020&access_token=***"
        );
        assert_eq!(redact_url("https://h/x?token="), "https://h/x?token=");
        assert_eq!(
            redact_url("https://u:p@h?token=t"),
            "https://***@h?token=***"
        );
    }
}
