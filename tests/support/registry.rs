//! The real CNCF distribution registry (`docker-registry`) and the fault-injecting
//! `registry-proxy`, started on free loopback ports for a test and stopped on drop, plus
//! plain-HTTP pushes of small test images (the registry API, no docker engine).
//!
//! Nothing here skips: a missing binary panics with how to install it.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// `sha256:…` of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

// Also included by `git.rs`, which some tests load without this file.
#[allow(clippy::duplicate_mod)]
#[path = "listen.rs"]
mod listen;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .unwrap()
        .port()
}

/// A running `docker-registry serve`, killed on drop.
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    pusher: Pusher,
}

impl std::ops::Deref for Registry {
    type Target = Pusher;

    fn deref(&self) -> &Pusher {
        &self.pusher
    }
}

/// Pushes test images to a registry over plain HTTP (and reads them back with skopeo).
pub struct Pusher {
    host: String,
    basic: Option<(String, String)>,
    http: reqwest::blocking::Client,
}

impl Registry {
    /// An open registry (no authentication).
    pub fn start() -> Registry {
        Registry::launch(None)
    }

    /// A registry that wants basic authentication with this user and password (htpasswd).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user.to_owned(), password.to_owned())))
    }

    fn launch(basic: Option<(String, String)>) -> Registry {
        let bin = std::env::var_os("CRU_DOCKER_REGISTRY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(REGISTRY_BIN));
        if !bin.exists() {
            panic!(
                "{} not found; the registry tests need the CNCF distribution registry: \
                 install it: apt-get install -y docker-registry",
                bin.display()
            );
        }
        // A port can be taken between finding and binding it; try a few.
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut auth = String::new();
            if let Some((user, password)) = &basic {
                let hash = bcrypt::hash(password, 4).expect("bcrypt");
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: cru-test\n    path: {}\n",
                    htpasswd.display()
                );
            }
            let port = free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n{auth}",
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut registry = Registry {
                child,
                port,
                dir,
                pusher: Pusher::new(&format!("127.0.0.1:{port}"), basic.clone()),
            };
            if registry.wait_ready() {
                return registry;
            }
            last_log = registry_log(registry.dir.path());
        }
        panic!("docker-registry did not start; its log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            // Another process may have taken the port before this registry bound it.
            if !listen::listens_on(self.child.id(), self.port) {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            if let Ok(resp) = self.http.get(format!("{}/v2/", self.url())).send() {
                if resp.status().is_success() || resp.status().as_u16() == 401 {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Tags a manifest already pushed (by `digest`) under each of `tags` by writing the tag
    /// links into the filesystem storage, as a `PUT` would: thousands of tags in a moment
    /// (10,000 PUTs take minutes on a loaded machine). The registry lists tags from these
    /// folders and resolves each through its link.
    pub fn tag_in_storage(&self, repo: &str, digest: &str, tags: &[String]) {
        let manifests = self
            .dir
            .path()
            .join("data/docker/registry/v2/repositories")
            .join(repo)
            .join("_manifests/tags");
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        for tag in tags {
            let tag_dir = manifests.join(tag);
            let index = tag_dir.join("index/sha256").join(hex);
            std::fs::create_dir_all(&index).unwrap();
            std::fs::create_dir_all(tag_dir.join("current")).unwrap();
            std::fs::write(index.join("link"), digest).unwrap();
            std::fs::write(tag_dir.join("current/link"), digest).unwrap();
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Pusher {
    /// A pusher for the plain-HTTP registry at `host` (`127.0.0.1:PORT`).
    pub fn new(host: &str, basic: Option<(String, String)>) -> Pusher {
        Pusher {
            host: host.to_owned(),
            basic,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    fn req(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let req = self.http.request(method, url);
        match &self.basic {
            Some((u, p)) => req.basic_auth(u, Some(p)),
            None => req,
        }
    }

    /// Uploads a blob in one request (POST, then PUT with the digest).
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let resp = self
            .req(
                reqwest::Method::POST,
                &format!("{}/v2/{repo}/blobs/uploads/", self.url()),
            )
            .send()
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            202,
            "start upload: {:?}",
            resp.text()
        );
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url())
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = self
            .req(
                reqwest::Method::PUT,
                &format!("{location}{sep}digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "finish upload: {:?}",
            resp.text()
        );
        digest
    }

    /// Puts a manifest under a tag or digest; returns its digest.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let resp = self
            .req(
                reqwest::Method::PUT,
                &format!("{}/v2/{repo}/manifests/{reference}", self.url()),
            )
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "put manifest: {:?}",
            resp.text()
        );
        let digest = sha256(body);
        assert_eq!(
            resp.headers()["docker-content-digest"].to_str().unwrap(),
            digest
        );
        digest
    }

    /// Pushes a single-platform image with a distinct config per `seed`; returns the manifest
    /// bytes and media type, not yet tagged.
    fn image(&self, repo: &str, seed: &str, docker: bool, arch: &str) -> (Vec<u8>, &'static str) {
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","config":{{"Labels":{{"seed":"{seed}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let layer = format!("layer of {seed} {arch}").into_bytes();
        let config_digest = self.push_blob(repo, config.as_bytes());
        let layer_digest = self.push_blob(repo, &layer);
        let (mt, config_mt, layer_mt) = if docker {
            (
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        } else {
            (
                OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        };
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"{config_mt}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{layer_mt}","digest":"{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        (manifest.into_bytes(), mt)
    }

    /// A single-platform OCI image under each tag; returns its digest.
    pub fn push_oci(&self, repo: &str, seed: &str, tags: &[&str]) -> String {
        let (m, mt) = self.image(repo, seed, false, "amd64");
        self.tag_all(repo, mt, &m, tags)
    }

    /// A Docker v2 schema 2 image under each tag; returns its digest.
    pub fn push_docker(&self, repo: &str, seed: &str, tags: &[&str]) -> String {
        let (m, mt) = self.image(repo, seed, true, "amd64");
        self.tag_all(repo, mt, &m, tags)
    }

    /// A linux/amd64 + linux/arm64/v8 OCI index under each tag; returns the index digest and
    /// the two platform manifest digests.
    pub fn push_index(&self, repo: &str, seed: &str, tags: &[&str]) -> (String, String, String) {
        let mut entries = Vec::new();
        let mut digests = Vec::new();
        for (arch, variant) in [("amd64", ""), ("arm64", r#","variant":"v8""#)] {
            let (m, mt) = self.image(repo, seed, false, arch);
            let d = self.push_manifest(repo, &sha256(&m), mt, &m);
            entries.push(format!(
                r#"{{"mediaType":"{mt}","digest":"{d}","size":{},"platform":{{"architecture":"{arch}","os":"linux"{variant}}}}}"#,
                m.len()
            ));
            digests.push(d);
        }
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            entries.join(",")
        );
        let d = self.tag_all(repo, OCI_INDEX, index.as_bytes(), tags);
        (d, digests.remove(0), digests.remove(0))
    }

    /// A linux/amd64 OCI image whose layers are `layers` (a config distinct per `seed`), under
    /// each tag; returns its digest.
    pub fn push_layers(&self, repo: &str, seed: &str, layers: &[&[u8]], tags: &[&str]) -> String {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"seed":"{seed}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let config_digest = self.push_blob(repo, config.as_bytes());
        let entries: Vec<String> = layers
            .iter()
            .map(|l| {
                let d = self.push_blob(repo, l);
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{}}}"#,
                    l.len()
                )
            })
            .collect();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
            config.len(),
            entries.join(",")
        );
        self.tag_all(repo, OCI_MANIFEST, manifest.as_bytes(), tags)
    }

    /// A buildx-style index under each tag: linux/amd64 and linux/arm64 images, each with an
    /// attestation manifest (`unknown/unknown`, in-toto layer, `vnd.docker.reference.*`
    /// annotations). Returns the index digest and the four manifest digests (amd64, arm64,
    /// then their attestations).
    pub fn push_buildx_index(
        &self,
        repo: &str,
        seed: &str,
        tags: &[&str],
    ) -> (String, Vec<String>) {
        let mut images = Vec::new();
        let mut entries = Vec::new();
        for arch in ["amd64", "arm64"] {
            let (m, mt) = self.image(repo, seed, false, arch);
            let d = self.push_manifest(repo, &sha256(&m), mt, &m);
            entries.push(format!(
                r#"{{"mediaType":"{mt}","digest":"{d}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                m.len()
            ));
            images.push(d);
        }
        let mut attestations = Vec::new();
        for image in images.clone() {
            let statement = format!(
                r#"{{"_type":"https://in-toto.io/Statement/v0.1","subject":[{{"digest":{{"sha256":"{}"}}}}],"predicateType":"https://slsa.dev/provenance/v0.2"}}"#,
                &image[7..]
            );
            let layer = self.push_blob(repo, statement.as_bytes());
            let config = br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
            let config_digest = self.push_blob(repo, config);
            let m = format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.in-toto+json","digest":"{layer}","size":{},"annotations":{{"in-toto.io/predicate-type":"https://slsa.dev/provenance/v0.2"}}}}]}}"#,
                config.len(),
                statement.len()
            );
            let d = self.push_manifest(repo, &sha256(m.as_bytes()), OCI_MANIFEST, m.as_bytes());
            entries.push(format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{},"annotations":{{"vnd.docker.reference.digest":"{image}","vnd.docker.reference.type":"attestation-manifest"}},"platform":{{"architecture":"unknown","os":"unknown"}}}}"#,
                m.len()
            ));
            attestations.push(d);
        }
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            entries.join(",")
        );
        let d = self.tag_all(repo, OCI_INDEX, index.as_bytes(), tags);
        images.extend(attestations);
        (d, images)
    }

    /// A linux/amd64 + linux/arm64 OCI index under each tag whose images each have one large
    /// layer: `layer` followed by the architecture's name. Returns the index digest.
    pub fn push_big_index(&self, repo: &str, seed: &str, layer: &[u8], tags: &[&str]) -> String {
        let mut entries = Vec::new();
        for arch in ["amd64", "arm64"] {
            let mut own = layer.to_vec();
            own.extend_from_slice(arch.as_bytes());
            let config = format!(
                r#"{{"architecture":"{arch}","os":"linux","config":{{"Labels":{{"seed":"{seed}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
            );
            let config_digest = self.push_blob(repo, config.as_bytes());
            let layer_digest = self.push_blob(repo, &own);
            let m = format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_digest}","size":{}}}]}}"#,
                config.len(),
                own.len()
            );
            let d = self.push_manifest(repo, &sha256(m.as_bytes()), OCI_MANIFEST, m.as_bytes());
            entries.push(format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
                m.len()
            ));
        }
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            entries.join(",")
        );
        self.tag_all(repo, OCI_INDEX, index.as_bytes(), tags)
    }

    /// Copies an image out of the registry with skopeo (every platform) into `dest`
    /// (an OCI layout), as an independent reader; panics with skopeo's message if it fails.
    pub fn skopeo_copy_out(&self, repo_ref: &str, dest: &Path) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--all", "--src-tls-verify=false", "--quiet"]);
        if let Some((u, p)) = &self.basic {
            cmd.arg(format!("--src-creds={u}:{p}"));
        }
        let out = cmd
            .arg(format!("docker://{}/{repo_ref}", self.host()))
            .arg(format!("oci:{}:copy", dest.display()))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Whether the registry has a manifest (by tag or digest), asked over HTTP.
    pub fn has_manifest(&self, repo: &str, reference: &str) -> bool {
        let resp = self
            .req(
                reqwest::Method::HEAD,
                &format!("{}/v2/{repo}/manifests/{reference}", self.url()),
            )
            .header(
                "accept",
                format!("{OCI_INDEX}, {OCI_MANIFEST}, {DOCKER_MANIFEST}"),
            )
            .send()
            .unwrap();
        resp.status().is_success()
    }

    fn tag_all(&self, repo: &str, mt: &str, manifest: &[u8], tags: &[&str]) -> String {
        let mut digest = sha256(manifest);
        for tag in tags {
            digest = self.push_manifest(repo, tag, mt, manifest);
        }
        digest
    }

    /// The digest an independent client computes: `skopeo inspect --raw` then sha256.
    pub fn skopeo_digest(&self, repo_tag: &str) -> String {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some((u, p)) = &self.basic {
            cmd.arg(format!("--creds={u}:{p}"));
        }
        let out = cmd
            .arg(format!("docker://{}/{repo_tag}", self.host()))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run skopeo ({e}); install it: apt-get install -y skopeo")
            });
        assert!(
            out.status.success(),
            "skopeo failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        sha256(&out.stdout)
    }
}

