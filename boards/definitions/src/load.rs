//! Reading a definition from TOML: bounded, strictly decoded (an unknown key is an
//! error naming the file, the key and its line), then validated as a whole.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::definition::BoardDefinition;
use crate::validate::Problems;

/// The largest definition file read.
pub const MAX_DEFINITION_BYTES: u64 = 64 << 10;

/// Why a definition could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// The file could not be read.
    #[error("could not read board definition {path}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_DEFINITION_BYTES`].
    #[error("board definition {path} is larger than {MAX_DEFINITION_BYTES} bytes")]
    TooLarge {
        /// Which file.
        path: PathBuf,
    },
    /// The TOML is malformed, or has an unknown, missing or mistyped key.
    #[error("{path}{}: {message}", line.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Decode {
        /// Which file.
        path: PathBuf,
        /// The line and column (1-based) the parser points at, when it does.
        line: Option<(usize, usize)>,
        /// What the parser said (it names the key).
        message: String,
    },
    /// The definition decodes but is not valid.
    #[error("{path} is not a valid board definition: {problems}")]
    Invalid {
        /// Which file.
        path: PathBuf,
        /// Everything wrong with it.
        problems: Problems,
    },
    /// The file's name is not the board's name.
    #[error("{path} defines board {name:?}; name the file {name}.toml")]
    FileName {
        /// Which file.
        path: PathBuf,
        /// The `name` inside.
        name: String,
    },
}

impl BoardDefinition {
    /// Decodes and validates a definition; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, BoardError> {
        if text.len() as u64 > MAX_DEFINITION_BYTES {
            return Err(BoardError::TooLarge {
                path: origin.to_owned(),
            });
        }
        let board: BoardDefinition = toml::from_str(text).map_err(|e| BoardError::Decode {
            path: origin.to_owned(),
            line: e.span().map(|span| line_and_column(text, span.start)),
            message: e.message().trim_end().to_owned(),
        })?;
        board.validate().map_err(|problems| BoardError::Invalid {
            path: origin.to_owned(),
            problems,
        })?;
        Ok(board)
    }

    /// Reads `path` (at most [`MAX_DEFINITION_BYTES`]), which must be named after the board.
    pub fn load(path: &Path) -> Result<Self, BoardError> {
        let read = |source| BoardError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut text = String::new();
        file.take(MAX_DEFINITION_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read)?;
        let board = Self::from_toml(&text, path)?;
        if path.file_stem().and_then(|s| s.to_str()) != Some(board.name.as_str()) {
            return Err(BoardError::FileName {
                path: path.to_owned(),
                name: board.name,
            });
        }
        Ok(board)
    }

    /// The definition as TOML, as [`BoardDefinition::from_toml`] reads it back.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}
