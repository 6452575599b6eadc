//! The file: parser directives, comments, continuation lines, heredoc bodies, and the split
//! into meta ARGs and stages (buildkit's `parser/parser.go`, `parser/directives.go`).

use crate::error::{DockerfileError, InstructionError};
use crate::instruction::{Command, Heredoc, Instruction, at_line, attach_heredocs, parse_line};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// From the `# escape=` directive, default `\`.
    pub escape: char,
    /// The `# syntax=` directive (ignored by the classic builder).
    pub syntax: Option<String>,
    /// The ARG instructions before the first FROM.
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

/// One build stage: a FROM and what follows it up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub from: Instruction,
    /// The `AS name`, lowercased.
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, DockerfileError> {
    if text.is_empty() {
        return Err(DockerfileError::Empty);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let directives = read_directives(&lines)?;
    let instructions = parse_lines(&lines, directives.escape)?;
    if instructions.is_empty() {
        return Err(DockerfileError::NoInstructions);
    }
    let mut dockerfile = Dockerfile {
        escape: directives.escape,
        syntax: directives.syntax,
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for instruction in instructions {
        match (&instruction.command, dockerfile.stages.last_mut()) {
            (Command::From { alias, .. }, _) => {
                let name = alias.as_ref().map(|alias| alias.to_lowercase());
                dockerfile.stages.push(Stage {
                    from: instruction,
                    name,
                    instructions: Vec::new(),
                });
            }
            (_, Some(stage)) => stage.instructions.push(instruction),
            (Command::Arg(_), None) => dockerfile.meta_args.push(instruction),
            (_, None) => {
                return Err(at_line(instruction.line)(InstructionError::NoBuildStage));
            }
        }
    }
    Ok(dockerfile)
}

/// One instruction line on its own (ONBUILD triggers are stored as text and parsed when a child
/// build runs them). Lines after the first are the heredocs' bodies.
pub fn parse_instruction(line: &str, escape: char) -> Result<Instruction, DockerfileError> {
    let lines: Vec<&str> = line.split_inclusive('\n').collect();
    let mut instructions = parse_lines(&lines, escape).map_err(|error| match error {
        DockerfileError::Line { error, .. } => DockerfileError::Instruction { error },
        other => other,
    })?;
    match instructions.len() {
        1 => Ok(instructions.remove(0)),
        0 => Err(DockerfileError::NoInstructions),
        count => Err(DockerfileError::Instruction {
            error: InstructionError::NotOneInstruction(count),
        }),
    }
}

struct Directives {
    escape: char,
    syntax: Option<String>,
}

/// The directives at the top: `# name=value` lines before anything else, each name once.
fn read_directives(lines: &[&str]) -> Result<Directives, DockerfileError> {
    let mut directives = Directives {
        escape: '\\',
        syntax: None,
    };
    let mut seen: Vec<String> = Vec::new();
    for (index, raw) in lines.iter().enumerate() {
        let line = trim_newline(raw).trim_start();
        let Some((name, value)) = directive(line) else {
            break;
        };
        if seen.contains(&name) {
            return Err(at_line(index + 1)(InstructionError::DuplicateDirective(
                name,
            )));
        }
        match name.as_str() {
            "escape" => {
                directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(at_line(index + 1)(InstructionError::InvalidEscape(value))),
                };
            }
            "syntax" => directives.syntax = Some(value),
            _ => {}
        }
        seen.push(name);
    }
    Ok(directives)
}

/// `#name=value` with Docker's regex `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`, for the
/// names Docker knows (syntax, escape, check).
fn directive(line: &str) -> Option<(String, String)> {
    let body = line.strip_prefix('#')?.trim_start();
    let name_len = body
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body.len());
    let name = &body[..name_len];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = body[name_len..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    let name = name.to_lowercase();
    matches!(name.as_str(), "syntax" | "escape" | "check").then(|| (name, value.to_string()))
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing continuation (the escape, then blanks) if there is one: Docker's
/// `([^E])E[ \t]*$|^E[ \t]*$`.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (line, false);
    };
    if before.ends_with(escape) {
        return (line, false);
    }
    (before, true)
}

/// The logical lines, each parsed, with their heredocs' bodies read.
fn parse_lines(lines: &[&str], escape: char) -> Result<Vec<Instruction>, DockerfileError> {
    let mut instructions = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let first = trim_newline(lines[index]).trim_start();
        index += 1;
        let start_line = index;
        // Comments (and the directives, which are comments too) and blank lines.
        if is_comment(first) {
            continue;
        }
        let (text, mut continues) = trim_continuation(first, escape);
        if !continues && text.is_empty() {
            continue;
        }
        let mut joined = text.to_string();
        while continues && index < lines.len() {
            let next = trim_newline(lines[index]);
            index += 1;
            if is_comment(next) || next.trim_start().is_empty() {
                continue;
            }
            let (text, more) = trim_continuation(next, escape);
            joined.push_str(text);
            continues = more;
        }
        let parsed = parse_line(&joined, escape).map_err(at_line(start_line))?;
        let mut command = parsed.command;
        let mut filled = Vec::new();
        for heredoc in parsed.heredocs {
            let mut content = String::new();
            let mut terminated = false;
            while index < lines.len() {
                let raw = lines[index];
                index += 1;
                let mut candidate = trim_newline(raw);
                if heredoc.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == heredoc.name {
                    terminated = true;
                    break;
                }
                content.push_str(raw);
            }
            if !terminated {
                return Err(at_line(start_line)(InstructionError::UnterminatedHeredoc));
            }
            filled.push(Heredoc { content, ..heredoc });
        }
        attach_heredocs(&mut command, filled);
        instructions.push(Instruction {
            original: joined.trim().to_string(),
            line: start_line,
            command,
        });
    }
    Ok(instructions)
}
