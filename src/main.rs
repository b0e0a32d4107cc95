use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = trainjob_gc::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(trainjob_gc::run::main(cli)).into()
}
