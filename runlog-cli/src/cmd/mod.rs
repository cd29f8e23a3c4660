//! One module per subcommand.

pub(crate) mod completions;
pub(crate) mod exec;
pub(crate) mod journal;
pub(crate) mod list_jobs;
pub(crate) mod list_runs;
pub(crate) mod logs;
pub(crate) mod why;

/// Quote a job name for a shell command suggested in a message.
pub(crate) fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b));
    if plain {
        s.to_owned()
    } else if s.chars().any(char::is_control) {
        format!("{s:?}")
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_in_suggested_commands_are_shell_quoted() {
        assert_eq!(shell_quote("recurring-job-32"), "recurring-job-32");
        assert_eq!(shell_quote("two words"), "'two words'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("a\x1bb"), r#""a\u{1b}b""#);
        assert_eq!(shell_quote(""), "''");
    }
}
