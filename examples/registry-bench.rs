//! The driver of `scripts/bench-registry`: pushes benchmark images and times resolutions.
//!
//! ```text
//! registry-bench push HOST REPOS TAGS        # REPOS repositories bench/rN with TAGS tags each
//! registry-bench push-many-tags HOST REPO N  # one repository with N tags, 4 sharing a digest
//! registry-bench digests [--jobs N] < refs   # resolve_digests, prints the wall time
//! registry-bench tags [--jobs N] < refs      # resolve_tags, prints the wall time
//! registry-bench hostile KIND [N]            # one lookup against a hostile loopback fake
//! ```
//! Hostile fakes (KIND): `silent` accepts and never answers; `chunked` omits
//! `Docker-Content-Digest` and answers the manifest GET with N MiB (default 600) of `A`s,
//! chunked; `tags` lists N tags (default 300000) in one page. Run it under
//! `/usr/bin/time -v` for the peak RSS.
//! A benchmark prints figures; it is not a test. It will give way to `cru update` once the
//! command line resolves digests.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

// The test support modules, at the crate root so that `fake`'s `super::registry` resolves.
#[path = "../tests/support/fake.rs"]
#[allow(dead_code)]
mod fake;
#[path = "../tests/support/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::io::BufRead as _;
use std::time::Instant;

use cru::reference::Reference;
use cru::registry::{Resolver, ResolverOptions};

fn main() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_else(|| usage());
    match arg(0) {
        "push" => {
            let pusher = registry::Pusher::new(arg(1), None);
            let (repos, tags): (usize, usize) = (num(arg(2)), num(arg(3)));
            for r in 0..repos {
                let names: Vec<String> = (0..tags).map(|t| format!("t{t}")).collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                pusher.push_oci(&format!("bench/r{r}"), &format!("seed{r}"), &names);
            }
        }
        "push-many-tags" => {
            let pusher = registry::Pusher::new(arg(1), None);
            let n: usize = num(arg(3));
            pusher.push_oci(arg(2), "same", &["latest", "3", "3.2", "3.2.4"]);
            let others: Vec<String> = (4..n).map(|i| format!("1.{i}")).collect();
            let others: Vec<&str> = others.iter().map(String::as_str).collect();
            pusher.push_docker(arg(2), "other", &others);
        }
        mode @ ("digests" | "tags") => {
            let jobs = match (args.get(1).map(String::as_str), args.get(2)) {
                (Some("--jobs"), Some(n)) => num(n),
                _ => cru::registry::DEFAULT_JOBS,
            };
            let refs: Vec<Reference> = std::io::stdin()
                .lock()
                .lines()
                .map(|l| l.expect("read stdin"))
                .filter(|l| !l.trim().is_empty())
                .map(|l| Reference::parse(l.trim()).expect("a reference per line"))
                .collect();
            let resolver = Resolver::new(ResolverOptions {
                jobs,
                ..ResolverOptions::default()
            })
            .expect("resolver");
            let start = Instant::now();
            let count = if mode == "digests" {
                resolver.resolve_digests(&refs).map(|d| d.len())
            } else {
                resolver.resolve_tags(&refs).map(|t| {
                    if let Some(first) = t.first() {
                        eprintln!("best tag {} of {}", first.best, first.matching.join(", "));
                    }
                    t.len()
                })
            };
            let wall = start.elapsed();
            match count {
                Ok(n) => println!(
                    "resolved {n} references in {} ms (jobs {jobs})",
                    wall.as_millis()
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        "hostile" => hostile(arg(1), args.get(2).map(|n| num(n))),
        _ => usage(),
    }
}

/// One lookup against a hostile fake: prints the wall time, the outcome and the requests.
fn hostile(kind: &str, n: Option<usize>) {
    use fake::{Hostile, Reply};
    let digest = format!("sha256:{}", "a".repeat(64));
    let fake = match kind {
        "silent" => Hostile::start(|_, _| Reply::Silence),
        "chunked" => {
            let total = n.unwrap_or(600) << 20;
            Hostile::start(move |seen, _| match seen.method.as_str() {
                "GET" if seen.target.contains("/manifests/") => Reply::Chunked(
                    vec![(
                        "Content-Type".into(),
                        "application/vnd.oci.image.manifest.v1+json".into(),
                    )],
                    b'A',
                    total,
                ),
                _ => Reply::Answer(200, vec![], Vec::new()),
            })
        }
        "tags" => {
            let n = n.unwrap_or(300_000);
            let page: String = (0..n)
                .map(|i| format!("\"t{i}\""))
                .collect::<Vec<_>>()
                .join(",");
            let page = format!(r#"{{"name":"app","tags":["latest",{page}]}}"#);
            let digest = digest.clone();
            Hostile::start(move |seen, _| {
                if seen.target.contains("/tags/list") {
                    Reply::json(page.clone())
                } else {
                    Reply::Answer(
                        200,
                        vec![("Docker-Content-Digest".into(), digest.clone())],
                        Vec::new(),
                    )
                }
            })
        }
        _ => usage(),
    };
    let reference = Reference::parse(&format!("{}/app:latest", fake.host())).expect("reference");
    let resolver = Resolver::new(ResolverOptions::default()).expect("resolver");
    let start = Instant::now();
    let outcome = if kind == "tags" {
        resolver
            .resolve_tags(std::slice::from_ref(&reference))
            .map(|t| format!("best tag {} of {} matching", t[0].best, t[0].matching.len()))
    } else {
        resolver
            .resolve_digests(std::slice::from_ref(&reference))
            .map(|d| format!("digest {}", d[0]))
    };
    let wall = start.elapsed();
    let seen = fake.seen();
    let count = |m: &str, p: &str| {
        seen.iter()
            .filter(|s| s.method == m && s.target.contains(p))
            .count()
    };
    println!(
        "{kind}: {} ms; {}; requests {} (manifest HEAD {}, manifest GET {}, tag list {})",
        wall.as_millis(),
        match outcome {
            Ok(o) => o,
            Err(e) => format!("error: {e}"),
        },
        seen.len(),
        count("HEAD", "/manifests/"),
        count("GET", "/manifests/"),
        count("GET", "/tags/list"),
    );
}

fn num(s: &str) -> usize {
    s.parse().unwrap_or_else(|_| usage())
}

fn usage() -> ! {
    eprintln!("usage: registry-bench push HOST REPOS TAGS | push-many-tags HOST REPO N | digests|tags [--jobs N] < refs | hostile silent|chunked|tags [N]");
    std::process::exit(2)
}
