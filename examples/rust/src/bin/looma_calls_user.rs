//! A Looma service calling user-service with caching and failover.
//!
//! ```text
//! cargo run -p federation-examples --bin looma_calls_user -- --sandbox
//! cargo run -p federation-examples --bin looma_calls_user -- --config federation.yaml
//! ```

use std::process::ExitCode;

use clap::Parser;
use federation_examples::looma_user;
use federation_examples::setup::{Args, Federation};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let fed = match Federation::start(&args, looma_user::sandbox_policies).await {
        Ok(fed) => fed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = looma_user::run(&fed, &mut std::io::stdout()).await;
    fed.shutdown().await;
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
