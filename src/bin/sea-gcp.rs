//! The `sea-gcp` command line; see [`sea_gcp::cli`].

fn main() -> std::process::ExitCode {
    sea_gcp::cli::main()
}
