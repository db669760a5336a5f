//! A Zervigo tool calling ai-service: model version by tag, cached inference POSTs.
//!
//! ```text
//! cargo run -p federation-examples --bin zervigo_calls_ai -- --sandbox
//! cargo run -p federation-examples --bin zervigo_calls_ai -- --config federation.yaml
//! ```

use std::process::ExitCode;

use clap::Parser;
use federation_examples::setup::{Args, Federation};
use federation_examples::zervigo_ai;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // The sandbox already caches `ai` (GET and POST, 30 s) and tags it `model=v2`.
    let fed = match Federation::start(&args, |_| {}).await {
        Ok(fed) => fed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = zervigo_ai::run(&fed, &mut std::io::stdout()).await;
    fed.shutdown().await;
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
