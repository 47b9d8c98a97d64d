//! The command line as the user types it (clap definitions), kept apart from the settings
//! the program runs with. The flags follow binxio's Go tool `cru` so users can switch.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::reference::Reference;
use crate::registry::Platform;
use crate::version::Level;

/// cru finds container image references in files and updates them in place.
#[derive(Debug, Parser)]
#[command(name = "cru", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the image references found in files.
    List(ListArgs),
    /// Update image references in files.
    Update(UpdateArgs),
    /// Report references that break a pinning policy (exit 1 if any).
    Check(CheckArgs),
    /// List references with a newer version: the newest their policy allows and the newest
    /// per level (exit 1 if any is outdated, 3 if a lookup failed).
    Outdated(OutdatedArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), generated from these definitions.
    Man,
    /// Serve updates of a git repository over HTTP (POST / with the references to set).
    Serve(ServeArgs),
    /// Check cru's configuration file (`.cru.yaml`) or show the settings in effect.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Copy the images the files use (or the named ones) into another registry, by digest.
    Mirror(MirrorArgs),
}

/// `cru config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file: exit 0 when it is valid, 2 with `FILE:LINE:COLUMN: message`
    /// when not.
    Validate(ValidateArgs),
    /// Show the settings in effect here, each with where it came from (a flag, the
    /// environment, FILE:LINE of the configuration file, or the default).
    Show(ShowArgs),
}

/// `cru config show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scan: ScanArgs,
}

/// Which configuration file to read.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// Read this configuration file [default: $CRU_CONFIG, else .cru.yaml or .cru.yml at the
    /// top of the git repository that holds the first PATH, else in that folder]
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Read no configuration file.
    #[arg(long)]
    pub no_config: bool,
}

/// `cru config validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The file [default: $CRU_CONFIG, else .cru.yaml or .cru.yml at the top of the git
    /// repository that holds the current folder, else in the current folder]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Options shared by every subcommand that scans files.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Show more of what cru does (every reference it updates).
    #[arg(short, long)]
    pub verbose: bool,

    /// Only find names with a `/` (`bitnami/nginx:1`, `gcr.io/p/app:1`), as the Go tool does;
    /// without it, official images like `nginx:1.25` are found in image contexts too
    /// (Dockerfile FROM, `image:` keys, `docker://`).
    #[arg(long)]
    pub qualified_only: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArgs,

    /// Files and folders to scan [default: .]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// How `list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ListFormat {
    /// `path:reference` lines, sorted and de-duplicated per file.
    #[default]
    Text,
    /// One JSON object per occurrence: file, line, column, reference and its normalised parts.
    Json,
}

/// `cru list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the references without the file names.
    #[arg(long)]
    pub no_filename: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scan: ScanArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub git: RepositoryArgs,
}

/// `cru update`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("selection").required(true).args(["all", "image_reference", "bump"]))]
pub struct UpdateArgs {
    /// Print a diff of what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Like --dry-run, and exit 1 if anything would change (for CI).
    #[arg(long)]
    pub check: bool,

    /// Update every reference found: to `latest` (digests dropped), or with --matching-tag to
    /// the same tag.
    #[arg(long)]
    pub all: bool,

    /// Set every reference with the same repository to this reference's tag and digest
    /// (repeatable). Names compare normalised: `nginx` is `docker.io/library/nginx`.
    #[arg(long = "image-reference", value_name = "REF", value_parser = parse_reference)]
    pub image_reference: Vec<Reference>,

    /// Only update references whose tag equals the new reference's tag (refreshes digests).
    #[arg(long)]
    pub matching_tag: bool,

    /// Pin each reference to the digest its tag points at now (`name:tag@sha256:…`).
    #[arg(long)]
    pub resolve_digest: bool,

    /// Replace each tag by the most specific tag with the same digest (`latest` → `3.2.4`).
    #[arg(long)]
    pub resolve_tag: bool,

    /// Move each reference to the newest tag its policy allows: `patch` (same major.minor),
    /// `minor` (same major) or `major` (any newer version); the default for references that
    /// no `# cru: bump=LEVEL` marker or `.cru.yaml` rule gives a level. A pinned reference
    /// gets the new tag's digest.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level, conflicts_with_all = ["matching_tag", "resolve_tag"])]
    pub bump: Option<Level>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scan: ScanArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub git: GitUpdateArgs,
}

/// `--repository` and `--branch`: work in a git repository instead of the current folder.
#[derive(Debug, Clone, Default, Args)]
pub struct RepositoryArgs {
    /// Work in this git repository: a local path (updated in place), or a URL to clone into a
    /// temporary directory (file://, https://, ssh://, git@host:org/repo.git). PATHs are then
    /// relative to the repository's root.
    #[arg(long, value_name = "URL")]
    pub repository: Option<String>,

    /// The branch to check out [default: the remote's default branch]
    #[arg(long, value_name = "BRANCH", requires = "repository")]
    pub branch: Option<String>,
}

/// The git options of `cru update`.
#[derive(Debug, Clone, Default, Args)]
pub struct GitUpdateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub repo: RepositoryArgs,

    /// Commit the files cru changed (and only those) with this message; a cloned repository
    /// is then pushed.
    #[arg(long, value_name = "MESSAGE", requires = "repository")]
    pub commit: Option<String>,

    /// Author and committer name [default: git config user.name, else cru]
    #[arg(long, value_name = "NAME", requires = "commit")]
    pub username: Option<String>,

    /// Author and committer email [default: git config user.email, else cru@localhost]
    #[arg(long, value_name = "EMAIL", requires = "commit")]
    pub email: Option<String>,

    /// Push the commit of a local repository to its branch's upstream.
    #[arg(long, requires = "commit")]
    pub push: bool,
}

