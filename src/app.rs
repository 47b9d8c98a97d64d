//! Running a parsed command line: turning what the user typed into settings (the flags and
//! the environment as [`Layers`], merged with `.cru.yaml` by [`crate::settings`]), calling the
//! commands and deciding the exit status. Nothing here prints: results go to the writer the
//! binary passes in, progress to the [`crate::report::Log`] reporter.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::bump::BumpResolve;
use crate::check::{self, Policy};
use crate::cli::{
    CheckArgs, CheckFormat, Cli, Command, ConfigCommand, ListArgs, ListFormat, MirrorArgs,
    OutdatedArgs, RegistryArgs, ScanArgs, ServeArgs, ShowArgs, UpdateArgs,
};
use crate::config;
use crate::git::{self, Checkout, CommitSpec};
use crate::inventory::Inventory;
use crate::list::{self, Format, ListOptions};
use crate::outdated;
use crate::plan::{ConflictError, Rules, Selection};
use crate::reference::Reference;
use crate::registry::{Resolver, SetupError};
use crate::report::{Event, Log, Reporter, Silent};
use crate::resolve::{Lookups, RegistryResolve};
use crate::scan::Scanner;
use crate::serve::{self, ServeError, ServeOptions};
use crate::settings::{Environment, Flags, Layers, Settings};
use crate::update::{self, Offline, UpdateError, UpdateOptions};

/// How a run ended, mapped to the process exit code (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything worked.
    Success = 0,
    /// `check` found references that break the policy, or `update --check` would change files.
    Findings = 1,
    /// The command line or its input was wrong.
    Usage = 2,
    /// Something failed while running: a file, a registry, git.
    Failure = 3,
}

/// What stops a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PATH does not exist.
    #[error("{}: no such file or directory", crate::inventory::escape_path(.0))]
    NoSuchPath(PathBuf),
    /// Conflicting `--image-reference`s.
    #[error(transparent)]
    Conflict(#[from] ConflictError),
    /// The update failed and wrote nothing.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The registry settings or credentials could not be read, or the client not started.
    #[error(transparent)]
    Registry(#[from] SetupError),
    /// Registry lookups failed (each was reported).
    #[error("{0} registry lookups failed")]
    Lookups(usize),
    /// Results could not be written.
    #[error("writing output")]
    Output(#[from] io::Error),
    /// Cloning, committing or pushing failed.
    #[error(transparent)]
    Git(#[from] git::GitError),
    /// `cru serve` could not start or stopped with an error.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// An option's value is unusable (a token file, a pattern).
    #[error("{0}")]
    Invalid(String),
    /// The configuration file cannot be used.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A PATH leads out of the repository given with `--repository`.
    #[error("{}: outside the repository {repository}", crate::inventory::escape_path(.path))]
    OutsideRepository {
        /// The PATH.
        path: PathBuf,
        /// The repository, redacted.
        repository: String,
    },
}

impl Error {
    /// The exit status for this error.
    pub fn status(&self) -> Status {
        match self {
            Error::NoSuchPath(_)
            | Error::Conflict(_)
            | Error::OutsideRepository { .. }
            | Error::Invalid(_)
            | Error::Config(_)
            | Error::Serve(ServeError::OutsideRepository { .. }) => Status::Usage,
            Error::Registry(SetupError::Config(_) | SetupError::Auth(_)) => Status::Usage,
            Error::Registry(_)
            | Error::Lookups(_)
            | Error::Update(_)
            | Error::Output(_)
            | Error::Serve(_)
            | Error::Git(_) => Status::Failure,
        }
    }

    /// Whether this is only the reader of our output going away (`cru list | head`).
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Error::Output(e) => e.kind() == io::ErrorKind::BrokenPipe,
            Error::Update(UpdateError::Output(e)) => e.kind() == io::ErrorKind::BrokenPipe,
            _ => false,
        }
    }
}

/// Whether `--verbose` was given to the subcommand.
pub fn verbose(cli: &Cli) -> bool {
    match &cli.command {
        Command::List(a) => a.scan.verbose,
        Command::Update(a) => a.scan.verbose,
        Command::Check(a) => a.scan.verbose,
        Command::Outdated(a) => a.scan.verbose,
        Command::Serve(a) => a.scan.verbose,
        Command::Mirror(a) => a.scan.verbose,
        Command::Completions(_) | Command::Man | Command::Config(_) => false,
    }
}

/// Runs the command; results go to `out`. The environment is read here, once.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<Status, Error> {
    let env = Environment::from_process();
    match cli.command {
        Command::List(args) if args.git.repository.is_some() => list_in_repository(args, &env, out),
        Command::Update(args) if args.git.repo.repository.is_some() => {
            update_in_repository(args, &env, out)
        }
        Command::List(args) => run_list(args, &env, None, out),
        Command::Update(args) => run_update(args, &env, out),
        Command::Check(args) => run_check(args, &env, out),
        Command::Outdated(args) => run_outdated(args, &env, out),
        Command::Completions(args) => {
            clap_complete::generate(args.shell, &mut Cli::command(), "cru", out);
            Ok(Status::Success)
        }
        Command::Serve(args) => run_serve(args, &env),
        Command::Mirror(args) => run_mirror(args, &env, out),
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(out)?;
            Ok(Status::Success)
        }
        Command::Config(ConfigCommand::Validate(args)) => validate_config(args.file, &env, out),
        Command::Config(ConfigCommand::Show(args)) => show_config(args, &env, out),
    }
}

