//! `runlog completions SHELL`.

use clap::CommandFactory;
use clap_complete::{generate, shells};

use crate::args::{Args, Shell};
use crate::render::Out;
use crate::Error;

/// Print the completion script for `shell`.
pub(crate) fn run(out: &mut Out, shell: Shell) -> Result<(), Error> {
    let mut cmd = Args::command();
    let mut buf = Vec::new();
    match shell {
        Shell::Bash => generate(shells::Bash, &mut cmd, "runlog", &mut buf),
        Shell::Zsh => generate(shells::Zsh, &mut cmd, "runlog", &mut buf),
        Shell::Fish => generate(shells::Fish, &mut cmd, "runlog", &mut buf),
    }
    out.write_str(&String::from_utf8_lossy(&buf))?;
    Ok(())
}
