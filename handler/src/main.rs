//! The Lambda function: checks its settings, then serves EventBridge events (see this package's
//! library, `lambda_code_watch_handler`, for what one invocation does).

use lambda_code_watch_handler::{self as handler, Settings};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    handler::init_logging();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            // Refusing to start makes a misconfigured deployment fail its first invocation loudly,
            // instead of running without publishing.
            tracing::error!(variable = e.variable, error = %e, "invalid settings");
            eprintln!("lambda-code-watch-handler: {e}");
            std::process::exit(2);
        }
    };
    handler::run(settings).await
}
