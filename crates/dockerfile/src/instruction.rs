//! One instruction: its types, and the parse of one joined logical line into them (buildkit's
//! `parser/line_parsers.go` and `instructions/parse.go`, as dockerd's classic builder uses
//! them).

use crate::duration::parse_go_duration;
use crate::error::{DockerfileError, InstructionError};
use crate::lexer::{Lexer, Mode};

/// One instruction as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// As Docker prints it in "Step N/M : <original>": the line with continuations joined,
    /// comments inside continuations dropped, surrounding whitespace trimmed.
    pub original: String,
    /// 1-based line where it starts.
    pub line: usize,
    pub command: Command,
}

/// The shell form (the raw text) or the exec form (a JSON array of strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellOrExec {
    Shell(String),
    Exec(Vec<String>),
}

/// A here-document attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (for COPY/ADD: the file's name).
    pub name: String,
    /// The lines between the instruction and the delimiter, each with its newline, as written
    /// (leading tabs kept even when `chomp`; see [`Heredoc::text`]).
    pub content: String,
    /// Whether the content's variables are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the content's lines and the delimiter's.
    pub chomp: bool,
}

impl Heredoc {
    /// The content with leading tabs stripped from each line when `chomp`.
    pub fn text(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|line| line.trim_start_matches('\t'))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    From {
        image: String,
        alias: Option<String>,
        platform: Option<String>,
    },
    Run {
        command: ShellOrExec,
        heredocs: Vec<Heredoc>,
    },
    Cmd(ShellOrExec),
    Entrypoint(ShellOrExec),
    Copy(CopyArgs),
    Add(CopyArgs),
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    /// The trigger as written after ONBUILD (with its heredocs' lines appended).
    Onbuild(String),
    Maintainer(String),
}

impl Command {
    /// Docker's upper-case name of the instruction.
    pub fn name(&self) -> &'static str {
        match self {
            Command::From { .. } => "FROM",
            Command::Run { .. } => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
            Command::Env(_) => "ENV",
            Command::Arg(_) => "ARG",
            Command::Label(_) => "LABEL",
            Command::Workdir(_) => "WORKDIR",
            Command::User(_) => "USER",
            Command::Expose(_) => "EXPOSE",
            Command::Volume(_) => "VOLUME",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Shell(_) => "SHELL",
            Command::Onbuild(_) => "ONBUILD",
            Command::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// COPY's and ADD's arguments, unexpanded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// The sources that are paths (heredoc sources are in `heredocs`).
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    /// Durations in nanoseconds; 0 = unset (inherit). `retries` 0 = unset.
    Check {
        test: Vec<String>,
        interval_ns: i64,
        timeout_ns: i64,
        start_period_ns: i64,
        start_interval_ns: i64,
        retries: i64,
    },
}

/// A heredoc marker found on an instruction's line, waiting for its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeredocMarker {
    pub(crate) word: String,
    pub(crate) heredoc: Heredoc,
}

/// The parse of one joined line: the command, and the heredoc markers whose content the
/// caller reads from the lines that follow.
pub(crate) struct Parsed {
    pub(crate) command: Command,
    pub(crate) heredocs: Vec<Heredoc>,
}

type Result<T> = std::result::Result<T, InstructionError>;

