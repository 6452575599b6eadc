//! berth-dockerfile owns the Dockerfile front end of the classic builder (dockerd's
//! `docker build` with `DOCKER_BUILDKIT=0`): parsing a Dockerfile into meta ARGs and stages of
//! typed instructions (parser directives, comments, continuation lines, JSON and shell forms,
//! heredocs, flags, Docker's error texts), the shell-word lexer that expands variables the way
//! Docker does, `.dockerignore` reading and matching, and Go duration parsing for HEALTHCHECK.
//!
//! It is pure: no I/O, no processes, no async. It must not depend on any other berth crate;
//! the builder engine (in the daemon) depends on it and runs the instructions.

mod dockerignore;
mod duration;
mod error;
mod instruction;
mod lexer;
mod parser;

pub use dockerignore::{IgnoreMatcher, read_dockerignore};
pub use duration::parse_go_duration;
pub use error::{DockerfileError, DurationError, InstructionError, LexError};
pub use instruction::{Command, CopyArgs, Healthcheck, Heredoc, Instruction, ShellOrExec};
pub use lexer::Lexer;
pub use parser::{Dockerfile, Stage, parse, parse_instruction};
