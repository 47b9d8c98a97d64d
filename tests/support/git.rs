//! Test support for the git layer: a sealed environment per test (HOME, git config, no agent),
//! real repositories made with the `git` command line, and real servers on loopback —
//! `git daemon`, an unprivileged `sshd`, `lighttpd` running `git http-backend` with basic
//! auth — each on a free port and stopped on drop. A missing program fails loudly with the
//! package to install (see `scripts/install-git-test-deps`).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

// Also included by `registry.rs`, which some tests load without this file.
#[allow(clippy::duplicate_mod)]
#[path = "listen.rs"]
mod listen;

/// Fails the test with an install hint when `program` cannot be run.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = if program.contains('/') {
        Some(PathBuf::from(program)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
    };
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is needed by this test but was not found: install it with \
             `apt-get install {package}` (or run scripts/install-git-test-deps)"
        )
    })
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until `child` itself listens on `port`: true when it does, false when it exited
/// (another process took the port first). Panics when it neither listens nor exits in 10 s.
fn wait_for_port(port: u16, child: &mut Child, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if listen::listens_on(child.id(), port) && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 10s");
}

/// Starts a server with `start(port)` on a free port, again on another port when the one
/// picked was taken before the server could bind it.
fn serve_on_free_port(what: &str, mut start: impl FnMut(u16) -> Child) -> Server {
    for _ in 0..5 {
        let port = free_port();
        let mut child = start(port);
        if wait_for_port(port, &mut child, what) {
            return Server { child, port };
        }
        let _ = child.wait();
    }
    panic!("{what} exited early five times: it could not listen on a free port");
}

