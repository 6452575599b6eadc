//! `.dockerignore`: reading the file and matching context paths, with moby/patternmatcher's
//! semantics (the last matching pattern decides, a folder's match covers what is below it).

use crate::error::DockerfileError;

/// The patterns of a .dockerignore: comments and blank lines dropped, each trimmed and
/// path-cleaned, a leading `/` dropped, `!` exceptions kept with their `!`.
pub fn read_dockerignore(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut patterns = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        patterns.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    patterns
}

/// Go's `path.Clean`: the shortest equivalent path ("." for nothing).
pub(crate) fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Matches context paths against .dockerignore patterns.
#[derive(Debug, Clone)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
    exceptions: bool,
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Glob(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run without `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    /// `[...]`: (negated, ranges).
    Class(bool, Vec<(char, char)>),
    /// `**/` in the middle: nothing, or anything ending with `/`.
    Folders,
    /// `**` at the end: anything.
    Rest,
}

impl IgnoreMatcher {
    pub fn new(patterns: &[String]) -> Result<IgnoreMatcher, DockerfileError> {
        let mut matcher = IgnoreMatcher {
            patterns: Vec::new(),
            exceptions: false,
        };
        for pattern in patterns {
            let pattern = pattern.trim();
            if pattern.is_empty() {
                continue;
            }
            let mut pattern = clean_path(pattern);
            let exclusion = pattern.starts_with('!');
            if exclusion {
                if pattern.len() == 1 {
                    return Err(DockerfileError::IllegalExclusion);
                }
                pattern.remove(0);
                matcher.exceptions = true;
            }
            let kind = compile(&pattern)?;
            matcher.patterns.push(Pattern { exclusion, kind });
        }
        Ok(matcher)
    }

    /// Whether a context path is excluded: the last pattern that matches it or one of its
    /// parent folders decides.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean_path(path);
        if path == "." {
            return false;
        }
        let parents: Vec<&str> = match path.rfind('/') {
            Some(at) => path[..at].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let hit = pattern.matches(&path)
                || (1..=parents.len()).any(|n| pattern.matches(&parents[..n].join("/")));
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether any `!` pattern exists (so a walk must still enter excluded folders).
    pub fn has_exceptions(&self) -> bool {
        self.exceptions
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact(exact) => path == exact,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Kind::Glob(tokens) => {
                let chars: Vec<char> = path.chars().collect();
                glob(tokens, &chars)
            }
        }
    }
}

/// patternmatcher's classification: exact text, `dir/**` (prefix), a leading `**` (suffix),
/// or a glob.
fn compile(pattern: &str) -> Result<Kind, DockerfileError> {
    let bad = || DockerfileError::BadPattern {
        pattern: pattern.to_string(),
    };
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Glob,
    }
    let mut detected = Detected::Exact;
    let mut tokens = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut at = 0;
    let mut iteration = 0;
    while at < chars.len() {
        let ch = chars[at];
        at += 1;
        match ch {
            '*' if chars.get(at) == Some(&'*') => {
                at += 1;
                if chars.get(at) == Some(&'/') {
                    at += 1;
                }
                if at == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        tokens.push(Token::Rest);
                        detected = Detected::Glob;
                    }
                } else {
                    tokens.push(Token::Folders);
                    detected = Detected::Glob;
                }
                if iteration == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::Glob;
            }
            '?' => {
                tokens.push(Token::One);
                detected = Detected::Glob;
            }
            '\\' => {
                let Some(&escaped) = chars.get(at) else {
                    return Err(bad());
                };
                at += 1;
                tokens.push(Token::Literal(escaped));
                detected = Detected::Glob;
            }
            '[' => {
                let (token, next) = class(&chars, at).ok_or_else(bad)?;
                tokens.push(token);
                at = next;
                detected = Detected::Glob;
            }
            _ => tokens.push(Token::Literal(ch)),
        }
        iteration += 1;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact(pattern.to_string()),
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Detected::Glob => Kind::Glob(tokens),
    })
}

/// A `[...]` class starting after its `[`: the token and the index after its `]`.
fn class(chars: &[char], mut at: usize) -> Option<(Token, usize)> {
    let negated = chars.get(at) == Some(&'^');
    if negated {
        at += 1;
    }
    let mut ranges = Vec::new();
    let read = |at: &mut usize| -> Option<char> {
        let mut ch = *chars.get(*at)?;
        *at += 1;
        if ch == '\\' {
            ch = *chars.get(*at)?;
            *at += 1;
        }
        Some(ch)
    };
    loop {
        match chars.get(at) {
            None => return None,
            Some(']') if !ranges.is_empty() => {
                return Some((Token::Class(negated, ranges), at + 1));
            }
            Some(_) => {
                let low = read(&mut at)?;
                let mut high = low;
                if chars.get(at) == Some(&'-') && chars.get(at + 1).is_some_and(|c| *c != ']') {
                    at += 1;
                    high = read(&mut at)?;
                    if high < low {
                        return None;
                    }
                }
                ranges.push((low, high));
            }
        }
    }
}

fn glob(tokens: &[Token], path: &[char]) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return path.is_empty();
    };
    match token {
        Token::Literal(ch) => path.first() == Some(ch) && glob(rest, &path[1..]),
        Token::One => path.first().is_some_and(|c| *c != '/') && glob(rest, &path[1..]),
        Token::Class(negated, ranges) => {
            path.first().is_some_and(|c| {
                ranges.iter().any(|(low, high)| (low..=high).contains(&c)) != *negated
            }) && glob(rest, &path[1..])
        }
        Token::Star => {
            let run = path.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|n| glob(rest, &path[n..]))
        }
        Token::Folders => {
            glob(rest, path)
                || (0..path.len()).any(|i| path[i] == '/' && glob(rest, &path[i + 1..]))
        }
        Token::Rest => (0..=path.len()).any(|n| glob(rest, &path[n..])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(text: &str) -> IgnoreMatcher {
        IgnoreMatcher::new(&read_dockerignore(text)).unwrap()
    }

    #[test]
    fn reading_cleans_patterns() {
        let text = "# comment\n\n  *.log  \n/abs\n!keep.log\n! spaced\ndir/\n./a/../b\n #not a comment\n/\n";
        assert_eq!(
            read_dockerignore(text),
            [
                "*.log",
                "abs",
                "!keep.log",
                "!spaced",
                "dir",
                "b",
                "#not a comment",
                "/"
            ]
        );
    }

    #[test]
    fn excluded_paths() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.log", "a.log", true),
            ("*.log", "dir/a.log", false),
            ("*.log", "a.txt", false),
            ("*/*.log", "dir/a.log", true),
            ("secret.txt", "secret.txt", true),
            ("secret.txt", "dir/secret.txt", false),
            ("dir/", "dir", true),
            ("dir/", "dir/file", true),
            ("dir/", "dir/sub/file", true),
            ("dir/", "dirx/file", false),
            ("/abs", "abs", true),
            ("/abs", "abs/below", true),
            ("**/*.go", "main.go", true),
            ("**/*.go", "a/b/c.go", true),
            ("**/*.go", "a/b/c.rs", false),
            ("**/foo", "foo", true),
            ("**/foo", "x/y/foo", true),
            ("**/foo", "x/y/foo/z", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/x/y/c", false),
            ("a/**", "a/x", true),
            ("a/**", "ab", false),
            ("file?.txt", "file1.txt", true),
            ("file?.txt", "file12.txt", false),
            ("[abc].txt", "b.txt", true),
            ("[abc].txt", "d.txt", false),
            ("[a-c]x", "cx", true),
            ("[^a-c]x", "dx", true),
            ("[^a-c]x", "ax", false),
            ("\\*.txt", "*.txt", true),
            ("\\*.txt", "a.txt", false),
            ("a.b", "axb", false),
            ("*", "anything", true),
            ("*", "dir/anything", true),
            ("#comment", "#comment", false),
            ("./a", "a", true),
            ("a", "./a", true),
            ("a", "a/", true),
        ];
        for (patterns, path, want) in cases {
            assert_eq!(
                matcher(patterns).excluded(path),
                *want,
                "{patterns:?} {path}"
            );
        }
    }

    #[test]
    fn the_last_matching_pattern_decides() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.log\n!keep.log", "keep.log", false),
            ("*.log\n!keep.log", "other.log", true),
            ("!keep.log\n*.log", "keep.log", true),
            (
                "*.md\n!README*.md\nREADME-secret.md",
                "README-secret.md",
                true,
            ),
            ("*.md\n!README*.md\nREADME-secret.md", "README.md", false),
            // An exception inside an excluded folder re-includes the file, not its siblings.
            ("docs\n!docs/keep.md", "docs/keep.md", false),
            ("docs\n!docs/keep.md", "docs/other.md", true),
            ("docs\n!docs/keep.md", "docs", true),
            ("docs/**\n!docs/sub", "docs/sub/file", false),
            ("docs/**\n!docs/sub", "docs/other", true),
            ("*\n!src\nsrc/*.tmp", "src/a.rs", false),
            ("*\n!src\nsrc/*.tmp", "src/a.tmp", true),
            ("*\n!src\nsrc/*.tmp", "Dockerfile", true),
        ];
        for (patterns, path, want) in cases {
            assert_eq!(
                matcher(patterns).excluded(path),
                *want,
                "{patterns:?} {path}"
            );
        }
    }

    #[test]
    fn exceptions_are_reported() {
        assert!(!matcher("*.log\ndir").has_exceptions());
        assert!(matcher("*.log\n!keep.log").has_exceptions());
    }

    #[test]
    fn bad_patterns_are_refused() {
        let cases: &[(&[&str], DockerfileError)] = &[
            (&["!"], DockerfileError::IllegalExclusion),
            (
                &["[abc"],
                DockerfileError::BadPattern {
                    pattern: "[abc".into(),
                },
            ),
            (
                &["x\\"],
                DockerfileError::BadPattern {
                    pattern: "x\\".into(),
                },
            ),
            (
                &["[z-a]"],
                DockerfileError::BadPattern {
                    pattern: "[z-a]".into(),
                },
            ),
        ];
        for (patterns, want) in cases {
            let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
            assert_eq!(
                IgnoreMatcher::new(&patterns).map(|_| ()),
                Err(want.clone()),
                "{patterns:?}"
            );
        }
        assert_eq!(
            IgnoreMatcher::new(&["[abc".to_string()])
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("syntax error in pattern".to_string())
        );
    }

    #[test]
    fn clean_paths_like_go() {
        let cases: &[(&str, &str)] = &[
            ("", "."),
            (".", "."),
            ("a/./b/", "a/b"),
            ("a//b", "a/b"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("../x/../y", "../y"),
        ];
        for (path, want) in cases {
            assert_eq!(clean_path(path), *want, "{path}");
        }
    }
}