/// `cru config show`: the settings in effect for the first PATH (or here), with origins.
fn show_config(args: ShowArgs, env: &Environment, out: &mut dyn Write) -> Result<Status, Error> {
    let layers = layers(&args.scan, Some(&args.registry), None, env);
    let settings = layers.settings(&start(&args.scan))?;
    out.write_all(settings.show().as_bytes())?;
    Ok(Status::Success)
}

/// The flags that are settings, and the environment.
fn layers(
    scan: &ScanArgs,
    registry: Option<&RegistryArgs>,
    require: Option<Policy>,
    env: &Environment,
) -> Layers {
    Layers {
        flags: Flags {
            config: scan.config.config.clone(),
            no_config: scan.config.no_config,
            qualified_only: scan.qualified_only,
            jobs: registry.and_then(|r| r.jobs),
            registries_conf: registry.and_then(|r| r.registries_conf.clone()),
            platform: registry.and_then(|r| r.platform.clone()),
            require,
            mirror_to: None,
        },
        env: env.clone(),
    }
}

/// Where the configuration file is looked for: from the first PATH, else here.
fn start(scan: &ScanArgs) -> PathBuf {
    scan.paths
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `cru config validate`: the file named, else the one discovery finds from here.
fn validate_config(
    file: Option<PathBuf>,
    env: &Environment,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let how = config::Discovery {
        explicit: file,
        env: env.config.clone(),
        disabled: false,
    };
    let Some(path) = config::discover(&how, Path::new(".")) else {
        return Err(Error::Invalid(format!(
            "no configuration file found: none of {} at the top of the repository or in \
             the current folder, and no $CRU_CONFIG",
            config::FILE_NAMES.join(", ")
        )));
    };
    let loaded = config::load(&path)?;
    writeln!(
        out,
        "{}: valid ({} rules)",
        crate::inventory::display_path(&path),
        loaded.rules.len()
    )?;
    Ok(Status::Success)
}

/// The roots to walk (the PATHs, below `base` when working in a repository's tree), the
/// settings (the configuration file found from the first of them) and the scanner they ask
/// for.
fn roots_and_settings(
    scan: &ScanArgs,
    layers: &Layers,
    base: Option<&Path>,
) -> Result<(Vec<PathBuf>, Settings, Scanner), Error> {
    let typed = if scan.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        scan.paths.clone()
    };
    let roots: Vec<PathBuf> = match base {
        Some(base) => typed
            .iter()
            .map(|p| {
                if p == Path::new(".") {
                    base.to_path_buf()
                } else {
                    base.join(p)
                }
            })
            .collect(),
        None => typed.clone(),
    };
    if let Some(i) = roots.iter().position(|p| !p.exists()) {
        return Err(Error::NoSuchPath(typed[i].clone()));
    }
    let settings = layers.settings(&roots[0])?;
    let scanner = settings.scanner();
    Ok((roots, settings, scanner))
}

