//! Turning runs and records into text: escaping, colour, durations, tables, JSON lines.
//!
//! Everything here is pure (no I/O) except [`Out`], the buffered stdout every command writes to.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, StdoutLock, Write};

use runlog::journal::payload::RecordRef;
#[cfg(test)]
use runlog::Record;
use runlog::RunStatus;

use crate::zone::{OffsetText, Zone};

/// How text from jobs (messages, labels, key-values, job names) is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Style {
    /// Escape control characters: stdout is a terminal, where they could move the cursor,
    /// clear the screen or rewrite what was printed before.
    pub(crate) escape: bool,
    /// Colour level and status names.
    pub(crate) color: bool,
}

impl Style {
    /// Raw text, no colour: what goes into a pipe or a file.
    #[cfg(test)]
    pub(crate) const PLAIN: Style = Style {
        escape: false,
        color: false,
    };

    /// `s` as it should appear on the output: escaped on a terminal, raw otherwise.
    #[inline]
    pub(crate) fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if self.escape {
            term_escape(s)
        } else {
            Cow::Borrowed(s)
        }
    }

    /// Append `s`, in colour `code` when colour is on.
    pub(crate) fn paint(&self, out: &mut String, code: &str, s: &str) {
        if self.color && !code.is_empty() {
            let _ = write!(out, "\x1b[{code}m{s}\x1b[0m");
        } else {
            out.push_str(s);
        }
    }
}

/// Is this character escaped on a terminal? C0 controls except tab, DEL, C1 controls, and the
/// bidirectional overrides and isolates (they reorder what follows them on screen).
fn is_unsafe_on_terminal(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Escape control characters for a terminal: `\n`, `\r`, `\0`, `\x1b` for the other C0
/// controls, `\u{7f}` for DEL, C1 controls and bidi overrides. Tab and everything printable
/// (any script) stay as they are.
pub(crate) fn term_escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_on_terminal) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe_on_terminal(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A duration for humans: `350ms`, `1.2s`, `3m04s`, `2h05m`, `3d04h`. Negative is `0ms`.
pub(crate) fn format_duration(ns: i64) -> String {
    let ns = ns.max(0);
    let ms = ns / 1_000_000;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    if s < 60 {
        // Truncated, not rounded, so 59.96 s is never shown as 60.0s.
        return format!("{}.{}s", s, (ms % 1000) / 100);
    }
    let m = s / 60;
    if m < 60 {
        return format!("{m}m{:02}s", s % 60);
    }
    let h = m / 60;
    if h < 24 {
        return format!("{h}h{:02}m", m % 60);
    }
    format!("{}d{:02}h", h / 24, h % 24)
}

fn level_color(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "1;31",
        log::Level::Warn => "33",
        log::Level::Info => "32",
        log::Level::Debug => "34",
        log::Level::Trace => "2",
    }
}

/// ANSI colour of a run status.
pub(crate) fn status_color(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Ok => "32",
        RunStatus::Failed | RunStatus::Crashed | RunStatus::Damaged => "1;31",
        RunStatus::Running => "36",
        RunStatus::Cancelled => "2",
    }
}

/// Does a key=value value need quotes to be read back unambiguously?
#[inline]
fn needs_quotes(v: &str) -> bool {
    // Printable ASCII other than `"` and `=` never does (the common case, checked bytewise).
    if !v.is_empty()
        && v.bytes()
            .all(|b| b > b' ' && b < 0x7f && b != b'"' && b != b'=')
    {
        return false;
    }
    v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == '"' || c == '=')
}

/// Append ` key=value`, logfmt-style: a value with spaces, `=` or `"` (or an empty one) is
/// quoted, with `"`, `\` and line breaks escaped inside the quotes so a record stays on its line.
#[inline]
fn push_kv(out: &mut String, style: Style, k: &str, v: &str) {
    out.push(' ');
    out.push_str(&style.text(k));
    out.push('=');
    if !needs_quotes(v) {
        out.push_str(&style.text(v));
        return;
    }
    let mut q = String::with_capacity(v.len() + 2);
    q.push('"');
    for c in v.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    out.push_str(&style.text(&q));
}