/// How registries are reached, for the commands that look things up.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Resolve to this platform's own manifest instead of the multi-platform index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,

    /// Registry requests in flight at most [default: 16]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,

    /// Mirrors and insecure registries (containers-registries.conf v2) [default:
    /// $CRU_REGISTRIES_CONF, the configuration's registries-conf,
    /// ~/.config/containers/registries.conf, /etc/containers/registries.conf]
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
}

/// How `check` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CheckFormat {
    /// `file:line:column: message` lines.
    #[default]
    Text,
    /// One JSON object per finding.
    Json,
    /// GitHub Actions workflow commands, shown inline on pull requests.
    Github,
}

/// `cru check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Every reference must be pinned to a digest (the default when no policy is given here
    /// or in the configuration's `check.require`).
    #[arg(long)]
    pub require_digest: bool,

    /// Every reference must have a tag (a bare digest tells a reader nothing).
    #[arg(long)]
    pub require_tag: bool,

    /// Report pinned references whose tag now points at another digest (asks the registries).
    #[arg(long)]
    pub stale: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub registry: RegistryArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: CheckFormat,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scan: ScanArgs,
}

/// `cru outdated`.
#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// The level allowed for references that no `# cru: bump=LEVEL` marker or `.cru.yaml`
    /// rule gives one: `patch`, `minor` or `major`.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level, default_value = "major")]
    pub bump: Level,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub registry: RegistryArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: CheckFormat,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scan: ScanArgs,
}

/// `cru serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Answer requests without changing the repository: report the files that would change.
    #[arg(long)]
    pub dry_run: bool,

    /// The port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// The address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub listen: std::net::IpAddr,

    /// The git repository to update: a URL (or a path) that is cloned once at start.
    #[arg(long, value_name = "URL", required = true)]
    pub repository: String,

    /// The branch to update [default: the remote's default branch]
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,

    /// Author and committer name [default: git config user.name, else cru]
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,

    /// Author and committer email [default: git config user.email, else cru@localhost]
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,

    /// A file holding the bearer token clients must send [default: $CRU_SERVE_TOKEN]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Serve without authentication (only behind something that authenticates for you).
    #[arg(long)]
    pub insecure_no_auth: bool,

    /// Only accept references whose repository (normalised, e.g.
    /// `docker.io/library/nginx`) matches one of these regular expressions in full
    /// (repeatable); others are refused with 403.
    #[arg(long, value_name = "REGEX")]
    pub allow: Vec<String>,

    /// The largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub max_body: usize,

    /// The most connections open at once; past it the oldest idle one is closed.
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// How long a request waits for its update, in seconds: 503 if it has not started by
    /// then, 504 if it has not finished; also the time a client has to send a body, and the
    /// grace period at shutdown.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scan: ScanArgs,
}

/// `cru mirror`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mirror_mode").args(["dry_run", "check"]))]
pub struct MirrorArgs {
    /// The registry, and a repository prefix, to copy into: `docker.io/library/python` goes to
    /// `REGISTRY/PREFIX/library/python` [default: `mirror.to` of .cru.yaml]
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub to: Option<crate::mirror::Destination>,

    /// After every copy succeeded, point the files at the copies, pinned
    /// (`python:3.7` → `REGISTRY/PREFIX/library/python:3.7@sha256:…`); with --dry-run, print
    /// the diff; with --check, exit 1 if a file does not point at its copy.
    #[arg(long)]
    pub rewrite: bool,

    /// Copy only this platform's manifest, and tag it, instead of the whole index
    /// (repeatable; with several, the manifests are copied by digest and not tagged).
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]")]
    pub platforms: Vec<Platform>,

    /// Also copy each image's referrers: OCI 1.1 referrers (the referrers API, else the
    /// `sha256-<hex>` tag) and cosign's `.sig`, `.att`, `.sbom` tags.
    #[arg(long)]
    pub referrers: bool,

    /// Say what would be copied (images, blobs, bytes); write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Exit 1 if an image is missing from the target (or its tag points elsewhere); copy
    /// nothing.
    #[arg(long)]
    pub check: bool,

    /// Mirror this image (repeatable) instead of the ones found under PATHs.
    #[arg(long = "image-reference", value_name = "REF", value_parser = parse_reference)]
    pub image_reference: Vec<Reference>,

    /// Registry requests in flight at most [default: 16, or `jobs:` of .cru.yaml]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,

    /// Stop before a source's pull limit (Docker Hub's `ratelimit-remaining`) drops below N.
    #[arg(long, value_name = "N", default_value_t = crate::mirror::DEFAULT_MIN_RATELIMIT)]
    pub min_ratelimit: u64,

    /// Mirrors and insecure registries (containers-registries.conf v2); mirrors are read
    /// from, never pushed to [default: as for update]
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub scan: ScanArgs,
}

/// `cru completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

fn parse_reference(text: &str) -> Result<Reference, String> {
    Reference::parse(text).map_err(|e| e.to_string())
}

fn parse_level(text: &str) -> Result<Level, String> {
    text.parse()
}
