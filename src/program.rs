//! A program of the user's own, run inside a lab namespace: the server (`server.command`) or
//! the client (`client.command`). It is started after the namespace's sysctls are written, its
//! stdout and stderr go to a log in the result folder (`server.log`, `client.log`), and it is
//! stopped with SIGTERM, then SIGKILL after a grace period.
//!
//! It never outlives the lab: it runs in a process group of its own, which every way out of the
//! lab (the storm's end, an error, a panic's unwinding) signals, and it is started with
//! `PR_SET_PDEATHSIG` = SIGKILL, so a `kill -9` of the lab takes it along.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Failure;
use crate::netns::Netns;
use crate::plan::ProgramPlan;

/// How long a program has after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// The Debian package that provides a program our users commonly run, for the error that says
/// it is missing.
fn package_of(program: &str) -> Option<&'static str> {
    Some(match program {
        "node" | "nodejs" => "nodejs",
        "java" => "default-jre-headless",
        "nginx" => "nginx",
        "python3" | "python" => "python3",
        "wrk" => "wrk",
        "h2load" => "nghttp2-client",
        "curl" => "curl",
        "ab" => "apache2-utils",
        "envoy" => "envoy (not in Debian: see envoyproxy.io)",
        _ => return None,
    })
}

/// The executable `name` resolves to (a path as given, else the first match on PATH).
fn resolve(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The running program.
pub struct Program {
    child: Child,
    pub command: String,
    log: PathBuf,
    /// The thread that stops and continues it in its pause windows, and how to end it early.
    pauser: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Program {
    /// Starts `plan`'s program in `ns` (`{addr}` filled in with `addr`, `{run_dir}` with the
    /// log's folder), its output into `log`.
    pub fn start(
        role: &'static str,
        ns: &Netns,
        addr: std::net::IpAddr,
        plan: &ProgramPlan,
        log: &Path,
    ) -> Result<Program, Failure> {
        // `{run_dir}`: the result folder, where the log goes, for a program's own files (pid,
        // temporary files).
        let run_dir = log.parent().map_or(String::new(), |d| {
            std::path::absolute(d).map_or(d.display().to_string(), |d| d.display().to_string())
        });
        let argv: Vec<String> = plan
            .argv
            .iter()
            .map(|a| {
                a.replace("{addr}", &addr.to_string())
                    .replace("{run_dir}", &run_dir)
            })
            .collect();
        let command = argv.join(" ");
        let exe = resolve(&argv[0]).ok_or_else(|| {
            Failure::environment(format!(
                "{role}: `{}` is not installed here{}",
                argv[0],
                package_of(&argv[0])
                    .map_or(String::new(), |p| format!(" (Debian: apt-get install {p})"))
            ))
        })?;
        let out = std::fs::File::create(log)
            .map_err(|e| Failure::environment(format!("cannot write {}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| Failure::environment(e.to_string()))?;
        let ns_fd = ns.raw_fd();
        let mut cmd = Command::new(exe);
        cmd.args(&argv[1..])
            .envs(&plan.env)
            .current_dir(&plan.cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(ns_fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| Failure::environment(format!("{role}: cannot start `{command}`: {e}")))?;
        Ok(Program {
            child,
            command,
            log: log.to_path_buf(),
            pauser: None,
        })
    }

    /// How it ended, once it has (without waiting).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines the program wrote, for an error.
    pub fn last_words(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        if lines.is_empty() {
            return "; it wrote nothing".into();
        }
        let quoted: Vec<String> = lines.iter().rev().map(|l| format!("  | {l}")).collect();
        format!(
            "; its last words ({}):\n{}",
            self.log.display(),
            quoted.join("\n")
        )
    }

    /// Stops the program (SIGSTOP to its group) in each of `windows`, counted from `t0`, and
    /// continues it (SIGCONT) at each window's end: a GC pause or a blocked event loop, for any
    /// program. Connections keep queueing in the kernel meanwhile.
    pub fn pause_in(&mut self, t0: Instant, windows: Vec<(Duration, Duration)>) {
        let group = self.child.id() as libc::pid_t;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // Sleeps until `at`, or returns false when the program is being stopped.
            let wait = |at: Instant| {
                let left = at.saturating_duration_since(Instant::now());
                !matches!(
                    rx.recv_timeout(left),
                    Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                )
            };
            for (start, end) in windows {
                if !wait(t0 + start) {
                    return;
                }
                unsafe { libc::kill(-group, libc::SIGSTOP) };
                let more = wait(t0 + end);
                unsafe { libc::kill(-group, libc::SIGCONT) };
                if !more {
                    return;
                }
            }
        });
        self.pauser = Some((tx, thread));
    }

    /// Ends the pause windows early, leaving the program running.
    fn end_pauses(&mut self) {
        if let Some((tx, thread)) = self.pauser.take() {
            let _ = tx.send(());
            let _ = thread.join();
            self.kill_group(libc::SIGCONT);
        }
    }

    /// The log's file name (it sits in the result folder).
    pub fn log_name(&self) -> String {
        self.log
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    /// SIGTERM to its process group, SIGKILL after [`GRACE`]; how it ended.
    pub fn stop(mut self) -> String {
        let status = self.end();
        describe(status)
    }

    fn end(&mut self) -> std::process::ExitStatus {
        // A stopped program would not act on SIGTERM until continued.
        self.end_pauses();
        if let Ok(Some(s)) = self.child.try_wait() {
            self.kill_group(libc::SIGKILL);
            return s;
        }
        self.kill_group(libc::SIGTERM);
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.kill_group(libc::SIGKILL);
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_group(libc::SIGKILL);
        self.child
            .wait()
            .unwrap_or_else(|_| std::process::ExitStatus::from_raw(9))
    }

    fn kill_group(&self, signal: libc::c_int) {
        // The group's id is the child's pid (`process_group(0)`).
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), signal) };
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.end_pauses();
        if let Ok(None) = self.child.try_wait() {
            self.kill_group(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// "exited with 0", "was killed by signal 15 (SIGTERM)".
pub fn describe(s: std::process::ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with {c}"),
        (None, Some(sig)) => format!(
            "was killed by signal {sig} ({})",
            nix::sys::signal::Signal::try_from(sig).map_or("?", |s| s.as_str())
        ),
        _ => "ended".into(),
    }
}