/// `cru list`; in a repository's working tree at `base` with `--repository`.
fn run_list(
    args: ListArgs,
    env: &Environment,
    base: Option<&Path>,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let layers = layers(&args.scan, None, None, env);
    let (roots, settings, scanner) = roots_and_settings(&args.scan, &layers, base)?;
    let inventory = Inventory::take_in(&roots, &scanner, &settings.scope(), base);
    for err in &inventory.errors {
        Log.report(Event::Error(err.to_string()));
    }
    let options = ListOptions {
        format: match args.format {
            ListFormat::Text => Format::Text,
            ListFormat::Json => Format::Json,
        },
        no_filename: args.no_filename,
    };
    list::write(&inventory, options, out)?;
    Ok(if inventory.errors.is_empty() {
        Status::Success
    } else {
        Status::Failure
    })
}

fn run_update(args: UpdateArgs, env: &Environment, out: &mut dyn Write) -> Result<Status, Error> {
    let layers = layers(&args.scan, Some(&args.registry), None, env);
    let (roots, settings, scanner) = roots_and_settings(&args.scan, &layers, None)?;
    let options = UpdateOptions {
        rules: update_rules(&args)?,
        dry_run: args.dry_run || args.check,
        scope: settings.scope(),
        confine: None,
    };
    let summary = match update_resolve(&args, &settings)? {
        Some(resolver) => update::run(&roots, &scanner, &options, resolver.as_ref(), out)?,
        None => update::run(&roots, &scanner, &options, &Offline, out)?,
    };
    if !options.dry_run && !summary.files.is_empty() {
        // The Go tool's last line, which scripts grep for: plain `update` never commits.
        Log.report(Event::NotCommitted);
    }
    Ok(if args.check && !summary.files.is_empty() {
        Status::Findings
    } else {
        Status::Success
    })
}

/// The update rules the command line asks for.
fn update_rules(args: &UpdateArgs) -> Result<Rules, Error> {
    if let Some(level) = args.bump {
        return Ok(Rules::bump(level));
    }
    let selection = if args.all {
        Selection::All
    } else {
        Selection::References(args.image_reference.clone())
    };
    Ok(Rules::new(selection, args.matching_tag)?)
}

/// The resolver of an update: the bump's with `--bump`, else the registry's when lookups
/// may be needed, else none.
fn update_resolve(
    args: &UpdateArgs,
    settings: &Settings,
) -> Result<Option<Box<dyn update::Resolve>>, Error> {
    if args.bump.is_some() {
        let bump = BumpResolve::new(resolver(settings)?, args.resolve_digest);
        return Ok(Some(Box::new(bump)));
    }
    Ok(registry_resolve(args, settings)?.map(|r| Box::new(r) as Box<dyn update::Resolve>))
}

/// The registry resolver, when `--resolve-digest`, `--resolve-tag` or a `pin: digest` rule of
/// the configuration may ask for lookups.
fn registry_resolve(
    args: &UpdateArgs,
    settings: &Settings,
) -> Result<Option<RegistryResolve>, Error> {
    let lookups = Lookups {
        digest: args.resolve_digest,
        tag: args.resolve_tag,
    };
    if !(lookups.digest || lookups.tag || settings.pins_digests()) {
        return Ok(None);
    }
    Ok(Some(RegistryResolve::new(resolver(settings)?, lookups)))
}

fn resolver(settings: &Settings) -> Result<Resolver, Error> {
    Ok(Resolver::new(settings.resolver_options())?)
}

