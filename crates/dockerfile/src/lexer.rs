//! Docker's shell-word lexer: quotes, the escape character and `$VAR` / `${VAR…}` expansion,
//! with the semantics of buildkit's `frontend/dockerfile/shell` as dockerd's classic builder
//! uses it.

use crate::error::{DockerfileError, LexError};

/// Expands Dockerfile words against an environment (see the crate docs for the operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    mode: Mode,
}

/// How raw the lexer is: the parser finds heredoc words with quotes and escapes kept and
/// unset variables left as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mode {
    pub(crate) raw_quotes: bool,
    pub(crate) raw_escapes: bool,
    pub(crate) skip_unset: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            mode: Mode::default(),
        }
    }

    pub(crate) fn with_mode(escape: char, mode: Mode) -> Lexer {
        Lexer { escape, mode }
    }

    /// One word: quotes removed, variables expanded.
    pub fn process_word(
        &self,
        word: &str,
        env: &[(String, String)],
    ) -> Result<String, DockerfileError> {
        let lookup = |name: &str| lookup(env, name);
        self.run(word, &lookup).map(|(result, _)| result)
    }

    /// Words split on unquoted whitespace after expansion.
    pub fn process_words(
        &self,
        word: &str,
        env: &[(String, String)],
    ) -> Result<Vec<String>, DockerfileError> {
        let lookup = |name: &str| lookup(env, name);
        self.run(word, &lookup).map(|(_, words)| words)
    }

    /// The names of the variables a word refers to, each once, in the order they are looked up
    /// (a `${A:-$B}` looks B up before A, as Docker's lexer does).
    pub fn vars_used(&self, word: &str) -> Vec<String> {
        let used = std::cell::RefCell::new(Vec::<String>::new());
        let record = |name: &str| {
            let mut used = used.borrow_mut();
            if !name.is_empty() && !used.iter().any(|n| n == name) {
                used.push(name.to_string());
            }
            None
        };
        // An error (a `${X:?}` of an unset X, a missing brace) still leaves the names seen.
        let _ = self.run(word, &record);
        used.into_inner()
    }

    fn run(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, Vec<String>), DockerfileError> {
        let mut walker = Walker {
            chars: word.chars().collect(),
            pos: 0,
            escape: self.escape,
            mode: self.mode,
            env,
        };
        walker
            .process_until(None, self.mode.raw_escapes)
            .map_err(|error| DockerfileError::Lex {
                word: word.to_string(),
                error,
            })
    }
}

