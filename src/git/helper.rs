//! Running the programs that give git credentials: git's credential helpers
//! (`credential.helper`, as git2's `CredentialHelper` reads them) and askpass programs. cru
//! runs them itself rather than through git2, because git2 spawns them with the process's
//! environment and without a bound: here every one gets `GIT_TERMINAL_PROMPT=0` on its own
//! command (so no helper, nor the `git` it may run, waits on a terminal, and cru never
//! changes its own environment), no terminal on stdin, a deadline and a cap on what it prints.
//! What is tried in which order is decided in `auth`.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a helper or askpass program may take.
pub(super) const HELPER_DEADLINE: Duration = Duration::from_secs(30);
/// The most a helper may print; more is refused.
const HELPER_MAX_OUTPUT: u64 = 64 << 10;

/// Runs `cmd` with `input` on stdin and returns its stdout when it exits successfully within
/// `deadline`, printing at most [`HELPER_MAX_OUTPUT`] bytes; `None` otherwise (and the
/// program is killed when it overran).
pub(super) fn run(mut cmd: Command, input: &[u8], deadline: Duration) -> Option<Vec<u8>> {
    let end = Instant::now() + deadline;
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    // Written whole before reading: helpers read their input to the end first, and it is
    // small. A helper that does not read it gets a broken pipe, which is ignored.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let mut stdout = child.stdout.take()?;
    let (sender, read) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let got = (&mut stdout)
            .take(HELPER_MAX_OUTPUT + 1)
            .read_to_end(&mut out);
        let _ = sender.send(got.map(|_| out));
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    // A program it started in the background may hold stdout open: wait no longer than the
    // deadline for it.
    let out = read
        .recv_timeout(end.saturating_duration_since(Instant::now()))
        .ok()?
        .ok()?;
    (status.success() && out.len() as u64 <= HELPER_MAX_OUTPUT).then_some(out)
}

/// git's credential helpers for one URL, as git2's `CredentialHelper` finds and asks them:
/// `credential.<url>.helper`, `credential.<scheme>://<host>.helper`, then `credential.helper`;
/// each asked with `get` until a user name and a password are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GitHelpers {
    commands: Vec<String>,
    protocol: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    path: Option<String>,
    username: Option<String>,
}

impl GitHelpers {
    /// The helpers configured in `config` for `url` (without userinfo); `username` when the
    /// URL or libgit2 names one.
    pub(super) fn new(config: &git2::Config, url: &str, username: Option<&str>) -> GitHelpers {
        let parsed = url::Url::parse(url).ok();
        let protocol = parsed.as_ref().map(|u| u.scheme().to_string());
        let host = parsed.as_ref().and_then(|u| match u.host() {
            Some(url::Host::Domain(d)) => Some(d.to_string()),
            _ => None,
        });
        let port = parsed.as_ref().and_then(url::Url::port);
        let exact = |name: &str| format!("credential.{url}.{name}");
        let by_host = |name: &str| match (&protocol, &host) {
            (Some(p), Some(h)) => Some(format!("credential.{p}://{h}.{name}")),
            _ => None,
        };
        let string = |key: &str| config.get_string(key).ok();
        let username = username.map(str::to_string).or_else(|| {
            string(&exact("username"))
                .or_else(|| by_host("username").and_then(|k| string(&k)))
                .or_else(|| string("credential.username"))
        });
        let commands = [
            string(&exact("helper")),
            by_host("helper").and_then(|k| string(&k)),
            string("credential.helper"),
        ]
        .into_iter()
        .flatten()
        .filter_map(|helper| command(&helper))
        .collect();
        let bool = |key: &str| config.get_bool(key).ok();
        let use_http_path = bool(&exact("useHttpPath"))
            .or_else(|| by_host("useHttpPath").and_then(|k| bool(&k)))
            .or_else(|| bool("credential.useHttpPath"))
            .unwrap_or(false);
        let path = parsed
            .as_ref()
            .filter(|_| use_http_path)
            .map(|u| u.path().trim_start_matches('/').to_string());
        GitHelpers {
            commands,
            protocol,
            host,
            port,
            path,
            username,
        }
    }

