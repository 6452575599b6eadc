//! The crate's errors, worded as Docker words them.

/// Everything this crate can refuse.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DockerfileError {
    /// The file holds no bytes (dockerd: "the Dockerfile (Dockerfile) cannot be empty").
    #[error("the Dockerfile cannot be empty")]
    Empty,
    /// The file holds only blank lines, comments and directives.
    #[error("file with no instructions")]
    NoInstructions,
    /// An instruction (or a directive) the parser refused, with the line it starts on.
    #[error("dockerfile parse error line {line}: {error}")]
    Line {
        line: usize,
        error: InstructionError,
    },
    /// An instruction given on its own (`parse_instruction`) that was refused.
    #[error("{error}")]
    Instruction { error: InstructionError },
    /// A word the shell lexer could not expand.
    #[error("failed to process {word:?}: {error}")]
    Lex { word: String, error: LexError },
    /// A malformed .dockerignore pattern.
    #[error("syntax error in pattern")]
    BadPattern { pattern: String },
    /// A lone `!` in .dockerignore.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// A Go duration that does not parse (`time.ParseDuration`'s words).
    #[error("time: {kind} {input:?}")]
    Duration { input: String, kind: DurationError },
}

/// Why one instruction was refused (the text after "dockerfile parse error line N: ").
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InstructionError {
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    #[error("no build stage in current context")]
    NoBuildStage,
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("Unknown flag: {0}")]
    UnknownFlag(String),
    #[error("Duplicate flag specified: {0}")]
    DuplicateFlag(String),
    #[error("Missing a value on flag: {0}")]
    MissingFlagValue(String),
    #[error("Expecting boolean value for flag {flag}, not: {value}")]
    NotBoolean { flag: String, value: String },
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    #[error(
        "{0} requires at least two arguments, but only one was provided. Destination could not be determined."
    )]
    NoDestination(&'static str),
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    #[error("{0} must have two arguments")]
    TwoArguments(&'static str),
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    MissingEquals(String),
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    JsonNotStrings,
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName(String),
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildOnbuild,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    #[error("Interval \"--{0}\" cannot be less than 1ms")]
    IntervalTooShort(&'static str),
    #[error("{0}")]
    HealthcheckDuration(Box<DockerfileError>),
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    RetriesSyntax(String),
    #[error("--retries must be at least 1 (not {0})")]
    RetriesTooSmall(i64),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    #[error("{0}")]
    Lex(Box<DockerfileError>),
    #[error("one instruction was expected, found {0}")]
    NotOneInstruction(usize),
}

/// Why the shell lexer refused a word.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LexError {
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
}

/// Why a Go duration did not parse.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    #[error("invalid duration")]
    Invalid,
    #[error("missing unit in duration")]
    MissingUnit,
    #[error("unknown unit {0:?} in duration")]
    UnknownUnit(String),
}
