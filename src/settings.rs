//! The settings a run works with: flags over environment over the configuration file over
//! defaults, merged once into [`Settings`], each value with where it came from ([`Origin`]).
//!
//! The layers come in as plain values: [`Flags`] (what was typed, taken from the clap types by
//! the caller), [`Environment`] (read from the process once, by [`Environment::from_process`])
//! and the `.cru.yaml` found by [`crate::config::discover`]. [`Settings::merge`] is pure; the
//! scanner, the walk's scope and the registry resolver's options are built from the result.
//! Nothing below this module reads flags or the environment for these values.
//! The docker config's folder (`$DOCKER_CONFIG`, else `~/.docker`) is read here too and handed
//! to the registry layer; credentials themselves are read there, never shown.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::Policy;
use crate::config::{self, Config, ConfigError, Discovery, Require};
use crate::inventory::{display_path, Scope};
use crate::registry::{self, Platform, ResolverOptions, DEFAULT_JOBS};
use crate::scan::{ScanOptions, Scanner};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A flag on the command line (its spelling, `--jobs`).
    Flag(&'static str),
    /// An environment variable (its name).
    Env(&'static str),
    /// The configuration file, at a line.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
    },
    /// Nothing set it.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(name) => write!(f, "environment ${name}"),
            Origin::File { path, line: 0 } => write!(f, "{}", display_path(path)),
            Origin::File { path, line } => write!(f, "{}:{line}", display_path(path)),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Its origin.
    pub origin: Origin,
}

impl<T> Setting<T> {
    fn new(value: T, origin: Origin) -> Setting<T> {
        Setting { value, origin }
    }
}

/// What the command line set; `None`/`false`: not given.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--no-config`.
    pub no_config: bool,
    /// `--qualified-only`.
    pub qualified_only: bool,
    /// `--jobs N`.
    pub jobs: Option<u16>,
    /// `--registries-conf FILE`.
    pub registries_conf: Option<PathBuf>,
    /// `--platform`.
    pub platform: Option<Platform>,
    /// `--require-digest` / `--require-tag` of `cru check` (`None`: neither given).
    pub require: Option<Policy>,
    /// `--to` of `cru mirror`.
    pub mirror_to: Option<crate::mirror::Destination>,
}

/// The environment variables cru reads, read once. Its `Debug` never shows the token.
#[derive(Clone, Default)]
pub struct Environment {
    /// `$CRU_CONFIG`.
    pub config: Option<PathBuf>,
    /// `$CRU_REGISTRIES_CONF`.
    pub registries_conf: Option<PathBuf>,
    /// The user's configuration folder: `$XDG_CONFIG_HOME`, else `$HOME/.config`.
    pub user_config: Option<PathBuf>,
    /// The folder of the docker `config.json`: `$DOCKER_CONFIG`, else `$HOME/.docker`.
    pub docker_config: Option<PathBuf>,
    /// `$CRU_SERVE_TOKEN`, trimmed (`cru serve`'s token when `--token-file` is not given).
    pub serve_token: Option<String>,
}

/// `$CRU_CONFIG`.
pub const CONFIG_VARIABLE: &str = "CRU_CONFIG";
/// `$CRU_REGISTRIES_CONF`.
pub const REGISTRIES_CONF_VARIABLE: &str = "CRU_REGISTRIES_CONF";
/// `$CRU_SERVE_TOKEN`.
pub const SERVE_TOKEN_VARIABLE: &str = "CRU_SERVE_TOKEN";

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("config", &self.config)
            .field("registries_conf", &self.registries_conf)
            .field("user_config", &self.user_config)
            .field("docker_config", &self.docker_config)
            .field("serve_token", &self.serve_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Environment {
    /// Reads the variables from this process (empty counts as unset).
    pub fn from_process() -> Environment {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Environment {
            config: var(CONFIG_VARIABLE),
            registries_conf: var(REGISTRIES_CONF_VARIABLE),
            user_config: var("XDG_CONFIG_HOME").or_else(|| var("HOME").map(|h| h.join(".config"))),
            docker_config: var("DOCKER_CONFIG").or_else(|| var("HOME").map(|h| h.join(".docker"))),
            serve_token: std::env::var(SERVE_TOKEN_VARIABLE)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        }
    }
}

/// Flags and environment: the layers that do not depend on the folder worked in. A
/// `--repository` clone and every `cru serve` request merge them with the repository's own
/// configuration file.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// The command line.
    pub flags: Flags,
    /// The environment.
    pub env: Environment,
}