/// Docker's `[\t\v\f\r ]+`.
fn is_blank(ch: char) -> bool {
    matches!(ch, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits on the first run of blanks: (keyword, rest).
fn split_first(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.find(is_blank) {
        Some(at) => (&text[..at], text[at..].trim_start_matches(is_blank)),
        None => (text, ""),
    }
}

/// Splits on runs of blanks.
fn split_blanks(text: &str) -> Vec<String> {
    text.split(is_blank)
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

/// The leading `--flag[=value]` words (quotes and escapes removed) and the rest.
fn extract_flags(rest: &str, escape: char) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut remaining = rest;
    loop {
        let trimmed = remaining.trim_start();
        if !trimmed.starts_with("--") {
            return (flags, trimmed);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = trimmed.char_indices();
        let mut end = trimmed.len();
        while let Some((at, ch)) = chars.next() {
            match quote {
                None if ch.is_whitespace() => {
                    end = at;
                    break;
                }
                None if ch == '\'' || ch == '"' => quote = Some(ch),
                Some(q) if ch == q => quote = None,
                _ if ch == escape => {
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                }
                _ => word.push(ch),
            }
        }
        remaining = &trimmed[end..];
        if word == "--" {
            return (flags, remaining.trim_start());
        }
        flags.push(word);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    String,
    Bool,
}

/// Docker's BFlags: only the named flags, each at most once, `--name=value` for strings.
fn parse_flags(
    flags: &[String],
    allowed: &[(&'static str, FlagKind)],
) -> Result<Vec<(&'static str, String)>> {
    let mut values: Vec<(&'static str, String)> = Vec::new();
    for flag in flags {
        let body = flag.trim_start_matches('-');
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let Some(&(name, kind)) = allowed.iter().find(|(known, _)| *known == name) else {
            return Err(InstructionError::UnknownFlag(name.to_string()));
        };
        if values.iter().any(|(seen, _)| *seen == name) {
            return Err(InstructionError::DuplicateFlag(name.to_string()));
        }
        let value = match (kind, value) {
            (FlagKind::String, Some(value)) => value.to_string(),
            (FlagKind::String, None) | (FlagKind::Bool, Some("")) => {
                return Err(InstructionError::MissingFlagValue(name.to_string()));
            }
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some(value)) => match value.to_lowercase().as_str() {
                "true" => "true".to_string(),
                "false" => "false".to_string(),
                _ => {
                    return Err(InstructionError::NotBoolean {
                        flag: name.to_string(),
                        value: value.to_string(),
                    });
                }
            },
        };
        values.push((name, value));
    }
    Ok(values)
}

fn flag(values: &[(&'static str, String)], name: &str) -> Option<String> {
    values
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| value.clone())
}

/// `Some(words)` when the text is a JSON array of strings; `None` when it is not JSON (the
/// shell form); an error for a JSON array holding something else.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(text) => Ok(text),
            _ => Err(InstructionError::JsonNotStrings),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn shell_or_exec(rest: &str) -> Result<ShellOrExec> {
    Ok(match parse_json(rest)? {
        Some(words) => ShellOrExec::Exec(words),
        None => ShellOrExec::Shell(rest.to_string()),
    })
}

fn json_or_words(rest: &str) -> Result<(Vec<String>, bool)> {
    Ok(match parse_json(rest)? {
        Some(words) => (words, true),
        None => (split_blanks(rest), false),
    })
}

/// Docker's `parseWords`: split on unquoted whitespace, quotes and escapes kept.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        match quote {
            None if ch.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
            }
            None => {
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    let Some(next) = chars.next() else { continue };
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                if ch == escape && q != '\'' {
                    let Some(next) = chars.next() else {
                        quote = None;
                        continue;
                    };
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
        }
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `key value` (the value is the rest of the line) or `k=v k2="v 2"`.
fn parse_name_values(
    rest: &str,
    escape: char,
    name: &'static str,
) -> Result<Vec<(String, String)>> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(InstructionError::AtLeastOneArgument(name));
    };
    let pairs = if !first.contains('=') {
        let (key, value) = split_first(rest);
        if value.is_empty() {
            return Err(InstructionError::TwoArguments(name));
        }
        vec![(key.to_string(), value.to_string())]
    } else {
        words
            .iter()
            .map(|word| match word.split_once('=') {
                Some((key, value)) => Ok((key.to_string(), value.to_string())),
                None => Err(InstructionError::MissingEquals(word.clone())),
            })
            .collect::<Result<Vec<_>>>()?
    };
    if pairs.iter().any(|(key, _)| key.is_empty()) {
        return Err(InstructionError::BlankName(name));
    }
    Ok(pairs)
}

/// Whether `word` is a heredoc marker (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`): its heredoc.
pub(crate) fn heredoc_marker(word: &str) -> Result<Option<Heredoc>> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(after) => (true, after),
        None => (false, after),
    };
    let rest = after.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let lex = |raw_quotes| {
        Lexer::with_mode(
            '\\',
            Mode {
                raw_quotes,
                raw_escapes: false,
                skip_unset: true,
            },
        )
        .process_words(rest, &[])
        .map_err(|error| InstructionError::Lex(Box::new(error)))
    };
    let words = lex(false)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lex(true)?;
    let quotes = |text: &str| text.matches(['\'', '"']).count();
    let expand = raw.first().is_some_and(|raw| quotes(raw) == quotes(name));
    Ok(Some(Heredoc {
        name: name.clone(),
        content: String::new(),
        expand,
        chomp,
    }))
}

/// The heredoc markers among a line's words (quotes and escapes kept, variables as written).
fn heredoc_markers(rest: &str) -> Result<Vec<HeredocMarker>> {
    if !rest.contains("<<") {
        return Ok(Vec::new());
    }
    let raw = Lexer::with_mode(
        '\\',
        Mode {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
        },
    );
    let words = raw.process_words(rest, &[]).unwrap_or_default();
    let mut markers = Vec::new();
    for word in words {
        if let Some(heredoc) = heredoc_marker(&word)? {
            markers.push(HeredocMarker { word, heredoc });
        }
    }
    Ok(markers)
}

fn durations(values: &[(&'static str, String)], name: &'static str) -> Result<i64> {
    let Some(text) = flag(values, name).filter(|text| !text.is_empty()) else {
        return Ok(0);
    };
    let ns = parse_go_duration(&text)
        .map_err(|error| InstructionError::HealthcheckDuration(Box::new(error)))?;
    if ns == 0 {
        return Ok(0);
    }
    if ns < 1_000_000 {
        return Err(InstructionError::IntervalTooShort(name));
    }
    Ok(ns)
}

fn parse_healthcheck(flags: &[String], rest: &str) -> Result<Healthcheck> {
    let (kind, args) = split_first(rest);
    if kind.is_empty() {
        return Err(InstructionError::AtLeastOneArgument("HEALTHCHECK"));
    }
    let kind = kind.to_uppercase();
    if kind == "NONE" {
        if !args.is_empty() {
            return Err(InstructionError::HealthcheckNoneArguments);
        }
        return Ok(Healthcheck::None);
    }
    use FlagKind::String as S;
    let values = parse_flags(
        flags,
        &[
            ("interval", S),
            ("timeout", S),
            ("start-period", S),
            ("start-interval", S),
            ("retries", S),
        ],
    )?;
    if kind != "CMD" {
        return Err(InstructionError::HealthcheckType(kind));
    }
    let test = match shell_or_exec(args)? {
        ShellOrExec::Exec(words) if words.is_empty() => {
            return Err(InstructionError::HealthcheckMissingCommand);
        }
        ShellOrExec::Shell(text) if text.is_empty() => {
            return Err(InstructionError::HealthcheckMissingCommand);
        }
        ShellOrExec::Exec(words) => std::iter::once("CMD".to_string()).chain(words).collect(),
        ShellOrExec::Shell(text) => vec!["CMD-SHELL".to_string(), text],
    };
    let retries = match flag(&values, "retries").filter(|text| !text.is_empty()) {
        None => 0,
        Some(text) => {
            let retries: i32 = text
                .parse()
                .map_err(|_| InstructionError::RetriesSyntax(text.clone()))?;
            if retries < 1 {
                return Err(InstructionError::RetriesTooSmall(i64::from(retries)));
            }
            i64::from(retries)
        }
    };
    Ok(Healthcheck::Check {
        test,
        interval_ns: durations(&values, "interval")?,
        timeout_ns: durations(&values, "timeout")?,
        start_period_ns: durations(&values, "start-period")?,
        start_interval_ns: durations(&values, "start-interval")?,
        retries,
    })
}

fn parse_copy(
    name: &'static str,
    flags: &[String],
    rest: &str,
    heredocs: &[HeredocMarker],
) -> Result<CopyArgs> {
    use FlagKind::{Bool as B, String as S};
    let allowed: &[(&'static str, FlagKind)] = if name == "COPY" {
        &[("from", S), ("chown", S), ("chmod", S), ("link", B)]
    } else {
        &[("chown", S), ("chmod", S), ("link", B)]
    };
    let (words, json) = json_or_words(rest)?;
    if words.len() < 2 {
        return Err(InstructionError::NoDestination(name));
    }
    let values = parse_flags(flags, allowed)?;
    let (dest, sources) = match words.split_last() {
        Some((dest, sources)) => (dest.clone(), sources),
        None => return Err(InstructionError::NoDestination(name)),
    };
    if !json && heredoc_marker(&dest)?.is_some() {
        return Err(InstructionError::HeredocDestination(name));
    }
    let mut paths = Vec::new();
    let mut docs = Vec::new();
    for source in sources {
        match heredocs
            .iter()
            .find(|marker| !json && marker.word == *source)
        {
            Some(marker) => docs.push(marker.heredoc.clone()),
            None => paths.push(source.clone()),
        }
    }
    Ok(CopyArgs {
        sources: paths,
        dest,
        from: flag(&values, "from"),
        chown: flag(&values, "chown"),
        chmod: flag(&values, "chmod"),
        link: flag(&values, "link").as_deref() == Some("true"),
        heredocs: docs,
    })
}

fn exactly_one(rest: &str, name: &'static str) -> Result<String> {
    if rest.is_empty() {
        return Err(InstructionError::ExactlyOneArgument(name));
    }
    Ok(rest.to_string())
}

fn no_flags(flags: &[String]) -> Result<()> {
    parse_flags(flags, &[]).map(|_| ())
}

/// Parses one joined logical line (no heredoc content: the markers are returned empty).
pub(crate) fn parse_line(line: &str, escape: char) -> Result<Parsed> {
    let (keyword, rest) = split_first(line);
    let (flags, args) = extract_flags(rest, escape);
    let args = args.trim();
    let keyword_lower = keyword.to_lowercase();
    let mut heredocs = Vec::new();
    let command = match keyword_lower.as_str() {
        "from" => {
            let values = parse_flags(&flags, &[("platform", FlagKind::String)])?;
            let words = split_blanks(args);
            let alias = match words.as_slice() {
                [_] => None,
                [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
                    let lower = name.to_lowercase();
                    let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                        && lower.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)
                        });
                    if !valid {
                        return Err(InstructionError::InvalidStageName(name.clone()));
                    }
                    Some(name.clone())
                }
                _ => return Err(InstructionError::FromArguments),
            };
            Command::From {
                image: words.first().cloned().unwrap_or_default(),
                alias,
                platform: flag(&values, "platform"),
            }
        }
        "run" => {
            // The classic builder knows no RUN flags (`--mount`, `--network`, …).
            no_flags(&flags)?;
            let command = shell_or_exec(args)?;
            if matches!(command, ShellOrExec::Shell(_)) {
                heredocs = heredoc_markers(args)?;
            }
            Command::Run {
                command,
                heredocs: heredocs.iter().map(|m| m.heredoc.clone()).collect(),
            }
        }
        "cmd" => {
            no_flags(&flags)?;
            Command::Cmd(shell_or_exec(args)?)
        }
        "entrypoint" => {
            no_flags(&flags)?;
            Command::Entrypoint(shell_or_exec(args)?)
        }
        "copy" | "add" => {
            let json = parse_json(args)?.is_some();
            let markers = if json {
                Vec::new()
            } else {
                heredoc_markers(args)?
            };
            let name = if keyword_lower == "copy" {
                "COPY"
            } else {
                "ADD"
            };
            let copy = parse_copy(name, &flags, args, &markers)?;
            heredocs = markers;
            if name == "COPY" {
                Command::Copy(copy)
            } else {
                Command::Add(copy)
            }
        }
        "env" => {
            let pairs = parse_name_values(args, escape, "ENV")?;
            no_flags(&flags)?;
            Command::Env(pairs)
        }
        "label" => {
            let pairs = parse_name_values(args, escape, "LABEL")?;
            no_flags(&flags)?;
            Command::Label(pairs)
        }
        "arg" => {
            let words = parse_words(args, escape);
            if words.is_empty() {
                return Err(InstructionError::AtLeastOneArgument("ARG"));
            }
            let pairs = words
                .into_iter()
                .map(|word| match word.split_once('=') {
                    Some(("", _)) => Err(InstructionError::BlankName("ARG")),
                    Some((key, value)) => Ok((key.to_string(), Some(value.to_string()))),
                    None => Ok((word, None)),
                })
                .collect::<Result<Vec<_>>>()?;
            no_flags(&flags)?;
            Command::Arg(pairs)
        }
        "workdir" => {
            let path = exactly_one(args, "WORKDIR")?;
            no_flags(&flags)?;
            Command::Workdir(path)
        }
        "user" => {
            let user = exactly_one(args, "USER")?;
            no_flags(&flags)?;
            Command::User(user)
        }
        "maintainer" => {
            let maintainer = exactly_one(args, "MAINTAINER")?;
            no_flags(&flags)?;
            Command::Maintainer(maintainer)
        }
        "stopsignal" => Command::StopSignal(exactly_one(args, "STOPSIGNAL")?),
        "expose" => {
            let ports = split_blanks(args);
            if ports.is_empty() {
                return Err(InstructionError::AtLeastOneArgument("EXPOSE"));
            }
            no_flags(&flags)?;
            Command::Expose(ports)
        }
        "volume" => {
            let (volumes, _) = json_or_words(args)?;
            if volumes.is_empty() {
                return Err(InstructionError::AtLeastOneArgument("VOLUME"));
            }
            no_flags(&flags)?;
            let volumes: Vec<String> = volumes.iter().map(|v| v.trim().to_string()).collect();
            if volumes.iter().any(String::is_empty) {
                return Err(InstructionError::EmptyVolume);
            }
            Command::Volume(volumes)
        }
        "shell" => {
            no_flags(&flags)?;
            match parse_json(args)? {
                Some(words) if words.is_empty() => {
                    return Err(InstructionError::AtLeastOneArgument("SHELL"));
                }
                Some(words) => Command::Shell(words),
                None if args.is_empty() => {
                    return Err(InstructionError::AtLeastOneArgument("SHELL"));
                }
                None => return Err(InstructionError::ShellNotJson),
            }
        }
        "healthcheck" => Command::Healthcheck(parse_healthcheck(&flags, args)?),
        "onbuild" => {
            // The trigger is everything after the keyword, flags included, as written.
            let trigger = rest.trim();
            let (trigger_keyword, _) = split_first(trigger);
            if trigger_keyword.is_empty() {
                return Err(InstructionError::AtLeastOneArgument("ONBUILD"));
            }
            match trigger_keyword.to_uppercase().as_str() {
                "ONBUILD" => return Err(InstructionError::OnbuildOnbuild),
                upper @ ("FROM" | "MAINTAINER") => {
                    return Err(InstructionError::OnbuildTrigger(upper.to_string()));
                }
                _ => {}
            }
            // A RUN/COPY/ADD trigger may carry heredocs, read by the caller.
            if let Ok(parsed) = parse_line(trigger, escape) {
                heredocs = match parsed.command {
                    Command::Run { .. } | Command::Copy(_) | Command::Add(_) => parsed
                        .heredocs
                        .into_iter()
                        .map(|h| HeredocMarker {
                            word: String::new(),
                            heredoc: h,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
            }
            Command::Onbuild(trigger.to_string())
        }
        _ => return Err(InstructionError::UnknownInstruction(keyword.to_uppercase())),
    };
    Ok(Parsed {
        command,
        heredocs: heredocs.into_iter().map(|marker| marker.heredoc).collect(),
    })
}

/// Fills the heredocs' content into the command, in the order the markers were found.
pub(crate) fn attach_heredocs(command: &mut Command, filled: Vec<Heredoc>) {
    match command {
        Command::Run { heredocs, .. } => *heredocs = filled,
        Command::Copy(copy) | Command::Add(copy) => {
            // Only the sources' markers are attached; content lookups are by name.
            for heredoc in &mut copy.heredocs {
                if let Some(full) = filled.iter().find(|f| f.name == heredoc.name) {
                    heredoc.content = full.content.clone();
                }
            }
        }
        Command::Onbuild(trigger) => {
            for heredoc in filled {
                trigger.push('\n');
                trigger.push_str(&heredoc.content);
                trigger.push_str(&heredoc.name);
            }
        }
        _ => {}
    }
}

/// Wraps a parse failure with the line it starts on.
pub(crate) fn at_line(line: usize) -> impl Fn(InstructionError) -> DockerfileError {
    move |error| DockerfileError::Line { line, error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_instruction;

    fn cmd(line: &str) -> Command {
        parse_instruction(line, '\\')
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .command
    }

    fn err(line: &str) -> String {
        match parse_instruction(line, '\\') {
            Ok(parsed) => panic!("{line}: parsed as {parsed:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn s(text: &str) -> String {
        text.to_string()
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn pairs(words: &[(&str, &str)]) -> Vec<(String, String)> {
        words.iter().map(|(k, v)| (s(k), s(v))).collect()
    }

    #[test]
    fn each_instruction_parses() {
        let cases: Vec<(&str, Command)> = vec![
            (
                "FROM alpine",
                Command::From {
                    image: s("alpine"),
                    alias: None,
                    platform: None,
                },
            ),
            (
                "from --platform=$BUILDPLATFORM golang:1.22 AS Build",
                Command::From {
                    image: s("golang:1.22"),
                    alias: Some(s("Build")),
                    platform: Some(s("$BUILDPLATFORM")),
                },
            ),
            (
                "RUN echo hi && ls",
                Command::Run {
                    command: ShellOrExec::Shell(s("echo hi && ls")),
                    heredocs: vec![],
                },
            ),
            (
                r#"RUN ["echo", "hi"]"#,
                Command::Run {
                    command: ShellOrExec::Exec(strings(&["echo", "hi"])),
                    heredocs: vec![],
                },
            ),
            (
                r#"RUN [ "echo", oops ]"#,
                Command::Run {
                    command: ShellOrExec::Shell(s(r#"[ "echo", oops ]"#)),
                    heredocs: vec![],
                },
            ),
            (
                r#"CMD ["a", "b c"]"#,
                Command::Cmd(ShellOrExec::Exec(strings(&["a", "b c"]))),
            ),
            (
                "CMD echo $HOME",
                Command::Cmd(ShellOrExec::Shell(s("echo $HOME"))),
            ),
            ("CMD []", Command::Cmd(ShellOrExec::Exec(vec![]))),
            (
                "ENTRYPOINT [\"/bin/sh\"]",
                Command::Entrypoint(ShellOrExec::Exec(strings(&["/bin/sh"]))),
            ),
            (
                "entrypoint top -b",
                Command::Entrypoint(ShellOrExec::Shell(s("top -b"))),
            ),
            (
                "COPY a b /dst/",
                Command::Copy(CopyArgs {
                    sources: strings(&["a", "b"]),
                    dest: s("/dst/"),
                    ..CopyArgs::default()
                }),
            ),
            (
                r#"COPY ["a b", "/d st"]"#,
                Command::Copy(CopyArgs {
                    sources: strings(&["a b"]),
                    dest: s("/d st"),
                    ..CopyArgs::default()
                }),
            ),
            (
                "COPY --from=build --chown=1:1 --chmod=0644 --link /out /app",
                Command::Copy(CopyArgs {
                    sources: strings(&["/out"]),
                    dest: s("/app"),
                    from: Some(s("build")),
                    chown: Some(s("1:1")),
                    chmod: Some(s("0644")),
                    link: true,
                    heredocs: vec![],
                }),
            ),
            (
                "COPY --link=false a b",
                Command::Copy(CopyArgs {
                    sources: strings(&["a"]),
                    dest: s("b"),
                    ..CopyArgs::default()
                }),
            ),
            (
                "ADD --chown=\"app user\" http://x/y.tgz /",
                Command::Add(CopyArgs {
                    sources: strings(&["http://x/y.tgz"]),
                    dest: s("/"),
                    chown: Some(s("app user")),
                    ..CopyArgs::default()
                }),
            ),
            ("ENV A 1", Command::Env(pairs(&[("A", "1")]))),
            (
                "ENV A  hello   world ",
                Command::Env(pairs(&[("A", "hello   world")])),
            ),
            (
                "ENV A=1 B=\"x y\" C=a\\ b",
                Command::Env(pairs(&[("A", "1"), ("B", "\"x y\""), ("C", "a\\ b")])),
            ),
            ("ENV A=", Command::Env(pairs(&[("A", "")]))),
            ("ENV A=b=c", Command::Env(pairs(&[("A", "b=c")]))),
            ("ARG V", Command::Arg(vec![(s("V"), None)])),
            (
                "ARG V=1 W",
                Command::Arg(vec![(s("V"), Some(s("1"))), (s("W"), None)]),
            ),
            (
                "ARG V=\"a b\"",
                Command::Arg(vec![(s("V"), Some(s("\"a b\"")))]),
            ),
            ("ARG V=", Command::Arg(vec![(s("V"), Some(s("")))])),
            (
                "LABEL a=1 \"b c\"=\"d e\"",
                Command::Label(pairs(&[("a", "1"), ("\"b c\"", "\"d e\"")])),
            ),
            (
                "LABEL version 1.0",
                Command::Label(pairs(&[("version", "1.0")])),
            ),
            ("WORKDIR /app dir", Command::Workdir(s("/app dir"))),
            ("USER app:app", Command::User(s("app:app"))),
            (
                "EXPOSE 80 443/tcp  $PORT",
                Command::Expose(strings(&["80", "443/tcp", "$PORT"])),
            ),
            (
                "VOLUME /data /logs",
                Command::Volume(strings(&["/data", "/logs"])),
            ),
            (
                "VOLUME [\"/data\", \"/my logs\"]",
                Command::Volume(strings(&["/data", "/my logs"])),
            ),
            ("STOPSIGNAL SIGKILL", Command::StopSignal(s("SIGKILL"))),
            (
                "SHELL [\"powershell\", \"-command\"]",
                Command::Shell(strings(&["powershell", "-command"])),
            ),
            ("ONBUILD RUN echo hi", Command::Onbuild(s("RUN echo hi"))),
            (
                "onbuild   copy  . /app",
                Command::Onbuild(s("copy  . /app")),
            ),
            (
                "MAINTAINER Jane <jane@example.com>",
                Command::Maintainer(s("Jane <jane@example.com>")),
            ),
            ("HEALTHCHECK NONE", Command::Healthcheck(Healthcheck::None)),
            ("healthcheck none", Command::Healthcheck(Healthcheck::None)),
            (
                "HEALTHCHECK CMD curl -f http://localhost/",
                Command::Healthcheck(Healthcheck::Check {
                    test: strings(&["CMD-SHELL", "curl -f http://localhost/"]),
                    interval_ns: 0,
                    timeout_ns: 0,
                    start_period_ns: 0,
                    start_interval_ns: 0,
                    retries: 0,
                }),
            ),
            (
                "HEALTHCHECK --interval=5s --timeout=1m30s --start-period=100ms --start-interval=2s --retries=3 CMD [\"/check\", \"-q\"]",
                Command::Healthcheck(Healthcheck::Check {
                    test: strings(&["CMD", "/check", "-q"]),
                    interval_ns: 5_000_000_000,
                    timeout_ns: 90_000_000_000,
                    start_period_ns: 100_000_000,
                    start_interval_ns: 2_000_000_000,
                    retries: 3,
                }),
            ),
            (
                "HEALTHCHECK --interval=0s cmd true",
                Command::Healthcheck(Healthcheck::Check {
                    test: strings(&["CMD-SHELL", "true"]),
                    interval_ns: 0,
                    timeout_ns: 0,
                    start_period_ns: 0,
                    start_interval_ns: 0,
                    retries: 0,
                }),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(cmd(line), want, "{line}");
        }
    }

    #[test]
    fn refusals_use_dockers_words() {
        let cases: &[(&str, &str)] = &[
            ("FOO bar", "unknown instruction: FOO"),
            ("foo bar", "unknown instruction: FOO"),
            (
                "RUN --mount=type=cache,target=/x make",
                "Unknown flag: mount",
            ),
            ("RUN --network=none true", "Unknown flag: network"),
            ("COPY --exclude=*.md . /", "Unknown flag: exclude"),
            ("ADD --from=x a b", "Unknown flag: from"),
            ("COPY --from a b", "Missing a value on flag: from"),
            (
                "COPY --from=a --from=b c d",
                "Duplicate flag specified: from",
            ),
            (
                "COPY --link=maybe a b",
                "Expecting boolean value for flag link, not: maybe",
            ),
            (
                "COPY onlyone",
                "COPY requires at least two arguments, but only one was provided. Destination could not be determined.",
            ),
            (
                "ADD",
                "ADD requires at least two arguments, but only one was provided. Destination could not be determined.",
            ),
            (
                "COPY <<EOF <<EOF2",
                "COPY cannot accept a heredoc as a destination",
            ),
            ("ENV", "ENV requires at least one argument"),
            ("ENV A", "ENV must have two arguments"),
            ("ENV =x", "ENV names can not be blank"),
            (
                "ENV A=1 B",
                "Syntax error - can't find = in \"B\". Must be of the form: name=value",
            ),
            ("LABEL", "LABEL requires at least one argument"),
            ("LABEL key", "LABEL must have two arguments"),
            (
                "LABEL a=1 b",
                "Syntax error - can't find = in \"b\". Must be of the form: name=value",
            ),
            ("ARG", "ARG requires at least one argument"),
            ("ARG =x", "ARG names can not be blank"),
            ("WORKDIR", "WORKDIR requires exactly one argument"),
            ("USER", "USER requires exactly one argument"),
            ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
            ("MAINTAINER", "MAINTAINER requires exactly one argument"),
            ("EXPOSE", "EXPOSE requires at least one argument"),
            ("VOLUME", "VOLUME requires at least one argument"),
            (
                "VOLUME [\"\"]",
                "VOLUME specified can not be an empty string",
            ),
            (
                "SHELL /bin/sh -c",
                "SHELL requires the arguments to be in JSON form",
            ),
            ("SHELL", "SHELL requires at least one argument"),
            ("SHELL []", "SHELL requires at least one argument"),
            (
                "CMD [\"a\", 1]",
                "when using JSON array syntax, arrays must be comprised of strings only",
            ),
            ("FROM", "FROM requires either one or three arguments"),
            ("FROM a b", "FROM requires either one or three arguments"),
            (
                "FROM a AS b c",
                "FROM requires either one or three arguments",
            ),
            (
                "FROM a AS 1st",
                "invalid name for build stage: \"1st\", name can't start with a number or contain symbols",
            ),
            (
                "FROM a AS b$c",
                "invalid name for build stage: \"b$c\", name can't start with a number or contain symbols",
            ),
            (
                "FROM --platform linux/amd64 a",
                "Missing a value on flag: platform",
            ),
            ("ONBUILD", "ONBUILD requires at least one argument"),
            (
                "ONBUILD ONBUILD RUN x",
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ),
            (
                "ONBUILD from alpine",
                "FROM isn't allowed as an ONBUILD trigger",
            ),
            (
                "ONBUILD MAINTAINER me",
                "MAINTAINER isn't allowed as an ONBUILD trigger",
            ),
            ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
            ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
            ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
            (
                "HEALTHCHECK CMD []",
                "Missing command after HEALTHCHECK CMD",
            ),
            (
                "HEALTHCHECK TEST x",
                "Unknown type \"TEST\" in HEALTHCHECK (try CMD)",
            ),
            (
                "HEALTHCHECK --interval=1ns CMD x",
                "Interval \"--interval\" cannot be less than 1ms",
            ),
            (
                "HEALTHCHECK --timeout=999us CMD x",
                "Interval \"--timeout\" cannot be less than 1ms",
            ),
            (
                "HEALTHCHECK --interval=5 CMD x",
                "time: missing unit in duration \"5\"",
            ),
            (
                "HEALTHCHECK --retries=0 CMD x",
                "--retries must be at least 1 (not 0)",
            ),
            (
                "HEALTHCHECK --retries=-2 CMD x",
                "--retries must be at least 1 (not -2)",
            ),
            (
                "HEALTHCHECK --retries=x CMD x",
                "strconv.ParseInt: parsing \"x\": invalid syntax",
            ),
            ("HEALTHCHECK --foo=1 CMD x", "Unknown flag: foo"),
            ("EXPOSE --x 80", "Unknown flag: x"),
        ];
        for (line, want) in cases {
            assert_eq!(err(line), *want, "{line}");
        }
    }

    #[test]
    fn flags_end_at_double_dash_and_take_quotes() {
        let (flags, rest) = extract_flags("--a=1 --b=\"x y\" -- --not-a-flag c", '\\');
        assert_eq!(flags, strings(&["--a=1", "--b=x y"]));
        assert_eq!(rest, "--not-a-flag c");
        let (flags, rest) = extract_flags("  plain --x", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, "plain --x");
    }

    #[test]
    fn heredoc_markers_are_recognised() {
        /// (name, expand, chomp), or not a marker.
        type Marker = Option<(&'static str, bool, bool)>;
        let cases: &[(&str, Marker)] = &[
            ("<<EOF", Some(("EOF", true, false))),
            ("<<-EOF", Some(("EOF", true, true))),
            ("<<'EOF'", Some(("EOF", false, false))),
            ("<<\"EOF\"", Some(("EOF", false, false))),
            ("<<-\"END\"", Some(("END", false, true))),
            ("2<<EOF", Some(("EOF", true, false))),
            ("<<", None),
            ("<<<EOF", None),
            ("a<<EOF", None),
            ("EOF", None),
        ];
        for (word, want) in cases {
            let got = heredoc_marker(word)
                .unwrap()
                .map(|h| (h.name, h.expand, h.chomp));
            let want = want.map(|(n, e, c)| (s(n), e, c));
            assert_eq!(got, want, "{word}");
        }
    }

    #[test]
    fn chomped_heredoc_text_loses_leading_tabs() {
        let heredoc = Heredoc {
            name: s("EOF"),
            content: s("\t\tone\n\ttwo\n  three\n"),
            expand: true,
            chomp: true,
        };
        assert_eq!(heredoc.text(), "one\ntwo\n  three\n");
        let kept = Heredoc {
            chomp: false,
            ..heredoc.clone()
        };
        assert_eq!(kept.text(), heredoc.content);
    }

    #[test]
    fn command_names() {
        assert_eq!(cmd("onbuild run x").name(), "ONBUILD");
        assert_eq!(cmd("stopsignal 9").name(), "STOPSIGNAL");
    }
}