/// Asks the registries what the tags of pinned references point at now.
fn stale_findings(
    inventory: &Inventory,
    settings: &Settings,
) -> Result<Vec<check::Finding>, Error> {
    let mut pinned: Vec<Reference> = inventory
        .files
        .iter()
        .flat_map(|f| &f.refs)
        .map(|r| &r.occurrence.reference)
        .filter(|r| r.tag().is_some() && r.digest().is_some())
        .map(|r| r.with(r.tag(), None))
        .collect();
    pinned.sort_by_key(|r| (r.normalized_name(), r.tag().map(str::to_owned)));
    pinned.dedup_by_key(|r| (r.normalized_name(), r.tag().map(str::to_owned)));
    if pinned.is_empty() {
        return Ok(Vec::new());
    }
    let mut now = std::collections::HashMap::new();
    let mut failed = 0;
    for (r, outcome) in pinned.iter().zip(resolver(settings)?.digests_each(&pinned)) {
        match outcome {
            Ok(digest) => {
                Log.report(Event::ResolvedDigest {
                    name: r.normalized_name(),
                    tag: r.tag().unwrap_or_default().to_owned(),
                    digest: digest.clone(),
                });
                now.insert((r.normalized_name(), r.tag().map(str::to_owned)), digest);
            }
            Err(e) => {
                Log.report(Event::Error(e.to_string()));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Error::Lookups(failed));
    }
    let current = |r: &Reference| {
        now.get(&(r.normalized_name(), r.tag().map(str::to_owned)))
            .cloned()
    };
    Ok(check::stale_findings(inventory, &current))
}

fn run_check(args: CheckArgs, env: &Environment, out: &mut dyn Write) -> Result<Status, Error> {
    let require = (args.require_digest || args.require_tag).then_some(Policy {
        require_digest: args.require_digest,
        require_tag: args.require_tag,
    });
    let layers = layers(&args.scan, Some(&args.registry), require, env);
    let (roots, settings, scanner) = roots_and_settings(&args.scan, &layers, None)?;
    let scope = settings.scope();
    let inventory = Inventory::take_in(&roots, &scanner, &scope, None);
    for err in &inventory.errors {
        Log.report(Event::Error(err.to_string()));
    }
    let mut findings = check::policy_findings(&inventory, settings.check.value, &scope);
    if args.stale {
        findings.extend(stale_findings(&inventory, &settings)?);
        findings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
    let format = match args.format {
        CheckFormat::Text => check::Format::Text,
        CheckFormat::Json => check::Format::Json,
        CheckFormat::Github => check::Format::Github,
    };
    check::write(&findings, format, out)?;
    if !inventory.errors.is_empty() {
        return Ok(Status::Failure);
    }
    Log.report(Event::Checked {
        references: inventory.distinct_references(),
        findings: findings.len(),
    });
    Ok(if findings.is_empty() {
        Status::Success
    } else {
        Status::Findings
    })
}

/// `cru outdated`: one tag list per repository, compared with each reference's policy.
fn run_outdated(
    args: OutdatedArgs,
    env: &Environment,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let layers = layers(&args.scan, Some(&args.registry), None, env);
    let (roots, settings, scanner) = roots_and_settings(&args.scan, &layers, None)?;
    let scope = settings.scope();
    let inventory = Inventory::take_in(&roots, &scanner, &scope, None);
    for err in &inventory.errors {
        tracing::error!("{err}");
    }
    let plan =
        outdated::plan(&inventory, &scope, args.bump).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut lists = std::collections::HashMap::new();
    let mut failed = 0;
    if !plan.repositories.is_empty() {
        let resolver = resolver(&settings)?;
        for (r, list) in plan
            .repositories
            .iter()
            .zip(resolver.tag_lists(&plan.repositories))
        {
            match list {
                Ok(tags) => {
                    lists.insert(r.normalized_name(), tags);
                }
                Err(e) => {
                    tracing::error!("{e}");
                    failed += 1;
                }
            }
        }
    }
    let rows = outdated::report(&plan, &|name| lists.get(name).cloned());
    let format = match args.format {
        CheckFormat::Text => check::Format::Text,
        CheckFormat::Json => check::Format::Json,
        CheckFormat::Github => check::Format::Github,
    };
    outdated::write(&rows, format, out)?;
    if failed > 0 {
        return Err(Error::Lookups(failed));
    }
    if !inventory.errors.is_empty() {
        return Ok(Status::Failure);
    }
    let count = rows.iter().filter(|r| r.is_outdated()).count();
    tracing::info!(
        "{} image references compared, {count} outdated",
        plan.items.len()
    );
    Ok(if count > 0 {
        Status::Findings
    } else {
        Status::Success
    })
}

// --- git: `--repository`, `--branch`, `--commit` (see docs/git.md) ---

/// PATHs are relative to the repository's root and must stay inside it.
fn paths_inside(checkout: &Checkout, scan: &ScanArgs) -> Result<(), Error> {
    match scan.paths.iter().find(|p| checkout.is_outside(p)) {
        Some(path) => Err(Error::OutsideRepository {
            path: path.clone(),
            repository: checkout.shown().to_string(),
        }),
        None => Ok(()),
    }
}

fn list_in_repository(
    args: ListArgs,
    env: &Environment,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let repository = args.git.repository.as_deref().unwrap_or(".");
    let checkout = Checkout::new(repository, args.git.branch.as_deref())?;
    paths_inside(&checkout, &args.scan)?;
    // PATHs are below the working tree, files shown relative to it; the clone's own
    // configuration file is found from inside it.
    run_list(args, env, Some(checkout.workdir()), out)
}

fn update_in_repository(
    args: UpdateArgs,
    env: &Environment,
    out: &mut dyn Write,
) -> Result<Status, Error> {
    let git_args = &args.git;
    let repository = git_args.repo.repository.as_deref().unwrap_or(".");
    let checkout = Checkout::new(repository, git_args.repo.branch.as_deref())?;
    paths_inside(&checkout, &args.scan)?;
    // The settings of the checkout: its own configuration file, found from inside it.
    let base = checkout.workdir().to_path_buf();
    let layers = layers(&args.scan, Some(&args.registry), None, env);
    let (roots, settings, scanner) = roots_and_settings(&args.scan, &layers, Some(&base))?;
    let scope = settings.scope();
    let rules = update_rules(&args)?;
    // Built once: a retry after someone else pushed asks the registries (and their caches)
    // again through the same client.
    let registry = update_resolve(&args, &settings)?;
    let resolve: &dyn update::Resolve = match &registry {
        Some(r) => r.as_ref(),
        None => &Offline,
    };
    let commit = git_args.commit.as_ref().map(|message| CommitSpec {
        message: message.clone(),
        name: git_args.username.clone(),
        email: git_args.email.clone(),
        push: git_args.push,
    });
    // `--check` is a dry run whose exit status says whether files would change.
    let asked_dry = args.dry_run || args.check;
    let outcome = checkout.update(commit.as_ref(), asked_dry, |workdir, dry_run| {
        let job = update::Job {
            roots: &roots,
            base: Some(&base),
            scanner: &scanner,
            rules: &rules,
            scope: &scope,
            confine: Some(workdir),
            resolver: resolve,
            dry_run,
            // cru's own preview is silent: its lines would read like a --dry-run.
            reporter: if dry_run && !asked_dry { &Silent } else { &Log },
        };
        // A dry run that cru makes for itself (to check the files it would change) shows
        // nothing; the user's --dry-run shows its diff.
        let mut sink = io::sink();
        let out: &mut dyn Write = if dry_run && !asked_dry {
            &mut sink
        } else {
            &mut *out
        };
        let summary = job.run(out)?;
        Ok(summary.paths)
    })?;
    tracing::debug!("git outcome: {outcome:?}");
    if let git::Outcome::NotCommitted(_) = outcome {
        // The Go tool's last line, which scripts grep for.
        Log.report(Event::NotCommitted);
    }
    Ok(match outcome {
        git::Outcome::DryRun(_) if args.check => Status::Findings,
        _ => Status::Success,
    })
}

// --- `cru serve` (see src/serve) ---

/// The environment variable holding `cru serve`'s token when `--token-file` is not given.
pub const TOKEN_VARIABLE: &str = crate::settings::SERVE_TOKEN_VARIABLE;

fn run_serve(args: ServeArgs, env: &Environment) -> Result<Status, Error> {
    let token = serve_token(&args, env)?;
    let allow =
        serve::api::allow_list(&args.allow).map_err(|e| Error::Invalid(format!("--allow: {e}")))?;
    let layers = layers(&args.scan, Some(&args.registry), None, env);
    // Fail at start, not on the first request, when the registry settings of the flags and
    // the environment are unusable; each request adds the repository's configuration file.
    if let Some(path) = &layers.flags.config {
        config::load(path)?;
    }
    Resolver::new(Settings::merge(&layers, None).resolver_options())?;
    serve::run(ServeOptions {
        listen: std::net::SocketAddr::new(args.listen, args.port),
        repository: args.repository,
        branch: args.branch,
        token,
        allow,
        max_body: args.max_body,
        max_connections: args.max_connections as usize,
        worker: serve::worker::Settings {
            dry_run: args.dry_run,
            paths: args.scan.paths,
            layers,
            name: args.username,
            email: args.email,
            request_timeout: std::time::Duration::from_secs(args.request_timeout),
        },
    })?;
    Ok(Status::Success)
}

/// The token from `--token-file`, else `$CRU_SERVE_TOKEN`; none is an error unless
/// `--insecure-no-auth` says so.
fn serve_token(args: &ServeArgs, env: &Environment) -> Result<Option<String>, Error> {
    let token = match &args.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Invalid(format!("--token-file {}: {e}", path.display())))?;
            let token = text.trim().to_string();
            if token.is_empty() {
                return Err(Error::Invalid(format!(
                    "--token-file {}: the file is empty",
                    path.display()
                )));
            }
            Some(token)
        }
        None => env.serve_token.clone(),
    };
    if token.is_none() && !args.insecure_no_auth {
        return Err(Error::Invalid(format!(
            "cru serve needs a token that clients send as `Authorization: Bearer <token>`: give \
             --token-file FILE or set ${TOKEN_VARIABLE} (or, behind a proxy that \
             authenticates, --insecure-no-auth)"
        )));
    }
    Ok(token)
}