/// Everything a run needs, merged.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configuration file read, if any.
    pub config: Option<Arc<Config>>,
    /// How the file was chosen (`--config`, `$CRU_CONFIG`, `--no-config`, or found).
    pub config_origin: Origin,
    /// Only names with a `/`.
    pub qualified_only: Setting<bool>,
    /// Registry requests in flight at most.
    pub jobs: Setting<u16>,
    /// The registries.conf to read (`None`: none).
    pub registries_conf: Setting<Option<PathBuf>>,
    /// The platform to resolve to, for every image.
    pub platform: Setting<Option<Platform>>,
    /// The folder of the docker `config.json` (credentials; not shown).
    pub docker_config: Option<PathBuf>,
    /// The policy of `cru check`.
    pub check: Setting<Policy>,
    /// Where `cru mirror` copies to (`None`: neither `--to` nor `mirror.to`).
    pub mirror_to: Setting<Option<crate::mirror::Destination>>,
}

impl Layers {
    /// The configuration file for a run starting at `start` (the first PATH, or the folder
    /// worked in): `--config`, `$CRU_CONFIG`, the repository's `.cru.yaml`; none with
    /// `--no-config`.
    pub fn config_file(&self, start: &Path) -> Option<PathBuf> {
        config::discover(
            &Discovery {
                explicit: self.flags.config.clone(),
                env: self.env.config.clone(),
                disabled: self.flags.no_config,
            },
            start,
        )
    }

    /// Finds and reads the configuration for `start`, then merges.
    pub fn settings(&self, start: &Path) -> Result<Settings, ConfigError> {
        let config = match self.config_file(start) {
            Some(path) => Some(config::load(&path)?),
            None => None,
        };
        Ok(Settings::merge(self, config))
    }
}

impl Settings {
    /// Merges the layers with `config`: flags over environment over file over defaults.
    pub fn merge(layers: &Layers, config: Option<Config>) -> Settings {
        let (flags, env) = (&layers.flags, &layers.env);
        let file = |line: usize| Origin::File {
            path: config.as_ref().map(|c| c.path.clone()).unwrap_or_default(),
            line,
        };
        let c = config.as_ref();
        let qualified_only = if flags.qualified_only {
            Setting::new(true, Origin::Flag("--qualified-only"))
        } else if let Some((v, line)) = c.and_then(|c| c.qualified_only) {
            Setting::new(v, file(line))
        } else {
            Setting::new(false, Origin::Default)
        };
        let jobs = if let Some(n) = flags.jobs {
            Setting::new(n, Origin::Flag("--jobs"))
        } else if let Some((n, line)) = c.and_then(|c| c.jobs) {
            Setting::new(n, file(line))
        } else {
            Setting::new(DEFAULT_JOBS as u16, Origin::Default)
        };
        let registries_conf = if let Some(p) = &flags.registries_conf {
            Setting::new(Some(p.clone()), Origin::Flag("--registries-conf"))
        } else if let Some(p) = &env.registries_conf {
            Setting::new(Some(p.clone()), Origin::Env(REGISTRIES_CONF_VARIABLE))
        } else if let Some((p, line)) = c.and_then(|c| c.registries_conf.clone()) {
            Setting::new(Some(p), file(line))
        } else {
            let found = registry::registries_conf::RegistriesConf::default_locations(
                env.user_config.as_deref(),
            )
            .into_iter()
            .find(|p| p.is_file());
            Setting::new(found, Origin::Default)
        };
        let platform = match &flags.platform {
            Some(p) => Setting::new(Some(p.clone()), Origin::Flag("--platform")),
            None => Setting::new(None, Origin::Default),
        };
        let check = if let Some(policy) = flags.require {
            Setting::new(policy, Origin::Flag("--require-*"))
        } else if let Some((require, line)) = c.and_then(|c| c.check_require) {
            Setting::new(policy_of(require), file(line))
        } else {
            // Pinning is what a check is for when no policy is named.
            Setting::new(policy_of(Require::Digest), Origin::Default)
        };
        let mirror_to = if let Some(to) = &flags.mirror_to {
            Setting::new(Some(to.clone()), Origin::Flag("--to"))
        } else if let Some((to, line)) = c.and_then(|c| c.mirror_to.clone()) {
            Setting::new(Some(to), file(line))
        } else {
            Setting::new(None, Origin::Default)
        };
        let config_origin = if flags.no_config {
            Origin::Flag("--no-config")
        } else if flags.config.is_some() {
            Origin::Flag("--config")
        } else if env.config.is_some() {
            Origin::Env(CONFIG_VARIABLE)
        } else {
            Origin::Default
        };
        Settings {
            docker_config: env.docker_config.clone(),
            config_origin,
            config: config.map(Arc::new),
            qualified_only,
            jobs,
            registries_conf,
            platform,
            check,
            mirror_to,
        }
    }

