//! Which servers a run compares: the built-in ones (`ours`, `tokio`, `epoll`) and any
//! named command (`--server NAME=COMMAND`), each started the same way and expected to
//! print `listening on HOST:PORT`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tls::Material;

/// Our native example server, relative to the repository root.
pub const DEFAULT_OURS: &str = "target/release/examples/echo_server";
/// Our native TLS example server (`iot_bench tls`), relative to the repository root.
pub const DEFAULT_OURS_TLS: &str = "target/release/examples/tls_echo_server";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// Our example binary: `PATH --host 127.0.0.1 --port 0 --workers 1`.
    Ours,
    /// This binary's hidden `serve tokio|epoll` subcommand.
    Peer,
    /// A command given on the command line, run as it is.
    Command(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    pub name: String,
    pub launch: Launch,
}

impl ServerSpec {
    /// A built-in server by name.
    pub fn builtin(name: &str) -> Option<ServerSpec> {
        let launch = match name {
            "ours" => Launch::Ours,
            "tokio" | "epoll" => Launch::Peer,
            _ => return None,
        };
        Some(ServerSpec {
            name: name.to_string(),
            launch,
        })
    }

    /// `NAME=COMMAND ARGS...` (split on whitespace).
    pub fn parse_custom(text: &str) -> Result<ServerSpec, String> {
        let (name, command) = text
            .split_once('=')
            .ok_or_else(|| format!("--server: `{text}` is not NAME=COMMAND"))?;
        let name = name.trim();
        let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        if name.is_empty() || name.contains(',') || words.is_empty() {
            return Err(format!("--server: `{text}` is not NAME=COMMAND"));
        }
        Ok(ServerSpec {
            name: name.to_string(),
            launch: Launch::Command(words),
        })
    }

    /// The command that starts this server; with `tls`, the TLS variant given the
    /// certificate chain and key files (ours and named commands: `--cert --key`;
    /// tokio: `serve tokio-tls`).
    pub fn command(&self, ours: &Path, self_exe: &PathBuf, tls: Option<&Material>) -> Command {
        match &self.launch {
            Launch::Ours => {
                let mut c = Command::new(ours);
                c.args(["--host", "127.0.0.1", "--port", "0", "--workers", "1"]);
                if let Some(tls) = tls {
                    c.arg("--cert").arg(&tls.chain).arg("--key").arg(&tls.key);
                }
                c
            }
            Launch::Peer => {
                let mut c = Command::new(self_exe);
                match tls {
                    Some(tls) => {
                        c.args(["serve", &format!("{}-tls", self.name)]);
                        c.arg(&tls.chain).arg(&tls.key);
                    }
                    None => {
                        c.args(["serve", &self.name]);
                    }
                }
                c
            }
            Launch::Command(words) => {
                let mut c = Command::new(&words[0]);
                c.args(&words[1..]);
                if let Some(tls) = tls {
                    c.arg("--cert").arg(&tls.chain).arg("--key").arg(&tls.key);
                }
                c
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_named_commands() {
        let spec = ServerSpec::parse_custom("dart=dart run x.dill --port 0").expect("parsed");
        assert_eq!(spec.name, "dart");
        assert_eq!(
            spec.launch,
            Launch::Command(vec![
                "dart".into(),
                "run".into(),
                "x.dill".into(),
                "--port".into(),
                "0".into()
            ])
        );
        assert!(ServerSpec::parse_custom("dart").is_err());
        assert!(ServerSpec::parse_custom("=x").is_err());
        assert!(ServerSpec::parse_custom("a,b=x").is_err());
        assert!(ServerSpec::builtin("tokio").is_some());
        assert!(ServerSpec::builtin("nginx").is_none());
    }
}
