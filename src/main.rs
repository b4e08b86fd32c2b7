use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First of all: a stop signal at any later instant is a request to stop, never a death
    // that leaves half a result (see `interrupt`).
    backlog_lab::interrupt::install();
    // This executable answers the warden commands, so its runs may start wardens (see `warden`).
    backlog_lab::warden::this_binary_has_wardens();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = backlog_lab::commands::warden(&args) {
        return ExitCode::from(code);
    }
    // Parse before anything starts a thread: `run` may need to enter a user namespace, which
    // the kernel allows only while the process is single-threaded.
    let cli = backlog_lab::cli::Cli::parse();
    match backlog_lab::run_cli(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let broken_pipe = err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::from(backlog_lab::error::exit_code(&err))
        }
    }
}