    /// `mirror.map` of the configuration (empty without one).
    pub fn mirror_map(&self) -> &[crate::mirror::MapRule] {
        self.config.as_ref().map_or(&[], |c| &c.mirror_map)
    }

    /// The scanner these settings ask for.
    pub fn scanner(&self) -> Scanner {
        Scanner::new(ScanOptions {
            unqualified: !self.qualified_only.value,
        })
    }

    /// The configuration's exclusions and rules.
    pub fn scope(&self) -> Scope {
        Scope::new(self.config.clone())
    }

    /// How to build the registry resolver.
    pub fn resolver_options(&self) -> ResolverOptions {
        ResolverOptions {
            registries_conf: self.registries_conf.value.clone(),
            platform: self.platform.value.clone(),
            docker_config: self.docker_config.clone(),
            jobs: usize::from(self.jobs.value),
            ..ResolverOptions::default()
        }
    }

    /// Whether the configuration pins some images to digests (lookups may be needed without
    /// a flag asking for them).
    pub fn pins_digests(&self) -> bool {
        self.config.as_ref().is_some_and(|c| c.pins_digests())
    }

    /// The effective settings as `key: value  # origin` lines, for `cru config show`.
    pub fn show(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: String, origin: &Origin| {
            out.push_str(&format!("{key}: {value}  # {origin}\n"));
        };
        let file = self
            .config
            .as_ref()
            .map_or("none".into(), |c| display_path(&c.path));
        line("config", file, &self.config_origin);
        line(
            "qualified-only",
            self.qualified_only.value.to_string(),
            &self.qualified_only.origin,
        );
        line("jobs", self.jobs.value.to_string(), &self.jobs.origin);
        line(
            "registries-conf",
            self.registries_conf
                .value
                .as_deref()
                .map_or("none".into(), display_path),
            &self.registries_conf.origin,
        );
        line(
            "platform",
            self.platform
                .value
                .as_ref()
                .map_or("index".into(), ToString::to_string),
            &self.platform.origin,
        );
        let policy = self.check.value;
        let require = match (policy.require_digest, policy.require_tag) {
            (true, true) => "digest, tag",
            (true, false) => "digest",
            (false, true) => "tag",
            (false, false) => "none",
        };
        line("check.require", require.into(), &self.check.origin);
        if let Some(to) = &self.mirror_to.value {
            // Only when set: `cru mirror` is the one command that reads it.
            line("mirror.to", to.to_string(), &self.mirror_to.origin);
        }
        if let Some(c) = &self.config {
            for (pattern, at) in &c.exclude_patterns {
                line(
                    "exclude",
                    pattern.clone(),
                    &Origin::File {
                        path: c.path.clone(),
                        line: *at,
                    },
                );
            }
            for rule in &c.mirror_map {
                line(
                    "mirror.map",
                    format!(
                        "{{from: {:?}, to: {:?}}}",
                        rule.from_text,
                        rule.to.to_string()
                    ),
                    &Origin::File {
                        path: c.path.clone(),
                        line: rule.line,
                    },
                );
            }
            for rule in &c.rules {
                line(
                    "rule",
                    rule.text.clone(),
                    &Origin::File {
                        path: c.path.clone(),
                        line: rule.line,
                    },
                );
            }
        }
        out
    }
}

