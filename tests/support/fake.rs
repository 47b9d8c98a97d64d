//! An in-process fake registry for what the real one cannot be made to do: a bearer-token
//! challenge with a counting token endpoint, a `HEAD` without `Docker-Content-Digest`, and a
//! 429 on a `HEAD`. Never a stand-in for `docker-registry` where that one can do the job.
//!
//! Manifests: every `/v2/REPO/manifests/TAG` exists, with a small body naming REPO and TAG,
//! except the tags `missing` (404), `nodigest` (no digest header) and `limited` (the first
//! request gets 429 with `Retry-After: 1`). `paged/app` has a tag list in pages whose last
//! page links to itself; all its tags but `other` share one digest.
//!
//! [`Hostile`] is a server answering with a test's closure, for registries that lie, stall,
//! flood or send clients elsewhere; with [`forward`] it relays to a real registry and can
//! lose the answer to a request the registry took.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::registry::sha256;

#[derive(Default)]
struct State {
    log: Vec<String>,
    limited_once: bool,
}

/// The fake, serving until dropped.
pub struct FakeRegistry {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

/// The manifest body the fake serves for a repository and tag.
pub fn fake_manifest(repo: &str, tag: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{{"repo":"{repo}","tag":"{tag}"}}}}"#
    )
}

impl FakeRegistry {
    /// Starts the fake on a free loopback port.
    pub fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, port, &s));
            }
        });
        FakeRegistry { port, state, stop }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `METHOD PATH STATUS` per request so far.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(conn: TcpStream, port: u16, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, extra, payload) = answer(&method, &target, &headers, port, state);
        state
            .lock()
            .unwrap()
            .log
            .push(format!("{method} {target} {status}"));
        let mut resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n",
            payload.len()
        );
        for (k, v) in extra {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        let mut bytes = resp.into_bytes();
        if method != "HEAD" {
            bytes.extend_from_slice(payload.as_bytes());
        }
        if out.write_all(&bytes).is_err() {
            return;
        }
    }
}

type Answer = (u16, Vec<(String, String)>, String);