/// The last entry named `name` wins, as in Docker's "K=V" lists.
fn lookup(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

/// Words being collected: expanded values split on whitespace, quoted text kept whole.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, text: &str) {
        text.chars().for_each(|ch| self.add_char(ch));
    }

    fn add_raw_string(&mut self, text: &str) {
        self.buf.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

struct Walker<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    mode: Mode,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Walker<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    /// Processes up to `stop` (consumed) or the end; the expanded text and its words.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), LexError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' | '"' => {
                    let value = if ch == '\'' {
                        self.single_quote()?
                    } else {
                        self.double_quote()?
                    };
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '<' => {
                    let value = self.possible_heredoc();
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(LexError::UnexpectedEnd(stop)),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quote(&mut self) -> Result<String, LexError> {
        let mut result = String::new();
        self.pos += 1;
        if self.mode.raw_quotes {
            result.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(LexError::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.mode.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, LexError> {
        let mut result = String::new();
        self.pos += 1;
        if self.mode.raw_quotes {
            result.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(LexError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    if self.mode.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.mode.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.pos += 1;
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// `<<` and the blanks after it stay one word with what follows (a heredoc marker).
    fn possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.pos += 1;
        let mut result = "<<".to_string();
        while let Some(ch @ (' ' | '\t')) = self.peek() {
            result.push(ch);
            self.pos += 1;
        }
        result
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    fn dollar(&mut self) -> Result<String, LexError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get(&name) {
                Some(value) => value,
                None if self.mode.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(LexError::MissingBrace),
            Some('{' | '}' | ':') => return Err(LexError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut op) = self.next() else {
            return Err(LexError::MissingBrace);
        };
        if op == '}' {
            return Ok(match self.get(&name) {
                Some(value) => value,
                None if self.mode.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            });
        }
        let mut modifier = op.to_string();
        let null_is_unset = op == ':';
        if null_is_unset {
            let Some(next) = self.next() else {
                return Err(LexError::MissingBrace);
            };
            op = next;
            modifier.push(op);
        }
        if !matches!(op, '-' | '+' | '?') {
            return Err(LexError::UnsupportedModifier(modifier));
        }
        let word = match self.process_until(Some('}'), false) {
            Ok((word, _)) => word,
            Err(LexError::UnexpectedEnd('}')) => return Err(LexError::MissingBrace),
            Err(error) => return Err(error),
        };
        let value = self.get(&name);
        if value.is_none() && self.mode.skip_unset {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        // `:` treats an empty value as unset.
        let value = value.filter(|value| !(null_is_unset && value.is_empty()));
        match op {
            '-' => Ok(value.unwrap_or(word)),
            '+' => Ok(value.map(|_| word).unwrap_or_default()),
            _ => match value {
                Some(value) => Ok(value),
                None => {
                    let message = if !word.is_empty() {
                        word
                    } else if self.get(&name).is_some() {
                        "is not allowed to be empty".to_string()
                    } else {
                        "is not allowed to be unset".to_string()
                    };
                    Err(LexError::Required { name, message })
                }
            },
        }
    }

    /// A variable name: letters, digits and `_`; or digits only; or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(digit) = self.peek().filter(char::is_ascii_digit) {
                    name.push(digit);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn process_word_expands_like_docker() {
        let env = env(&[
            ("A", "a"),
            ("EMPTY", ""),
            ("SPACED", "x  y"),
            ("B", "b"),
            ("B", "later"),
        ]);
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$A", "a"),
            ("${A}", "a"),
            ("$A$A", "aa"),
            ("${A}bc", "abc"),
            ("$Abc", ""),
            ("$UNSET", ""),
            ("${B}", "later"),
            ("${A:-w}", "a"),
            ("${EMPTY:-w}", "w"),
            ("${UNSET:-w}", "w"),
            ("${A-w}", "a"),
            ("${EMPTY-w}", ""),
            ("${UNSET-w}", "w"),
            ("${A:+w}", "w"),
            ("${EMPTY:+w}", ""),
            ("${UNSET:+w}", ""),
            ("${A+w}", "w"),
            ("${EMPTY+w}", "w"),
            ("${UNSET+w}", ""),
            ("${A:?msg}", "a"),
            ("${EMPTY?msg}", ""),
            ("${UNSET:-${A}}", "a"),
            ("${UNSET:-${ALSO:-deep}}", "deep"),
            ("${A:+${B}-x}", "later-x"),
            ("'$A'", "$A"),
            ("\"$A\"", "a"),
            ("\"${A} 'q'\"", "a 'q'"),
            ("'a b'c", "a bc"),
            ("\\$A", "$A"),
            ("a\\ b", "a b"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\nb\"", "a\\nb"),
            ("\"\\$A\"", "$A"),
            ("$", "$"),
            ("a$", "a$"),
            ("$1", ""),
            ("x\\", "x"),
            ("$SPACED", "x  y"),
        ];
        let lexer = Lexer::new('\\');
        for (word, want) in cases {
            assert_eq!(
                lexer.process_word(word, &env).as_deref(),
                Ok(*want),
                "{word}"
            );
        }
    }

    #[test]
    fn backtick_escape() {
        let env = env(&[("A", "a")]);
        let lexer = Lexer::new('`');
        let cases: &[(&str, &str)] = &[
            ("`$A", "$A"),
            ("c:\\dir", "c:\\dir"),
            ("a` b", "a b"),
            ("\"`\"\"", "\""),
            ("\"\\\"", "\\"),
        ];
        for (word, want) in cases {
            assert_eq!(
                lexer.process_word(word, &env).as_deref(),
                Ok(*want),
                "{word}"
            );
        }
    }

    #[test]
    fn errors_name_the_word_and_reason() {
        let env = env(&[("EMPTY", "")]);
        let lexer = Lexer::new('\\');
        let cases: &[(&str, &str)] = &[
            (
                "${UNSET:?}",
                "failed to process \"${UNSET:?}\": UNSET: is not allowed to be unset",
            ),
            (
                "${UNSET?}",
                "failed to process \"${UNSET?}\": UNSET: is not allowed to be unset",
            ),
            (
                "${EMPTY:?}",
                "failed to process \"${EMPTY:?}\": EMPTY: is not allowed to be empty",
            ),
            (
                "${UNSET:?need it}",
                "failed to process \"${UNSET:?need it}\": UNSET: need it",
            ),
            (
                "${A",
                "failed to process \"${A\": syntax error: missing '}'",
            ),
            (
                "${A:-x",
                "failed to process \"${A:-x\": syntax error: missing '}'",
            ),
            ("${", "failed to process \"${\": syntax error: missing '}'"),
            (
                "${}",
                "failed to process \"${}\": syntax error: bad substitution",
            ),
            (
                "${:-a}",
                "failed to process \"${:-a}\": syntax error: bad substitution",
            ),
            (
                "${A=b}",
                "failed to process \"${A=b}\": unsupported modifier (=) in substitution",
            ),
            (
                "${A:=b}",
                "failed to process \"${A:=b}\": unsupported modifier (:=) in substitution",
            ),
            (
                "'open",
                "failed to process \"'open\": unexpected end of statement while looking for matching single-quote",
            ),
            (
                "\"open",
                "failed to process \"\\\"open\": unexpected end of statement while looking for matching double-quote",
            ),
        ];
        for (word, want) in cases {
            let got = lexer.process_word(word, &env).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "{word}");
        }
    }

    #[test]
    fn process_words_splits_on_unquoted_whitespace() {
        let env = env(&[("A", "a"), ("SPACED", "x  y"), ("EMPTY", "")]);
        let cases: &[(&str, &[&str])] = &[
            ("one two", &["one", "two"]),
            ("  one   two  ", &["one", "two"]),
            ("'one two' three", &["one two", "three"]),
            ("\"$SPACED\" z", &["x  y", "z"]),
            ("$SPACED z", &["x", "y", "z"]),
            ("a\\ b c", &["a b", "c"]),
            ("$A/src $A/dst", &["a/src", "a/dst"]),
            ("$EMPTY", &[]),
            ("''", &[]),
            ("", &[]),
            ("pre${SPACED}post", &["prex", "ypost"]),
        ];
        let lexer = Lexer::new('\\');
        for (word, want) in cases {
            let got = lexer.process_words(word, &env).unwrap();
            assert_eq!(got, *want, "{word}");
        }
    }

    #[test]
    fn vars_used_lists_each_name_once() {
        let lexer = Lexer::new('\\');
        let cases: &[(&str, &[&str])] = &[
            ("plain", &[]),
            ("$A ${B} $A", &["A", "B"]),
            ("${A:-${B:+$C}}", &["C", "B", "A"]),
            ("'$NOT' \"$YES\"", &["YES"]),
            ("\\$NOT", &[]),
            ("${REQUIRED:?x} $AFTER", &["REQUIRED"]),
        ];
        for (word, want) in cases {
            assert_eq!(lexer.vars_used(word), *want, "{word}");
        }
    }
}