/// `check.require:` as a policy.
fn policy_of(require: Require) -> Policy {
    Policy {
        require_digest: require == Require::Digest,
        require_tag: require == Require::Tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Config {
        config::parse(Path::new("/repo/.cru.yaml"), text).unwrap()
    }

    const FILE: &str =
        "qualified-only: true\njobs: 4\nregistries-conf: ci/r.conf\ncheck: {require: tag}\n";

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = Settings::merge(&Layers::default(), None);
        assert_eq!(s.jobs, Setting::new(16, Origin::Default));
        assert_eq!(s.qualified_only, Setting::new(false, Origin::Default));
        assert!(s.check.value.require_digest && !s.check.value.require_tag);
        assert_eq!(s.platform.value, None);
    }

    #[test]
    fn the_file_sets_what_flags_and_environment_leave_unset() {
        let s = Settings::merge(&Layers::default(), Some(file(FILE)));
        let at = |line| Origin::File {
            path: "/repo/.cru.yaml".into(),
            line,
        };
        assert_eq!(s.qualified_only, Setting::new(true, at(1)));
        assert_eq!(s.jobs, Setting::new(4, at(2)));
        assert_eq!(
            s.registries_conf,
            Setting::new(Some(PathBuf::from("/repo/ci/r.conf")), at(3))
        );
        assert_eq!(
            s.check.value,
            Policy {
                require_digest: false,
                require_tag: true
            }
        );
        assert_eq!(s.check.origin, at(4));
    }

    #[test]
    fn mirror_to_on_the_command_line_wins_over_the_file() {
        let config = file("mirror: {to: reg.example.com/m}\n");
        let s = Settings::merge(&Layers::default(), Some(config));
        assert_eq!(
            s.mirror_to
                .value
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("reg.example.com/m")
        );
        assert_eq!(
            s.mirror_to.origin,
            Origin::File {
                path: "/repo/.cru.yaml".into(),
                line: 1
            }
        );
        let layers = Layers {
            flags: Flags {
                mirror_to: Some("other.example.com/x".parse().unwrap()),
                ..Flags::default()
            },
            ..Layers::default()
        };
        let s = Settings::merge(&layers, Some(file("mirror: {to: reg.example.com/m}\n")));
        assert_eq!(
            s.mirror_to.value.map(|t| t.to_string()).as_deref(),
            Some("other.example.com/x")
        );
        assert_eq!(s.mirror_to.origin, Origin::Flag("--to"));
        assert!(Settings::merge(&Layers::default(), None)
            .mirror_to
            .value
            .is_none());
    }

    #[test]
    fn environment_wins_over_the_file_and_flags_over_both() {
        let mut layers = Layers {
            env: Environment {
                registries_conf: Some("env.conf".into()),
                ..Environment::default()
            },
            ..Layers::default()
        };
        let s = Settings::merge(&layers, Some(file(FILE)));
        assert_eq!(
            s.registries_conf,
            Setting::new(
                Some(PathBuf::from("env.conf")),
                Origin::Env("CRU_REGISTRIES_CONF")
            )
        );
        layers.flags = Flags {
            registries_conf: Some("flag.conf".into()),
            jobs: Some(2),
            require: Some(Policy {
                require_digest: true,
                require_tag: false,
            }),
            ..Flags::default()
        };
        let s = Settings::merge(&layers, Some(file(FILE)));
        assert_eq!(
            s.registries_conf,
            Setting::new(
                Some(PathBuf::from("flag.conf")),
                Origin::Flag("--registries-conf")
            )
        );
        assert_eq!(s.jobs, Setting::new(2, Origin::Flag("--jobs")));
        assert!(s.check.value.require_digest && !s.check.value.require_tag);
        assert_eq!(s.resolver_options().jobs, 2);
    }

    #[test]
    fn the_default_registries_conf_is_the_first_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let layers = Layers {
            env: Environment {
                user_config: Some(dir.path().to_owned()),
                ..Environment::default()
            },
            ..Layers::default()
        };
        let system = Path::new("/etc/containers/registries.conf");
        let want = system.is_file().then(|| system.to_owned());
        assert_eq!(Settings::merge(&layers, None).registries_conf.value, want);
        std::fs::create_dir_all(dir.path().join("containers")).unwrap();
        std::fs::write(dir.path().join("containers/registries.conf"), "").unwrap();
        assert_eq!(
            Settings::merge(&layers, None).registries_conf,
            Setting::new(
                Some(dir.path().join("containers/registries.conf")),
                Origin::Default
            )
        );
    }

    #[test]
    fn the_environments_debug_never_shows_the_token() {
        let env = Environment {
            serve_token: Some("s3cret".into()),
            ..Environment::default()
        };
        let shown = format!(
            "{env:?} {:?}",
            Layers {
                env: env.clone(),
                ..Layers::default()
            }
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn origins_print_as_config_show_shows_them() {
        assert_eq!(Origin::Flag("--jobs").to_string(), "flag --jobs");
        assert_eq!(
            Origin::Env("CRU_CONFIG").to_string(),
            "environment $CRU_CONFIG"
        );
        assert_eq!(
            Origin::File {
                path: "/elsewhere/.cru.yaml".into(),
                line: 3
            }
            .to_string(),
            "/elsewhere/.cru.yaml:3"
        );
        assert_eq!(Origin::Default.to_string(), "default");
    }
}