/// Kills a server on drop.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test's sealed world: a temp dir with a HOME whose git config is the only one read.
pub struct Env {
    pub dir: TempDir,
    pub home: PathBuf,
    /// Extra environment for cru (an agent socket, askpass).
    pub extra: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        require("git", "git");
        let dir = tempfile::Builder::new()
            .prefix("cru-git-test-")
            .tempdir()
            .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::create_dir_all(home.join(".config")).unwrap();
        std::fs::write(home.join(".gitconfig"), "").unwrap();
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::write(home.join(".docker/config.json"), "{}").unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        Env {
            dir,
            home,
            extra: Vec::new(),
        }
    }

    /// What is left in the TMPDIR that cru was given (temporary clones must be removed).
    pub fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn seal(&self, cmd: &mut Command) {
        for var in [
            "SSH_AUTH_SOCK",
            "GIT_ASKPASS",
            "SSH_ASKPASS",
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "GIT_COMMITTER_NAME",
            "GIT_COMMITTER_EMAIL",
            "RUST_LOG",
            "CRU_CONFIG",
            "CRU_REGISTRIES_CONF",
            "REGISTRY_AUTH_FILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", &self.home)
            .env("DOCKER_CONFIG", self.home.join(".docker"))
            .env("GIT_CONFIG_SYSTEM", "/dev/null")
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("TMPDIR", self.dir.path().join("tmp"));
        for (k, v) in &self.extra {
            cmd.env(k, v);
        }
    }

    /// The cru binary, run in the test's temp dir.
    pub fn cru(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cru"));
        self.seal(&mut cmd);
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// Runs `git` in `dir` and returns its stdout; fails the test when git fails.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_output(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn git_output(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("git");
        self.seal(&mut cmd);
        cmd.args(["-c", "user.name=Seed", "-c", "user.email=seed@test"])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("git runs")
    }

    /// A bare repository `name.git` with one commit of `files` on `main`, plus the other
    /// `branches` at the same commit.
    pub fn bare_repo(&self, name: &str, files: &[(&str, &str)], branches: &[&str]) -> PathBuf {
        let bare = self.path(&format!("{name}.git"));
        let seed = self.path(&format!("{name}-seed"));
        self.git(
            self.dir.path(),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        self.git(
            self.dir.path(),
            &["init", "-q", "-b", "main", seed.to_str().unwrap()],
        );
        for (path, text) in files {
            let file = seed.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        self.git(&seed, &["add", "-A"]);
        self.git(&seed, &["commit", "-q", "-m", "initial"]);
        self.git(&seed, &["push", "-q", bare.to_str().unwrap(), "main"]);
        for branch in branches {
            self.git(
                &seed,
                &[
                    "push",
                    "-q",
                    bare.to_str().unwrap(),
                    &format!("main:{branch}"),
                ],
            );
        }
        bare
    }

    /// `git show REV:PATH` in a (bare) repository.
    pub fn show(&self, repo: &Path, rev: &str, path: &str) -> String {
        self.git(repo, &["show", &format!("{rev}:{path}")])
    }

    /// `git rev-parse REV`.
    pub fn rev(&self, repo: &Path, rev: &str) -> String {
        self.git(repo, &["rev-parse", rev]).trim().to_string()
    }

    /// Starts `git daemon` serving the folder of `bare` with pushes enabled.
    pub fn git_daemon(&self, base: &Path) -> Server {
        // The dashed program itself: `git daemon` would run it as a child of its own, which
        // killing `git` leaves behind.
        let program = git_program("git-daemon");
        serve_on_free_port("git daemon", |port| {
            let mut cmd = Command::new(&program);
            self.seal(&mut cmd);
            cmd.args([
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts (apt-get install git)")
        })
    }

    /// Makes an ed25519 key pair at `path` (no passphrase); returns the public key line.
    pub fn keygen(&self, path: &Path) -> String {
        require("ssh-keygen", "openssh-client");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "cru-test", "-f"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(path.with_extension("pub")).unwrap()
    }

    /// Starts an sshd on a free loopback port that lets `authorized` (public key lines) in as
    /// the current user, and records its host key in `~/.ssh/known_hosts`.
    pub fn sshd(&self, authorized: &str) -> Server {
        let sshd = require("/usr/sbin/sshd", "openssh-server");
        let dir = self.path("sshd");
        std::fs::create_dir_all(&dir).unwrap();
        let host_key = dir.join("host_key");
        let host_pub = self.keygen(&host_key);
        let keys = dir.join("authorized_keys");
        std::fs::write(&keys, authorized).unwrap();
        let server = serve_on_free_port("sshd", |port| {
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                     StrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                     PidFile {}\nLogLevel ERROR\n",
                    host_key.display(),
                    keys.display(),
                    dir.join("sshd.pid").display()
                ),
            )
            .unwrap();
            // sshd started as root separates privileges into this folder.
            let _ = std::fs::create_dir_all("/run/sshd");
            Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(dir.join("sshd.log")).unwrap(),
                ))
                .spawn()
                .unwrap()
        });
        let port = server.port;
        let mut parts = host_pub.split_whitespace();
        let (kind, key) = (parts.next().unwrap(), parts.next().unwrap());
        std::fs::write(
            self.home.join(".ssh/known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .unwrap();
        server
    }

    /// Starts an ssh-agent holding `key`; cru gets its socket in SSH_AUTH_SOCK.
    pub fn ssh_agent(&mut self, key: &Path) -> Server {
        let agent = require("ssh-agent", "openssh-client");
        let sock = self.path("agent.sock");
        let child = Command::new(agent)
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = Command::new(require("ssh-add", "openssh-client"))
            .arg(key)
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.extra
            .push(("SSH_AUTH_SOCK".into(), sock.display().to_string()));
        Server { child, port: 0 }
    }

    /// Starts lighttpd on a free port serving the bare repositories under `root` through
    /// `git http-backend` at `/git/`, behind basic auth for `user`:`password`.
    pub fn http_git(&self, root: &Path, user: &str, password: &str) -> Server {
        self.lighttpd(root, user, password, None)
    }

    /// As [`Env::http_git`], over https with a self-signed certificate for 127.0.0.1; returns
    /// the certificate too (for `SSL_CERT_FILE`).
    pub fn https_git(&self, root: &Path, user: &str, password: &str) -> (Server, PathBuf) {
        require("/usr/lib/lighttpd/mod_openssl.so", "lighttpd-mod-openssl");
        let dir = self.path("tls");
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = Command::new(require("openssl", "openssl"))
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tls = format!(
            "server.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\n\
             ssl.pemfile = \"{}\"\nssl.privkey = \"{}\"\n",
            cert.display(),
            key.display()
        );
        (self.lighttpd(root, user, password, Some(&tls)), cert)
    }

    fn lighttpd(&self, root: &Path, user: &str, password: &str, tls: Option<&str>) -> Server {
        let lighttpd = require("/usr/sbin/lighttpd", "lighttpd");
        let backend = git_program("git-http-backend");
        let dir = self.path("lighttpd");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("users"), format!("{user}:{password}\n")).unwrap();
        serve_on_free_port("lighttpd", |port| {
            let config = dir.join("lighttpd.conf");
            std::fs::write(
                &config,
                format!(
                    r#"server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv")
server.document-root = "{dir}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error.log"
server.pid-file = "{dir}/lighttpd.pid"
alias.url = ( "/git/" => "{backend}/" )
$HTTP["url"] =~ "^/git/" {{
    cgi.assign = ( "" => "" )
    setenv.add-environment = (
        "GIT_PROJECT_ROOT" => "{root}",
        "GIT_HTTP_EXPORT_ALL" => "1",
        "GIT_CONFIG_NOSYSTEM" => "1",
        "HOME" => "{dir}",
        "PATH" => "/usr/local/bin:/usr/bin:/bin"
    )
}}
auth.backend = "plain"
auth.backend.plain.userfile = "{dir}/users"
auth.require = ( "/git/" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
{tls}
"#,
                    tls = tls.unwrap_or(""),
                    dir = dir.display(),
                    backend = backend.display(),
                    root = root.display(),
                ),
            )
            .unwrap();
            Command::new(&lighttpd)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(dir.join("stderr.log")).unwrap(),
                ))
                .spawn()
                .unwrap()
        })
    }
}