/// [`push_record`] into a new string.
#[cfg(test)]
pub(crate) fn format_record(rec: &Record, style: Style) -> String {
    let mut out = String::with_capacity(64 + rec.message.len());
    push_record(&mut out, &rec.borrowed(), style, &mut Times::default());
    out
}

/// The timestamps of records, `2026-11-28T07:10:55.123456-05:00` as [`Zone::format_micros`]
/// writes them, with the parts but the microseconds computed once per second rather than once
/// per record (offsets change on whole seconds).
#[derive(Debug, Default)]
pub(crate) struct Times {
    zone: Zone,
    /// The second (since the epoch) `prefix` and `offset` are for.
    second: Option<i64>,
    /// `2026-11-28T07:10:55.`
    prefix: String,
    /// `-05:00`, or `Z`.
    offset: Option<OffsetText>,
}

impl Times {
    /// Timestamps in `zone`.
    pub(crate) fn new(zone: Zone) -> Times {
        Times {
            zone,
            ..Times::default()
        }
    }

    /// Append the timestamp of `ns`.
    pub(crate) fn push(&mut self, out: &mut String, ns: i64) {
        let second = ns.div_euclid(1_000_000_000);
        let micros = (ns.rem_euclid(1_000_000_000) / 1000) as u32;
        if self.second != Some(second) {
            let full = self.zone.format_seconds(ns);
            let (_, offset) = self.zone.civil(ns);
            self.prefix.clear();
            self.prefix.push_str(
                full.get(..full.len().saturating_sub(offset.as_str().len()))
                    .unwrap_or(""),
            );
            self.prefix.push('.');
            self.offset = Some(offset);
            self.second = Some(second);
        }
        out.push_str(&self.prefix);
        let mut digits = [b'0'; 6];
        let mut m = micros;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (m % 10) as u8;
            m /= 10;
        }
        // ASCII digits.
        out.push_str(std::str::from_utf8(&digits).unwrap_or("000000"));
        out.push_str(self.offset.as_ref().map_or("Z", OffsetText::as_str));
    }
}

/// Append one record as text, ending with a newline, its timestamp through `times`:
///
/// ```text
/// 2026-11-28T12:10:55.123456Z INFO  target: first line of the message key=value
///   second line of the message
/// ```
///
/// Continuation lines of a multi-line message are indented by two spaces, so every record
/// starts with its timestamp at the start of a line. Key-values follow the first line.
pub(crate) fn push_record(out: &mut String, rec: &RecordRef<'_>, style: Style, times: &mut Times) {
    times.push(out, rec.ts_ns);
    if style.color {
        out.push(' ');
        let level = rec.level.as_str();
        style.paint(out, level_color(rec.level), level);
        out.push_str(&"     "[level.len().min(5)..]);
        out.push(' ');
    } else {
        // The level padded to 5, between spaces.
        out.push_str(match rec.level {
            log::Level::Error => " ERROR ",
            log::Level::Warn => " WARN  ",
            log::Level::Info => " INFO  ",
            log::Level::Debug => " DEBUG ",
            log::Level::Trace => " TRACE ",
        });
    }
    if !rec.target.is_empty() {
        out.push_str(&style.text(rec.target));
        out.push_str(": ");
    }
    let message = rec.message.trim_end_matches('\n');
    // Most messages are one line: checked without stopping at a newline (which lets the
    // compiler look at many bytes at a time), searched for it only if there is one.
    let one_line = !message.bytes().fold(false, |nl, b| nl | (b == b'\n'));
    let split = if one_line {
        None
    } else {
        message.split_once('\n')
    };
    let (first, rest) = match split {
        Some((first, rest)) => (first, Some(rest)),
        None => (message, None),
    };
    out.push_str(&style.text(first));
    for (k, v) in rec.kvs.iter() {
        push_kv(out, style, k, v);
    }
    if rec.truncated {
        out.push_str(" [message truncated]");
    }
    for line in rest.into_iter().flat_map(|r| r.split('\n')) {
        out.push_str("\n  ");
        out.push_str(&style.text(line));
    }
    out.push('\n');
}

/// `k=v,k=v`, or `-` without labels.
pub(crate) fn format_labels(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return "-".to_owned();
    }
    let mut s = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}={v}");
    }
    s
}

