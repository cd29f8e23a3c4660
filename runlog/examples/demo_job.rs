//! A recurring job, run by a tiny scheduler loop: one ok run, one run for a labelled user,
//! one that panics, and one boring run that is cancelled. Run it, then look with
//! `runlog list-runs demo-job` and `runlog logs demo-job last`.

use std::error::Error;

use log::{debug, info, warn, LevelFilter};
use runlog::RunLogger;

fn process(user: &str, items: u32) {
    for i in 1..=items {
        debug!(user = user, item = i; "processed item {i} of {items} for user {user}");
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    // The application's own logging keeps working: every record is forwarded to env_logger
    // (RUST_LOG=info to see them).
    let inner = env_logger::Builder::from_default_env().build();
    let rl = RunLogger::builder()
        .max_logs(10)
        .forward_level(inner.filter())
        .forward_to(Box::new(inner))
        .build()?;
    rl.install()?;
    eprintln!("journal: {}", rl.journal_dir().display());

    info!("scheduler started: outside any run, this is not stored");

    for (n, user) in ["alice", "bar", "carol", "dave"].into_iter().enumerate() {
        let outcome = std::panic::catch_unwind(|| {
            let run = rl.runlog("demo-job").expect("valid job name");
            run.set_level(LevelFilter::Debug);
            if user == "bar" {
                run.label("user", user);
            }
            info!("run {} for user {user}", run.id());
            match n {
                0 | 1 => process(user, 3),
                2 => {
                    process(user, 2);
                    warn!("user {user} has a broken profile");
                    let profile = std::env::var("DEMO_PROFILE_OF_CAROL").ok();
                    let _ = profile.expect("carol has a profile");
                }
                _ => {
                    debug!("nothing to do for {user}: a boring run");
                    run.cancel();
                    return;
                }
            }
            info!("done");
        });
        if outcome.is_err() {
            eprintln!("(the scheduler caught the panic of run {n} and goes on)");
        }
    }
    info!("scheduler done");
    Ok(())
}