/// `cru mirror`: the images named or found, copied (or checked) into `--to`.
fn run_mirror(args: MirrorArgs, env: &Environment, out: &mut dyn Write) -> Result<Status, Error> {
    use crate::mirror::{self, Mode, Outcome};
    let mut layers = layers(&args.scan, None, None, env);
    layers.flags.registries_conf = args.registries_conf.clone();
    layers.flags.jobs = args.jobs;
    layers.flags.mirror_to = args.to.clone();
    let (roots, settings, scanner) = roots_and_settings(&args.scan, &layers, None)?;
    let Some(to) = settings.mirror_to.value.clone() else {
        return Err(Error::Invalid(
            "cru mirror needs a target: give --to REGISTRY[/PREFIX], or `mirror: {to: …}` in \
             .cru.yaml"
                .into(),
        ));
    };
    let scans = args.image_reference.is_empty() || !args.scan.paths.is_empty();
    if args.rewrite && !scans {
        return Err(Error::Invalid(
            "--rewrite points the files under PATHs at the copies: give the PATHs (with \
             --image-reference, only those images are copied and nothing is rewritten)"
                .into(),
        ));
    }
    if args.rewrite && args.platforms.len() > 1 {
        return Err(Error::Invalid(
            "--rewrite with several --platform: a reference names one manifest; give one \
             --platform, or none to copy (and point at) the whole index"
                .into(),
        ));
    }
    let mut refs = args.image_reference.clone();
    if scans {
        let inventory = Inventory::take_in(&roots, &scanner, &settings.scope(), None);
        for err in &inventory.errors {
            Log.report(Event::Error(err.to_string()));
        }
        if !inventory.errors.is_empty() {
            // Copy nothing from a tree that was not read whole.
            return Ok(Status::Failure);
        }
        let found = inventory.files.iter().flat_map(|f| &f.refs);
        refs.extend(found.map(|r| r.occurrence.reference.clone()));
    }
    let plan = mirror::plan(&refs, &to, settings.mirror_map())
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let mode = match (args.dry_run, args.check) {
        (true, _) => Mode::DryRun,
        (_, true) => Mode::Check,
        _ => Mode::Copy,
    };
    let options = mirror::MirrorOptions {
        registries_conf: settings.registries_conf.value.clone(),
        docker_config: settings.docker_config.clone(),
        platforms: args.platforms.clone(),
        mode,
        jobs: usize::from(settings.jobs.value),
        min_ratelimit: args.min_ratelimit,
        referrers: args.referrers,
        ..mirror::MirrorOptions::default()
    };
    let run = mirror::copy(&plan, options)?;
    let mut missing = false;
    for image in &run.images {
        match image {
            Ok(r) => {
                let verb = match (r.outcome, mode) {
                    (Outcome::Copied, _) => "copied",
                    (Outcome::Present, _) => "present",
                    (Outcome::Missing, Mode::DryRun) => "would copy",
                    (Outcome::Missing, _) => "missing",
                };
                missing |= r.outcome == Outcome::Missing;
                writeln!(out, "{verb} {} -> {}", r.source, r.target)?;
            }
            Err(e) => Log.report(Event::Error(e.to_string())),
        }
    }
    writeln!(out, "{}", run.summary.line(mode))?;
    if run.summary.images_failed > 0 {
        if args.rewrite {
            Log.report(Event::Error(
                "an image was not mirrored: no file was rewritten".into(),
            ));
        }
        return Ok(Status::Failure);
    }
    let mut stale = false;
    if args.rewrite {
        let reports: Vec<mirror::ImageReport> =
            run.images.into_iter().filter_map(Result::ok).collect();
        let rewrite = mirror::Rewrite::new(&plan, &reports);
        stale = rewrite_files(&roots, &scanner, &settings, &rewrite, mode, out)?;
    }
    Ok(if mode == Mode::Check && (missing || stale) {
        Status::Findings
    } else {
        Status::Success
    })
}