/// The widest a cell of text from a job (a job name, host, labels) is shown on a terminal,
/// in terminal columns: longer text is cut and ends with `…` (`--wide` or `--json` show it
/// whole). One long name must not push every other column off the screen.
pub(crate) const MAX_CELL_WIDTH: usize = 48;

/// How many terminal columns `s` takes: 2 for a wide (CJK) character, 0 for a combining one.
pub(crate) fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` cut to at most `max` terminal columns, ending with `…` when something was cut.
pub(crate) fn cut_to_width(s: &str, max: usize) -> Cow<'_, str> {
    if display_width(s) <= max {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    let mut used = 0;
    // Room for the `…`, one column.
    let room = max.saturating_sub(1);
    for c in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > room {
            break;
        }
        used += w;
        out.push(c);
    }
    if max > 0 {
        out.push('…');
    }
    Cow::Owned(out)
}

/// A table cell: its text, an optional ANSI colour, and whether it may be cut on a terminal.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    text: String,
    color: &'static str,
    /// Text from a job: cut to [`MAX_CELL_WIDTH`] when the table is capped.
    cut: bool,
}

impl Cell {
    /// A cell with already escaped text.
    pub(crate) fn new(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            color: "",
            cut: false,
        }
    }

    /// A cell with text from a job. Its control characters are escaped whatever the output
    /// (a pipe too), so that a name with a newline cannot split a row; it may be cut on a
    /// terminal.
    pub(crate) fn job_text(text: &str) -> Cell {
        Cell {
            text: term_escape(text).into_owned(),
            color: "",
            cut: true,
        }
    }

    /// A coloured cell.
    pub(crate) fn colored(text: impl Into<String>, color: &'static str) -> Cell {
        Cell {
            text: text.into(),
            color,
            cut: false,
        }
    }
}

/// Columns separated by at least two spaces, like `kubectl get`; a header line always; no
/// trailing spaces. Widths are terminal columns (a CJK character takes two). With `cap`
/// (a terminal without `--wide`), cells of job text wider than `cap` are cut with `…`.
pub(crate) fn format_table(
    header: &[&str],
    rows: &[Vec<Cell>],
    style: Style,
    cap: Option<usize>,
) -> String {
    let rows: Vec<Vec<Cell>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| match cap {
                    Some(max) if c.cut => Cell {
                        text: cut_to_width(&c.text, max).into_owned(),
                        ..c.clone()
                    },
                    _ => c.clone(),
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| display_width(h)).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(display_width(&c.text));
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = (&str, &'static str)>| {
        let cells: Vec<_> = cells.collect();
        for (i, (text, color)) in cells.iter().enumerate() {
            style.paint(&mut out, color, text);
            if i + 1 < cells.len() {
                for _ in display_width(text)..widths[i] + 2 {
                    out.push(' ');
                }
            }
        }
        out.push('\n');
    };
    line(&mut header.iter().map(|h| (*h, "")));
    for row in &rows {
        line(&mut row.iter().map(|c| (c.text.as_str(), c.color)));
    }
    out
}

/// A JSON string literal. Besides what JSON requires (`"`, `\`, controls below U+0020), DEL,
/// C1 controls and bidi overrides are written as `\uXXXX` so that JSON output is safe on a
/// terminal too.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_on_terminal(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The version of the JSON output's shape (`spec/json.md`), the `v` field of every object:
/// raised when a field is removed or renamed or changes its type or meaning, not when one is
/// added.
pub(crate) const JSON_VERSION: u64 = 1;

/// Builds one JSON object, fields in insertion order.
#[derive(Debug, Default)]
pub(crate) struct JsonObject {
    buf: String,
}

impl JsonObject {
    pub(crate) fn new() -> JsonObject {
        JsonObject::default()
    }

    fn key(&mut self, k: &str) -> &mut String {
        self.buf.push(if self.buf.is_empty() { '{' } else { ',' });
        self.buf.push_str(&json_string(k));
        self.buf.push(':');
        &mut self.buf
    }

    /// A string field.
    pub(crate) fn str(mut self, k: &str, v: &str) -> Self {
        let s = json_string(v);
        self.key(k).push_str(&s);
        self
    }

