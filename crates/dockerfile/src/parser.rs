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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruction::{CopyArgs, ShellOrExec};

    fn s(text: &str) -> String {
        text.to_string()
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(parsed) => panic!("{text:?}: parsed as {parsed:?}"),
            Err(error) => error.to_string(),
        }
    }

    /// (original, line) of every instruction, stages flattened with their FROMs.
    fn lines(dockerfile: &Dockerfile) -> Vec<(String, usize)> {
        let mut all: Vec<&Instruction> = dockerfile.meta_args.iter().collect();
        for stage in &dockerfile.stages {
            all.push(&stage.from);
            all.extend(&stage.instructions);
        }
        all.iter().map(|i| (i.original.clone(), i.line)).collect()
    }

    #[test]
    fn originals_and_lines() {
        let cases: &[(&str, &[(&str, usize)])] = &[
            ("FROM a\nRUN b\n", &[("FROM a", 1), ("RUN b", 2)]),
            (
                "\n\n  FROM a  \n\tRUN b\t\n",
                &[("FROM a", 3), ("RUN b", 4)],
            ),
            ("FROM a\r\nRUN b\r\n", &[("FROM a", 1), ("RUN b", 2)]),
            (
                "FROM a\nRUN apt-get update && \\\n    apt-get install -y x\nCMD y",
                &[
                    ("FROM a", 1),
                    ("RUN apt-get update &&     apt-get install -y x", 2),
                    ("CMD y", 4),
                ],
            ),
            (
                "FROM a\nRUN one \\\n# a comment\n  # indented comment\ntwo\n",
                &[("FROM a", 1), ("RUN one two", 2)],
            ),
            (
                "FROM a\nRUN one \\\n\n   \ntwo\n",
                &[("FROM a", 1), ("RUN one two", 2)],
            ),
            (
                "FROM a\nRUN one \\  \t\ntwo",
                &[("FROM a", 1), ("RUN one two", 2)],
            ),
            (
                "FROM a\nRUN echo \\\\\nCMD x",
                &[("FROM a", 1), ("RUN echo \\\\", 2), ("CMD x", 3)],
            ),
            ("FROM a\nRUN x \\", &[("FROM a", 1), ("RUN x", 2)]),
            (
                "# comment\n  # another\nFROM a\nRUN b # not a comment\n",
                &[("FROM a", 3), ("RUN b # not a comment", 4)],
            ),
            ("\u{feff}FROM a", &[("FROM a", 1)]),
            ("FROM a\n\\\nRUN b", &[("FROM a", 1), ("RUN b", 2)]),
        ];
        for (text, want) in cases {
            let parsed = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let want: Vec<(String, usize)> = want.iter().map(|(o, l)| (s(o), *l)).collect();
            assert_eq!(lines(&parsed), want, "{text:?}");
        }
    }

    #[test]
    fn escape_directive_changes_continuations() {
        let text = "# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n  && echo done\nCOPY a\\b c:\\dst\\\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.escape, '`');
        let stage = &parsed.stages[0];
        assert_eq!(
            stage.instructions[0].original,
            "RUN dir c:\\   && echo done"
        );
        assert_eq!(stage.instructions[0].line, 3);
        assert_eq!(
            stage.instructions[1].command,
            Command::Copy(CopyArgs {
                sources: vec![s("a\\b")],
                dest: s("c:\\dst\\"),
                ..CopyArgs::default()
            })
        );
    }

    #[test]
    fn directives_only_at_the_top() {
        let cases: &[(&str, char, Option<&str>)] = &[
            ("FROM a", '\\', None),
            (
                "# syntax=docker/dockerfile:1\nFROM a",
                '\\',
                Some("docker/dockerfile:1"),
            ),
            ("#ESCAPE = `\n# Syntax = x \nFROM a", '`', Some("x")),
            ("# check=skip=all\n# escape=`\nFROM a", '`', None),
            // A comment, a blank line or an unknown directive ends the directives.
            ("# hello\n# escape=`\nFROM a", '\\', None),
            ("\n# escape=`\nFROM a", '\\', None),
            ("# foo=bar\n# escape=`\nFROM a", '\\', None),
            ("FROM a\n# escape=`\nRUN b", '\\', None),
        ];
        for (text, escape, syntax) in cases {
            let parsed = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(parsed.escape, *escape, "{text:?}");
            assert_eq!(parsed.syntax.as_deref(), *syntax, "{text:?}");
        }
    }

    #[test]
    fn meta_args_and_stages() {
        let text = "ARG BASE=alpine\nARG TAG\nFROM $BASE:$TAG AS Build\nARG TAG\nRUN make\n\
                    FROM scratch as final\nCOPY --from=build /out /\nFROM final\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.meta_args.len(), 2);
        assert_eq!(
            parsed.meta_args[0].command,
            Command::Arg(vec![(s("BASE"), Some(s("alpine")))])
        );
        let names: Vec<Option<&str>> = parsed.stages.iter().map(|st| st.name.as_deref()).collect();
        assert_eq!(names, [Some("build"), Some("final"), None]);
        assert_eq!(
            parsed.stages[0].from.command,
            Command::From {
                image: s("$BASE:$TAG"),
                alias: Some(s("Build")),
                platform: None
            }
        );
        let counts: Vec<usize> = parsed
            .stages
            .iter()
            .map(|st| st.instructions.len())
            .collect();
        assert_eq!(counts, [2, 1, 0]);
        assert_eq!(parsed.stages[2].from.line, 8);
    }

    #[test]
    fn file_level_refusals() {
        let cases: &[(&str, &str)] = &[
            ("", "the Dockerfile cannot be empty"),
            ("\n  \n# only a comment\n", "file with no instructions"),
            ("# escape=`\n", "file with no instructions"),
            (
                "FROM a\nFOO bar",
                "dockerfile parse error line 2: unknown instruction: FOO",
            ),
            (
                "RUN x\nFROM a",
                "dockerfile parse error line 1: no build stage in current context",
            ),
            (
                "ARG A\nENV B=1\nFROM a",
                "dockerfile parse error line 2: no build stage in current context",
            ),
            (
                "# escape=x\nFROM a",
                "dockerfile parse error line 1: invalid escape token 'x' does not match ` or \\",
            ),
            (
                "# escape=`\n# escape=\\\nFROM a",
                "dockerfile parse error line 2: only one escape parser directive can be used",
            ),
            (
                "FROM a\nRUN --mount=type=cache,target=/x true",
                "dockerfile parse error line 2: Unknown flag: mount",
            ),
            (
                "FROM a\nRUN <<EOF\necho\n",
                "dockerfile parse error line 2: unterminated heredoc",
            ),
            (
                "FROM a\n\nRUN x \\\n  y\nLABEL a=1 b\n",
                "dockerfile parse error line 5: Syntax error - can't find = in \"b\". Must be of the form: name=value",
            ),
            (
                "FROM a\nONBUILD ONBUILD RUN x",
                "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(err(text), *want, "{text:?}");
        }
    }

    #[test]
    fn an_arg_only_file_has_no_stages() {
        let parsed = parse("ARG A=1\n").unwrap();
        assert_eq!(parsed.meta_args.len(), 1);
        assert!(parsed.stages.is_empty());
    }

    #[test]
    fn heredocs_are_read() {
        let text = "FROM a\nRUN <<EOF\necho $HOME\n  EOF\nEOF\nRUN <<-'END' cat >/x\n\tone\n\tEND\n\
                    COPY <<one.txt <<\"two.txt\" keep /dst/\nfirst\none.txt\nsecond\ntwo.txt\nCMD done\n";
        let parsed = parse(text).unwrap();
        let stage = &parsed.stages[0];
        let Command::Run { command, heredocs } = &stage.instructions[0].command else {
            panic!("{:?}", stage.instructions[0]);
        };
        assert_eq!(command, &ShellOrExec::Shell(s("<<EOF")));
        assert_eq!(
            heredocs,
            &[Heredoc {
                name: s("EOF"),
                content: s("echo $HOME\n  EOF\n"),
                expand: true,
                chomp: false
            }]
        );
        let Command::Run { heredocs, .. } = &stage.instructions[1].command else {
            panic!("{:?}", stage.instructions[1]);
        };
        assert_eq!(
            heredocs,
            &[Heredoc {
                name: s("END"),
                content: s("\tone\n"),
                expand: false,
                chomp: true
            }]
        );
        assert_eq!(stage.instructions[1].line, 6);
        let Command::Copy(copy) = &stage.instructions[2].command else {
            panic!("{:?}", stage.instructions[2]);
        };
        assert_eq!(copy.sources, [s("keep")]);
        assert_eq!(copy.dest, "/dst/");
        let docs: Vec<(&str, &str, bool)> = copy
            .heredocs
            .iter()
            .map(|h| (h.name.as_str(), h.content.as_str(), h.expand))
            .collect();
        assert_eq!(
            docs,
            [("one.txt", "first\n", true), ("two.txt", "second\n", false)]
        );
        assert_eq!(stage.instructions[3].original, "CMD done");
        assert_eq!(stage.instructions[3].line, 14);
    }

    #[test]
    fn json_forms_do_not_read_heredocs() {
        let parsed = parse("FROM a\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\nCMD x\n").unwrap();
        assert_eq!(parsed.stages[0].instructions.len(), 2);
    }

    #[test]
    fn onbuild_triggers_parse_on_their_own() {
        let parsed =
            parse("FROM a\nONBUILD RUN echo \\\n  hi\nONBUILD COPY <<EOF /x\nbody\nEOF\n").unwrap();
        let triggers: Vec<&Command> = parsed.stages[0]
            .instructions
            .iter()
            .map(|i| &i.command)
            .collect();
        assert_eq!(
            triggers,
            [
                &Command::Onbuild(s("RUN echo   hi")),
                &Command::Onbuild(s("COPY <<EOF /x\nbody\nEOF"))
            ]
        );
        let run = parse_instruction("RUN echo   hi", '\\').unwrap();
        assert_eq!(
            run.command,
            Command::Run {
                command: ShellOrExec::Shell(s("echo   hi")),
                heredocs: vec![]
            }
        );
        let copy = parse_instruction("COPY <<EOF /x\nbody\nEOF", '\\').unwrap();
        let Command::Copy(copy) = copy.command else {
            panic!()
        };
        assert_eq!(copy.heredocs[0].content, "body\n");
        assert_eq!(
            parse_instruction("FOO x", '\\').map_err(|e| e.to_string()),
            Err(s("unknown instruction: FOO"))
        );
        assert_eq!(
            parse_instruction("RUN a\nRUN b", '\\').map_err(|e| e.to_string()),
            Err(s("one instruction was expected, found 2"))
        );
        assert_eq!(
            parse_instruction("", '\\'),
            Err(DockerfileError::NoInstructions)
        );
    }

    #[test]
    fn keywords_are_case_insensitive_originals_keep_case() {
        let parsed = parse("from a\nRun echo\nwOrKdIr /x\n").unwrap();
        let stage = &parsed.stages[0];
        assert_eq!(stage.from.original, "from a");
        assert_eq!(stage.instructions[0].original, "Run echo");
        assert_eq!(stage.instructions[1].command, Command::Workdir(s("/x")));
    }
}