fn answer(
    method: &str,
    target: &str,
    headers: &HashMap<String, String>,
    port: u16,
    state: &Mutex<State>,
) -> Answer {
    let challenge = || {
        (
            401,
            vec![(
                "WWW-Authenticate".to_owned(),
                format!(r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake""#),
            )],
            String::new(),
        )
    };
    if target == "/v2/" {
        return challenge();
    }
    if let Some(query) = target.strip_prefix("/token?") {
        // Widen the window in which concurrent first requests could each ask for a token.
        std::thread::sleep(Duration::from_millis(100));
        let scope = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("scope="))
            .unwrap_or("")
            .replace("%3A", ":")
            .replace("%2F", "/");
        let repo = scope
            .trim_start_matches("repository:")
            .trim_end_matches(":pull%2Cpush")
            .trim_end_matches(":pull");
        return (200, vec![], format!(r#"{{"token":"tok-{repo}"}}"#));
    }
    if let Some(query) = target.strip_prefix("/v2/paged/app/tags/list") {
        if headers.get("authorization").map(String::as_str) != Some("Bearer tok-paged/app") {
            return challenge();
        }
        // Page 2 links to itself: a client that follows blindly never stops.
        let (tags, next) = if query.contains("last=") {
            (r#"["1.2","other"]"#, "/v2/paged/app/tags/list?n=2&last=1")
        } else {
            (r#"["latest","1"]"#, "/v2/paged/app/tags/list?n=2&last=1")
        };
        return (
            200,
            vec![("Link".to_owned(), format!(r#"<{next}>; rel="next""#))],
            format!(r#"{{"name":"paged/app","tags":{tags}}}"#),
        );
    }
    let Some((repo, tag)) = target
        .strip_prefix("/v2/")
        .and_then(|p| p.rsplit_once("/manifests/"))
    else {
        return (404, vec![], String::new());
    };
    if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer tok-{repo}")) {
        return challenge();
    }
    // In `paged/app` every tag but `other` is one image.
    let body = match (repo, tag) {
        ("paged/app", t) if t != "other" => fake_manifest(repo, "shared"),
        _ => fake_manifest(repo, tag),
    };
    let mut extra = vec![(
        "Content-Type".to_owned(),
        "application/vnd.oci.image.manifest.v1+json".to_owned(),
    )];
    match tag {
        "missing" => {
            return (
                404,
                vec![],
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.into(),
            )
        }
        "limited" => {
            let mut s = state.lock().unwrap();
            if !s.limited_once {
                s.limited_once = true;
                return (429, vec![("Retry-After".into(), "1".into())], String::new());
            }
        }
        _ => {}
    }
    if tag != "nodigest" {
        extra.push(("Docker-Content-Digest".to_owned(), sha256(body.as_bytes())));
    }
    let _ = method;
    (200, extra, body)
}

/// One request as a [`Hostile`] server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `HEAD`.
    pub method: String,
    /// The request target, `/v2/…?…`.
    pub target: String,
    /// Headers, names lowercased.
    pub headers: HashMap<String, String>,
    /// The body (as `Content-Length` gave it).
    pub body: Vec<u8>,
}

/// What a [`Hostile`] server does with a request.
pub enum Reply {
    /// An ordinary answer: status, headers, body (not sent for `HEAD`).
    Answer(u16, Vec<(String, String)>, Vec<u8>),
    /// Reads the request and never answers (the connection stays open until the test ends).
    Silence,
    /// A `200` with a chunked body of `total` bytes of `byte`, written as fast as it is read.
    Chunked(Vec<(String, String)>, u8, usize),
    /// A `200` whose `Content-Length` is the body's, but only the first `n` bytes are sent
    /// before the connection is closed: a body that breaks off.
    Truncated(Vec<(String, String)>, Vec<u8>, usize),
    /// These bytes, as they are: a whole answer (from [`forward`]).
    Raw(Vec<u8>),
    /// The connection is closed without an answer: an answer lost in transit.
    Hangup,
}

/// Passes `seen` on to the server at `upstream` (`IP:PORT`, a real registry) and returns its
/// whole answer, raw (empty if it closed without one). The `Host` header is kept, so that the locations the registry builds
/// from it point back at the relay.
pub fn forward(upstream: &str, seen: &Seen) -> Vec<u8> {
    let mut conn = TcpStream::connect(upstream).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{} {} HTTP/1.1\r\n", seen.method, seen.target);
    for (k, v) in &seen.headers {
        if !matches!(k.as_str(), "connection" | "content-length" | "keep-alive") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n",
        seen.body.len()
    ));
    conn.write_all(head.as_bytes()).unwrap();
    // A registry may answer (and close) before it has read the body: keep its answer.
    let _ = conn.write_all(&seen.body);
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    answer
}

impl Reply {
    /// A `200` JSON answer.
    pub fn json(body: impl Into<String>) -> Reply {
        Reply::Answer(
            200,
            vec![("Content-Type".into(), "application/json".into())],
            body.into().into_bytes(),
        )
    }
}

type Handler = dyn Fn(&Seen, u16) -> Reply + Send + Sync;

/// A loopback server that answers with a test's closure: for registries that lie, stall,
/// flood or point elsewhere. Serves until dropped; [`Hostile::seen`] lists the requests.
pub struct Hostile {
    ip: &'static str,
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    /// Starts on a free port of 127.0.0.1; the handler gets each request and the port.
    pub fn start(handler: impl Fn(&Seen, u16) -> Reply + Send + Sync + 'static) -> Hostile {
        Hostile::start_on("127.0.0.1", handler)
    }

    /// Starts on a free port of another loopback address (`127.0.0.2`): another host.
    pub fn start_on(
        ip: &'static str,
        handler: impl Fn(&Seen, u16) -> Reply + Send + Sync + 'static,
    ) -> Hostile {
        let handler: Arc<Handler> = Arc::new(handler);
        Hostile::listen(ip, move |conn, port, seen| {
            serve_hostile(conn, port, seen, &*handler)
        })
    }

    /// A server that writes `bytes` to every connection and closes it, without reading an
    /// HTTP request: a TLS client gets garbage instead of a handshake.
    pub fn raw(bytes: &'static [u8]) -> Hostile {
        Hostile::listen("127.0.0.1", move |mut conn, _, _| {
            let _ = conn.write_all(bytes);
        })
    }

    fn listen(
        ip: &'static str,
        serve: impl Fn(TcpStream, u16, &Mutex<Vec<Seen>>) + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(serve);
        let (s, c, st) = (seen.clone(), connections.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                *c.lock().unwrap() += 1;
                let (s, serve) = (s.clone(), serve.clone());
                std::thread::spawn(move || serve(conn, port, &s));
            }
        });
        Hostile {
            ip,
            port,
            seen,
            connections,
            stop,
        }
    }

    /// `IP:PORT`.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The connections accepted so far.
    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((self.ip, self.port));
    }
}

fn serve_hostile(conn: TcpStream, port: u16, seen: &Mutex<Vec<Seen>>, handler: &Handler) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Seen {
            method,
            target,
            headers,
            body,
        };
        seen.lock().unwrap().push(request.clone());
        match handler(&request, port) {
            Reply::Answer(status, extra, payload) => {
                let mut resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n",
                    payload.len()
                );
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                let mut bytes = resp.into_bytes();
                if request.method != "HEAD" {
                    bytes.extend_from_slice(&payload);
                }
                if out.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::Truncated(extra, payload, n) => {
                let mut resp = format!("HTTP/1.1 200 X\r\nContent-Length: {}\r\n", payload.len());
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                let mut bytes = resp.into_bytes();
                bytes.extend_from_slice(&payload[..n.min(payload.len())]);
                let _ = out.write_all(&bytes);
                let _ = out.shutdown(std::net::Shutdown::Both);
                return;
            }
            Reply::Raw(bytes) => {
                if out.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::Hangup => {
                let _ = out.shutdown(std::net::Shutdown::Both);
                return;
            }
            Reply::Silence => {
                // Hold the connection without a word until the client gives up.
                let mut sink = [0; 1024];
                while reader.get_mut().read(&mut sink).unwrap_or(0) > 0 {}
                return;
            }
            Reply::Chunked(extra, byte, total) => {
                let mut resp = "HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n".to_owned();
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                if out.write_all(resp.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![byte; 64 << 10];
                let mut left = total;
                while left > 0 {
                    let n = left.min(chunk.len());
                    let mut piece = format!("{n:x}\r\n").into_bytes();
                    piece.extend_from_slice(&chunk[..n]);
                    piece.extend_from_slice(b"\r\n");
                    if out.write_all(&piece).is_err() {
                        return;
                    }
                    left -= n;
                }
                if out.write_all(b"0\r\n\r\n").is_err() {
                    return;
                }
            }
        }
    }
}