    /// A string field, `null` when absent.
    pub(crate) fn opt_str(self, k: &str, v: Option<&str>) -> Self {
        match v {
            Some(v) => self.str(k, v),
            None => self.raw(k, "null"),
        }
    }

    /// A number field.
    pub(crate) fn num(mut self, k: &str, v: impl Into<i128>) -> Self {
        let v = v.into();
        let _ = write!(self.key(k), "{v}");
        self
    }

    /// A number field, `null` when absent.
    pub(crate) fn opt_num(self, k: &str, v: Option<impl Into<i128>>) -> Self {
        match v {
            Some(v) => self.num(k, v),
            None => self.raw(k, "null"),
        }
    }

    /// The version field, `"v":`[`JSON_VERSION`]; the last field of every object printed.
    pub(crate) fn version(self) -> Self {
        self.num("v", JSON_VERSION)
    }

    /// A boolean field.
    pub(crate) fn bool(self, k: &str, v: bool) -> Self {
        self.raw(k, if v { "true" } else { "false" })
    }

    /// An object of string values, in order.
    pub(crate) fn str_map(self, k: &str, pairs: &[(String, String)]) -> Self {
        self.str_pairs(k, pairs.iter().map(|(pk, pv)| (pk.as_str(), pv.as_str())))
    }

    /// An object of string values, in order, from borrowed pairs.
    pub(crate) fn str_pairs<'p>(
        mut self,
        k: &str,
        pairs: impl IntoIterator<Item = (&'p str, &'p str)>,
    ) -> Self {
        let mut o = JsonObject::new();
        for (pk, pv) in pairs {
            o = o.str(pk, pv);
        }
        let s = o.finish();
        self.key(k).push_str(&s);
        self
    }

    /// A field whose value is already JSON.
    pub(crate) fn raw(mut self, k: &str, json: &str) -> Self {
        self.key(k).push_str(json);
        self
    }

    /// The object's text (without a newline).
    pub(crate) fn finish(mut self) -> String {
        if self.buf.is_empty() {
            self.buf.push('{');
        }
        self.buf.push('}');
        self.buf
    }
}

/// A JSON array of already encoded values.
pub(crate) fn json_array(items: impl IntoIterator<Item = String>) -> String {
    let mut s = String::from("[");
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&it);
    }
    s.push(']');
    s
}

/// Buffered stdout. Every write returns `io::Result` so a closed pipe (`BrokenPipe`) travels
/// up to `main`, which ends quietly. Records are formatted straight into the buffer.
pub(crate) struct Out {
    w: StdoutLock<'static>,
    /// Text not written yet (written once it reaches [`OUT_BUFFER`]).
    buf: String,
    /// A record being prefixed line by line.
    scratch: String,
    times: Times,
    /// How job text is written.
    pub(crate) style: Style,
}

/// Bytes [`Out`] collects before it writes them.
const OUT_BUFFER: usize = 64 << 10;

impl Out {
    /// Stdout, job text written as `style` says, times in `zone`.
    pub(crate) fn new(style: Style, zone: Zone) -> Out {
        Out {
            w: io::stdout().lock(),
            buf: String::with_capacity(OUT_BUFFER + 4096),
            scratch: String::new(),
            times: Times::new(zone),
            style,
        }
    }

    /// Write the buffer out once it is full.
    fn spill(&mut self) -> io::Result<()> {
        if self.buf.len() >= OUT_BUFFER {
            let r = self.w.write_all(self.buf.as_bytes());
            self.buf.clear();
            r?;
        }
        Ok(())
    }

    /// Write text as it is.
    pub(crate) fn write_str(&mut self, s: &str) -> io::Result<()> {
        self.buf.push_str(s);
        self.spill()
    }

    /// Write a line (a newline is added).
    pub(crate) fn line(&mut self, s: &str) -> io::Result<()> {
        self.buf.push_str(s);
        self.buf.push('\n');
        self.spill()
    }

    /// Write a record as text (see [`push_record`]).
    pub(crate) fn record(&mut self, rec: &RecordRef<'_>) -> io::Result<()> {
        push_record(&mut self.buf, rec, self.style, &mut self.times);
        self.spill()
    }

