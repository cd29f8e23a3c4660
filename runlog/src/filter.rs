//! `env_logger`-style level directives: `info,myapp=debug,hyper=warn`.

use std::str::FromStr;

use log::LevelFilter;

/// Parsed directives: an optional default level and per-target levels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    /// The bare level (`info` in `info,myapp=debug`), if given.
    pub(crate) default: Option<LevelFilter>,
    /// `(target prefix, level)`, longest prefix first.
    pub(crate) targets: Vec<(String, LevelFilter)>,
}

impl Directives {
    /// Parse a directive string; the error names the bad item and the accepted forms.
    pub(crate) fn parse(s: &str) -> Result<Directives, String> {
        const FORMS: &str = "items are `LEVEL`, `TARGET=LEVEL` or `TARGET`, separated by \
                             commas, with levels off, error, warn, info, debug, trace";
        let mut d = Directives::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (target, level) = match item.split_once('=') {
                Some((t, l)) => {
                    let l = l.trim();
                    let lvl = LevelFilter::from_str(l).map_err(|_| {
                        format!("filter item {item:?}: {l:?} is not a level ({FORMS})")
                    })?;
                    (t.trim(), lvl)
                }
                None => match LevelFilter::from_str(item) {
                    Ok(l) => {
                        d.default = Some(l);
                        continue;
                    }
                    Err(_) => (item, LevelFilter::Trace),
                },
            };
            if target.is_empty() {
                return Err(format!(
                    "filter item {item:?}: the target before `=` is empty ({FORMS})"
                ));
            }
            if target.contains('/') {
                return Err(format!(
                    "filter item {item:?}: regular expression filters (`/re`) are not \
                     supported ({FORMS})"
                ));
            }
            if target.contains(char::is_whitespace) {
                return Err(format!(
                    "filter item {item:?}: a target cannot contain spaces (a missing comma?) \
                     ({FORMS})"
                ));
            }
            d.targets.push((target.to_owned(), level));
        }
        d.targets.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        Ok(d)
    }

    /// The level for a target from the most specific matching directive, if any.
    #[inline]
    pub(crate) fn target_level(&self, target: &str) -> Option<LevelFilter> {
        if self.targets.is_empty() {
            return None;
        }
        self.targets
            .iter()
            .find(|(t, _)| {
                target.starts_with(t.as_str())
                    && (target.len() == t.len() || target[t.len()..].starts_with("::"))
            })
            .map(|(_, l)| *l)
    }

    /// The most verbose level any directive allows.
    pub(crate) fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .chain(self.default)
            .max()
            .unwrap_or(LevelFilter::Off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_directive_wins() {
        let d = Directives::parse("info, myapp=debug,myapp::db=warn,hyper").unwrap();
        assert_eq!(d.default, Some(LevelFilter::Info));
        assert_eq!(d.target_level("myapp::db::pool"), Some(LevelFilter::Warn));
        assert_eq!(d.target_level("myapp::web"), Some(LevelFilter::Debug));
        assert_eq!(d.target_level("myapplication"), None);
        assert_eq!(d.target_level("hyper"), Some(LevelFilter::Trace));
        assert_eq!(d.target_level("other"), None);
        assert_eq!(d.max_level(), LevelFilter::Trace);
    }

    #[test]
    fn bad_level_is_named() {
        let e = Directives::parse("myapp=loud").unwrap_err();
        assert!(e.contains("loud"), "{e}");
    }
}