    /// Asks each helper in turn; the user name and password, once both are known.
    pub(super) fn get(&self) -> Option<(String, String)> {
        let mut username = self.username.clone();
        let mut password = None;
        for helper in &self.commands {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(format!("{helper} get"));
            let Some(out) = run(cmd, self.input(&username).as_bytes(), HELPER_DEADLINE) else {
                continue;
            };
            let (u, p) = parse_output(&out);
            username = username.or(u);
            password = password.or(p);
            if username.is_some() && password.is_some() {
                break;
            }
        }
        username.zip(password)
    }

    /// What a helper reads on stdin.
    fn input(&self, username: &Option<String>) -> String {
        let mut text = String::new();
        if let Some(p) = &self.protocol {
            text.push_str(&format!("protocol={p}\n"));
        }
        match (&self.host, self.port) {
            (Some(h), Some(port)) => text.push_str(&format!("host={h}:{port}\n")),
            (Some(h), None) => text.push_str(&format!("host={h}\n")),
            _ => {}
        }
        if let Some(p) = &self.path {
            text.push_str(&format!("path={p}\n"));
        }
        if let Some(u) = username {
            text.push_str(&format!("username={u}\n"));
        }
        text
    }
}

/// The shell command for a `credential.helper` value: `!cmd` as written, an absolute path as
/// is, a name as `git credential-NAME`.
fn command(helper: &str) -> Option<String> {
    if helper.is_empty() {
        None
    } else if let Some(shell) = helper.strip_prefix('!') {
        Some(shell.to_string())
    } else if helper.starts_with('/') || helper.starts_with('\\') {
        Some(helper.to_string())
    } else {
        Some(format!("git credential-{helper}"))
    }
}

/// The `username=` and `password=` lines of a helper's answer.
fn parse_output(out: &[u8]) -> (Option<String>, Option<String>) {
    let (mut username, mut password) = (None, None);
    for line in out.split(|b| *b == b'\n') {
        let Some(eq) = line.iter().position(|b| *b == b'=') else {
            continue;
        };
        let Ok(value) = String::from_utf8(line[eq + 1..].to_vec()) else {
            continue;
        };
        match &line[..eq] {
            b"username" => username = Some(value),
            b"password" => password = Some(value),
            _ => {}
        }
    }
    (username, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, git2::Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        let config = git2::Config::open(&path).unwrap();
        (dir, config)
    }

    #[test]
    fn helpers_are_found_as_git2_finds_them() {
        let (_dir, c) = config(
            "[credential \"https://h.example\"]\n\thelper = store --file=/x\n\tusername = bob\n\
             [credential]\n\thelper = \"!f() { echo password=p; }; f\"\n\tuseHttpPath = true\n",
        );
        let h = GitHelpers::new(&c, "https://h.example:8443/org/r.git", None);
        assert_eq!(
            h.commands,
            [
                "git credential-store --file=/x",
                "f() { echo password=p; }; f"
            ]
        );
        assert_eq!(h.username.as_deref(), Some("bob"));
        assert_eq!(
            h.input(&h.username),
            "protocol=https\nhost=h.example:8443\npath=org/r.git\nusername=bob\n"
        );
        assert_eq!(command("/usr/bin/helper"), Some("/usr/bin/helper".into()));
        assert_eq!(command(""), None);
    }

    #[test]
    fn answers_are_read_from_username_and_password_lines() {
        assert_eq!(
            parse_output(b"protocol=https\nusername=u\npassword=p=q\nnoise\n"),
            (Some("u".into()), Some("p=q".into()))
        );
    }

    #[test]
    fn helpers_run_without_a_terminal_prompt_and_their_answers_combine() {
        let (_dir, c) = config(
            "[credential]\n\thelper = \"!f() { read -r _; echo password=$GIT_TERMINAL_PROMPT; }; f\"\n",
        );
        let h = GitHelpers::new(&c, "https://h.example/r", Some("alice"));
        assert_eq!(h.get(), Some(("alice".into(), "0".into())));
    }

    #[test]
    fn a_program_that_overruns_its_deadline_or_prints_too_much_gives_nothing() {
        let mut sleeper = Command::new("sh");
        sleeper.args(["-c", "sleep 30"]);
        assert_eq!(run(sleeper, b"", Duration::from_millis(100)), None);
        let mut flood = Command::new("sh");
        flood.args(["-c", "head -c 100000 /dev/zero"]);
        assert_eq!(run(flood, b"", HELPER_DEADLINE), None);
        let mut fails = Command::new("sh");
        fails.args(["-c", "echo password=p; exit 1"]);
        assert_eq!(run(fails, b"", HELPER_DEADLINE), None);
    }
}