    /// Write a record as text with `prefix` and a space before each of its lines.
    pub(crate) fn record_prefixed(&mut self, prefix: &str, rec: &RecordRef<'_>) -> io::Result<()> {
        self.scratch.clear();
        push_record(&mut self.scratch, rec, self.style, &mut self.times);
        for line in self.scratch.split_inclusive('\n') {
            self.buf.push_str(prefix);
            self.buf.push(' ');
            self.buf.push_str(line);
        }
        self.spill()
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        let r = self.w.write_all(self.buf.as_bytes());
        self.buf.clear();
        r?;
        self.w.flush()
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        // As `BufWriter` does: what is left is written, errors are ignored.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTY: Style = Style {
        escape: true,
        color: false,
    };

    fn rec(message: &str, kvs: &[(&str, &str)]) -> Record {
        Record {
            ts_ns: 1_795_867_855_123_456_000,
            level: log::Level::Info,
            target: "app::db".into(),
            module_path: None,
            file: None,
            line: None,
            kvs: kvs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            message: message.into(),
            truncated: false,
        }
    }

    #[test]
    fn terminal_escaping_makes_control_characters_visible_and_keeps_tabs_and_unicode() {
        assert_eq!(term_escape("plain ünïcødé ✓\ttab"), "plain ünïcødé ✓\ttab");
        assert!(matches!(term_escape("plain"), Cow::Borrowed(_)));
        assert_eq!(term_escape("\x1b[2J"), "\\x1b[2J");
        assert_eq!(term_escape("a\rb\nc\0"), "a\\rb\\nc\\0");
        assert_eq!(term_escape("\x7f\u{9b}"), "\\u{7f}\\u{9b}");
        assert_eq!(term_escape("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(term_escape("\x07\x08"), "\\x07\\x08");
    }

    #[test]
    fn durations_read_like_a_human_wrote_them() {
        let s = 1_000_000_000;
        assert_eq!(format_duration(-5), "0ms");
        assert_eq!(format_duration(0), "0ms");
        assert_eq!(format_duration(350_000_000), "350ms");
        assert_eq!(format_duration(1_250_000_000), "1.2s");
        assert_eq!(format_duration(59_999_000_000), "59.9s");
        assert_eq!(format_duration(60 * s), "1m00s");
        assert_eq!(format_duration(184 * s), "3m04s");
        assert_eq!(format_duration((2 * 3600 + 5 * 60 + 59) * s), "2h05m");
        assert_eq!(format_duration((27 * 3600) * s), "1d03h");
    }

    #[test]
    fn a_record_is_one_line_with_its_key_values() {
        let r = rec(
            "connected",
            &[("user", "bar"), ("note", "two words"), ("e", "")],
        );
        assert_eq!(
            format_record(&r, Style::PLAIN),
            "2026-11-28T12:10:55.123456Z INFO  app::db: connected user=bar note=\"two words\" e=\"\"\n"
        );
    }

    #[test]
    fn cached_timestamps_are_format_micros() {
        let mut times = Times::default();
        let mut out = String::new();
        let mut local = Times::new(Zone::named("America/New_York"));
        let mut all = vec![
            0,
            -1,
            -999,
            -1_000,
            -1_000_000_000,
            -1_000_000_001,
            i64::MIN,
            i64::MAX,
        ];
        let mut ns = 1_795_867_855_999_998_000i64;
        for _ in 0..2000 {
            all.push(ns);
            ns += 997;
        }
        // Going back in time too.
        all.extend([1_795_867_855_123_456_000, 1_795_867_854_000_000_000, 5]);
        // Across the end of summer time in New York (2026-11-01T06:00Z), there and back.
        let fall_back = 1_793_512_800_000_000_000i64;
        for ns in (-3..3).chain((-3..3).rev()) {
            all.push(fall_back + ns * 400_000_000);
        }
        for ns in all {
            out.clear();
            times.push(&mut out, ns);
            assert_eq!(out, runlog::time::format_micros(ns), "{ns}");
            out.clear();
            local.push(&mut out, ns);
            assert_eq!(out, local.zone.format_micros(ns), "{ns}");
        }
    }

    #[test]
    fn multi_line_messages_continue_indented_so_each_record_starts_with_its_time() {
        let r = rec("panicked at x\nline two\n  deeper\n", &[("k", "v")]);
        assert_eq!(
            format_record(&r, Style::PLAIN),
            "2026-11-28T12:10:55.123456Z INFO  app::db: panicked at x k=v\n  line two\n    deeper\n"
        );
        let r = rec("x", &[("k", "a\nb\"c\\")]);
        assert!(format_record(&r, Style::PLAIN).ends_with(" k=\"a\\nb\\\"c\\\\\"\n"));
    }

    #[test]
    fn control_characters_are_raw_in_a_pipe_and_escaped_on_a_terminal() {
        let r = rec("\x1b[31mred\r", &[("k", "\x1b]0;title\x07")]);
        let raw = format_record(&r, Style::PLAIN);
        assert!(
            raw.contains("\x1b[31mred\r k=\x1b]0;title\x07\n"),
            "{raw:?}"
        );
        let tty = format_record(&r, TTY);
        assert!(
            tty.contains("\\x1b[31mred\\r k=\\x1b]0;title\\x07\n"),
            "{tty:?}"
        );
        assert!(!tty.contains('\x1b'));
    }

    #[test]
    fn only_the_level_is_coloured() {
        let mut r = rec("m", &[]);
        r.level = log::Level::Error;
        let s = format_record(
            &r,
            Style {
                escape: true,
                color: true,
            },
        );
        assert!(s.contains(" \x1b[1;31mERROR\x1b[0m app::db: m\n"), "{s:?}");
        let plain = format_record(&r, Style::PLAIN);
        assert!(!plain.contains('\x1b'));
    }

    #[test]
    fn tables_align_columns_with_two_spaces_and_no_trailing_blanks() {
        let t = format_table(
            &["JOB", "RUNS"],
            &[
                vec![Cell::new("a-long-job"), Cell::new("3")],
                vec![Cell::new("b"), Cell::colored("12", "32")],
            ],
            Style::PLAIN,
            None,
        );
        assert_eq!(t, "JOB         RUNS\na-long-job  3\nb           12\n");
    }

    #[test]
    fn table_columns_are_measured_in_terminal_columns_and_job_text_is_cut_when_capped() {
        let rows = vec![
            vec![Cell::job_text("数据备份"), Cell::new("1")],
            vec![Cell::job_text("a\nb"), Cell::new("2")],
            vec![Cell::job_text(&"x".repeat(60)), Cell::new("3")],
        ];
        let t = format_table(&["JOB", "RUNS"], &rows, Style::PLAIN, Some(10));
        assert_eq!(
            t,
            "JOB         RUNS\n数据备份    1\na\\nb        2\nxxxxxxxxx…  3\n"
        );
        let whole = format_table(&["JOB", "RUNS"], &rows, Style::PLAIN, None);
        assert!(
            whole.contains(&format!("{}  3\n", "x".repeat(60))),
            "{whole}"
        );
        assert_eq!(whole.lines().count(), 4);
        // A wide character that does not fit whole is left out, not split.
        assert_eq!(cut_to_width("数据备份", 4), "数…");
        assert_eq!(cut_to_width("短", 4), "短");
    }

    #[test]
    fn json_strings_escape_what_json_needs_and_terminal_controls() {
        assert_eq!(json_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json_string("\n\r\t\x01\x1b"), r#""\n\r\t\u0001\u001b""#);
        assert_eq!(json_string("\x7f\u{9b}ü✓"), "\"\\u007f\\u009bü✓\"");
        let o = JsonObject::new()
            .str("s", "x")
            .num("n", 5u64)
            .opt_str("o", None)
            .bool("b", true)
            .str_map("m", &[("k".into(), "v".into())])
            .raw("a", &json_array(["1".to_owned(), "2".to_owned()]))
            .finish();
        assert_eq!(
            o,
            r#"{"s":"x","n":5,"o":null,"b":true,"m":{"k":"v"},"a":[1,2]}"#
        );
        assert_eq!(JsonObject::new().finish(), "{}");
    }

    #[test]
    fn labels_read_as_key_value_pairs() {
        assert_eq!(format_labels(&[]), "-");
        assert_eq!(
            format_labels(&[("user".into(), "bar".into()), ("env".into(), "prod".into())]),
            "user=bar,env=prod"
        );
    }
}