/// `cru mirror --rewrite`: the files pointed at the copies through the one update path; a
/// dry run prints the diff, a check writes nothing and lists (as `FILE:LINE:COLUMN`) each
/// reference that does not point at its copy. Whether a check found one.
fn rewrite_files(
    roots: &[PathBuf],
    scanner: &Scanner,
    settings: &Settings,
    rewrite: &crate::mirror::Rewrite,
    mode: crate::mirror::Mode,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    use crate::mirror::Mode;
    let rules = Rules::new(Selection::All, true)?;
    let scope = settings.scope();
    let check = mode == Mode::Check;
    let job = update::Job {
        roots,
        base: None,
        scanner,
        rules: &rules,
        scope: &scope,
        confine: None,
        resolver: rewrite,
        dry_run: mode != Mode::Copy,
        reporter: if check { &Silent } else { &Log },
    };
    let mut sink = io::sink();
    let diff: &mut dyn Write = if check { &mut sink } else { &mut *out };
    let summary = job.run(diff)?;
    if !check {
        return Ok(false);
    }
    let inventory = Inventory::take_in(roots, scanner, &scope, None);
    for change in &summary.changes {
        let Some(file) = inventory.files.iter().find(|f| f.shown == change.path) else {
            continue;
        };
        for at in file
            .refs
            .iter()
            .filter(|r| r.occurrence.reference == change.from)
        {
            writeln!(
                out,
                "{}:{}:{}: {} does not point at its copy {}",
                change.path, at.line, at.column, change.from, change.to
            )?;
        }
    }
    Ok(!summary.changes.is_empty())
}