fn registry_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `registry-proxy` in front of an upstream, killed on drop.
pub struct Proxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// One logged request: method, path and status (`drop` for dropped connections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: String,
}

impl Proxy {
    /// The proxy at `../shared/tools/registry-proxy` (or `$CRU_REGISTRY_PROXY`) with `args`.
    pub fn start(upstream: &str, args: &[&str]) -> Proxy {
        let script = std::env::var_os("CRU_REGISTRY_PROXY")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/registry-proxy")
            });
        assert!(
            script.exists(),
            "registry-proxy not found at {} (set CRU_REGISTRY_PROXY)",
            script.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let log = dir.path().join("requests.log");
        let child = Command::new("python3")
            .arg(&script)
            .arg("--upstream")
            .arg(upstream)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot run python3 for registry-proxy");
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Ok(port) = text.trim().parse() {
                    break port;
                }
            }
            assert!(Instant::now() < deadline, "registry-proxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Proxy {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The requests logged so far. The proxy writes a request's line after its answer is
    /// sent, so the client can be done before the last line is: wait until the log has not
    /// grown for 100 ms (at most 5 s).
    pub fn requests(&self) -> Vec<Logged> {
        let read = || {
            let mut text = String::new();
            if let Ok(mut f) = std::fs::File::open(&self.log) {
                f.read_to_string(&mut text).unwrap();
            }
            text
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut text = read();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let now = read();
            if now == text || std::time::Instant::now() > deadline {
                text = now;
                break;
            }
            text = now;
        }
        text.lines()
            .filter_map(|line| {
                let mut parts = line.split(' ');
                Some(Logged {
                    method: parts.next()?.to_owned(),
                    path: parts.next()?.to_owned(),
                    status: parts.next()?.to_owned(),
                })
            })
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