/// A program of git's own (`git-daemon`, `git-http-backend`) in `git --exec-path`.
fn git_program(name: &str) -> PathBuf {
    let out = Command::new(require("git", "git"))
        .arg("--exec-path")
        .output()
        .unwrap();
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join(name);
    assert!(
        path.is_file(),
        "{name} not found at {}: install it with `apt-get install git`",
        path.display()
    );
    path
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("cru runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An in-process fake server on a free loopback port, for what a real git server cannot be
/// made to do: redirect elsewhere, or accept a connection and then stall. An HTTP answer is
/// written and the connection closed; raw bytes are written and the connection then held
/// open, silent, until the fake is dropped. It records the head of each request it read.
pub struct Fake {
    /// Its port on 127.0.0.1.
    pub port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    held: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What a [`Fake`] does with a connection.
#[derive(Clone, Copy)]
pub enum Answer {
    /// Reads an HTTP request head and answers with what the function makes of it.
    Http(fn(&str, u16) -> String),
    /// Writes these bytes at once (nothing at all when empty), reads nothing.
    Bytes(&'static [u8]),
}

impl Fake {
    /// Starts the fake; `arg` is passed to an [`Answer::Http`] function (e.g. a port).
    pub fn start(answer: Answer, arg: u16) -> Fake {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let fake = Fake {
            port,
            requests: Default::default(),
            held: Default::default(),
            stop: Default::default(),
        };
        let (requests, held, stop) = (fake.requests.clone(), fake.held.clone(), fake.stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                match answer {
                    Answer::Bytes(bytes) => {
                        let _ = conn.write_all(bytes);
                    }
                    Answer::Http(respond) => {
                        let mut reader = BufReader::new(conn.try_clone().unwrap());
                        let mut head = String::new();
                        loop {
                            let mut line = String::new();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => break,
                                Ok(_) if line == "\r\n" || line == "\n" => break,
                                Ok(_) => head.push_str(&line),
                            }
                        }
                        let _ = conn.write_all(respond(&head, arg).as_bytes());
                        requests.lock().unwrap().push(head);
                        // Answered in full: closed (the answers say `Connection: close`).
                        continue;
                    }
                }
                held.lock().unwrap().push(conn);
            }
        });
        fake
    }

    /// The heads of the requests read so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.held.lock().unwrap().clear();
    }
}

/// The path of an HTTP request head's request line.
pub fn request_path(head: &str) -> &str {
    head.split_whitespace().nth(1).unwrap_or("/")
}

#[test]
fn a_port_held_by_another_process_is_not_taken_for_the_servers() {
    // The port is held here; the "server" exits without listening, as one that lost the
    // race for the port does. Connecting succeeds, yet the server is not ready.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut child = Command::new("true").spawn().unwrap();
    assert!(!wait_for_port(
        port,
        &mut child,
        "a server that lost its port"
    ));
}
