//! A submitted config checked as a whole: bounded, decoded strictly and validated, with
//! every problem found turned into the wire's `ConfigurationProblem`, and the
//! INVALID_ARGUMENT status that carries them in its details.

use prost::Message as _;
use skerry_api::pb;
use skerry_config::{decode_with, validate, Config, DecodeError, Limits, ValidationProblem};
use tonic::{Code, Status};

/// The most problems put in one answer (validation finds at most a few per key).
pub const MAX_PROBLEMS: usize = 256;

/// What checking a config found.
#[derive(Debug)]
pub enum Verdict {
    /// It decodes and validates.
    Valid(Config),
    /// It does not; `config` is set when it decoded but did not validate.
    Invalid {
        /// The decoded config, when decoding succeeded.
        config: Option<Config>,
        /// Every problem found.
        problems: Vec<pb::ConfigurationProblem>,
    },
}

/// The submitted bytes as text, refused over [`Limits::max_bytes`] before anything
/// else is done with them, and when they are not UTF-8.
pub fn bounded_text<'a>(bytes: &'a [u8], limits: &Limits) -> Result<&'a str, Status> {
    if bytes.len() > limits.max_bytes {
        return Err(Status::invalid_argument(format!(
            "the configuration is {} bytes, more than the limit of {} bytes",
            bytes.len(),
            limits.max_bytes
        )));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        Status::invalid_argument(format!(
            "the configuration is not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// Decodes and validates `text`, collecting every problem.
pub fn check(text: &str, limits: &Limits) -> Verdict {
    let (config, sources) = match decode_with(text, limits) {
        Ok(decoded) => decoded,
        Err(e) => {
            return Verdict::Invalid {
                config: None,
                problems: vec![from_decode(&e)],
            }
        }
    };
    match validate(&config, Some(&sources)) {
        Ok(()) => Verdict::Valid(config),
        Err(errors) => Verdict::Invalid {
            config: Some(config),
            problems: errors
                .problems
                .iter()
                .take(MAX_PROBLEMS)
                .map(from_validation)
                .collect(),
        },
    }
}

/// The document a decoding error is about: its kind, or its place in the stream.
fn decode_document(error: &DecodeError) -> String {
    match error {
        DecodeError::ApiVersion { document, .. }
        | DecodeError::DuplicateDocument { document, .. }
        | DecodeError::Deprecated { document, .. }
        | DecodeError::Field { document, .. } => document.kind.clone(),
        DecodeError::NotAMapping { index, .. }
        | DecodeError::MissingHeader { index, .. }
        | DecodeError::UnknownKind { index, .. } => format!("document {index}"),
        DecodeError::Yaml(_) => String::new(),
    }
}

fn line(line: Option<usize>) -> u32 {
    line.and_then(|l| u32::try_from(l).ok()).unwrap_or(0)
}

/// A decoding error as a problem.
pub fn from_decode(error: &DecodeError) -> pb::ConfigurationProblem {
    let path = match error {
        DecodeError::Deprecated { path, .. } | DecodeError::Field { path, .. } => path.clone(),
        _ => String::new(),
    };
    pb::ConfigurationProblem {
        document: decode_document(error),
        path,
        line: line(error.line()),
        message: error.to_string(),
    }
}

/// A validation problem as a wire problem: the document is `Kind` or `Kind/name`.
pub fn from_validation(problem: &ValidationProblem) -> pb::ConfigurationProblem {
    let kind = problem.document.kind.as_str();
    let document = match &problem.document.name {
        Some(name) => format!("{kind}/{name}"),
        None => kind.to_owned(),
    };
    pb::ConfigurationProblem {
        document,
        path: problem.path.clone(),
        line: line(problem.at.map(|(_, line)| line)),
        message: problem.message.clone(),
    }
}

/// One line per problem: `NetworkConfig links[1].name (line 9): ...`.
pub fn describe(problems: &[pb::ConfigurationProblem]) -> String {
    let mut text = format!("the configuration has {} problem(s):", problems.len());
    for p in problems {
        text.push_str("\n  - ");
        if !p.document.is_empty() {
            text.push_str(&p.document);
        }
        if !p.path.is_empty() {
            text.push_str(&format!(" `{}`", p.path));
        }
        if p.line > 0 {
            text.push_str(&format!(" (line {})", p.line));
        }
        if !p.document.is_empty() || !p.path.is_empty() || p.line > 0 {
            text.push_str(": ");
        }
        text.push_str(&p.message);
    }
    text
}

/// INVALID_ARGUMENT listing `problems`, with an encoded `ConfigurationProblems` in its
/// details.
pub fn invalid(problems: Vec<pb::ConfigurationProblem>) -> Status {
    let message = describe(&problems);
    let details = pb::ConfigurationProblems { problems }.encode_to_vec();
    Status::with_details(Code::InvalidArgument, message, details.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_PROBLEMS: &str = "\
apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: -bad-
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: web
command: [/bin/web]
dependsOn: [ghost]
";

    #[test]
    fn every_validation_problem_is_listed_with_its_line() {
        let Verdict::Invalid { config, problems } = check(TWO_PROBLEMS, &Limits::DEFAULT) else {
            panic!("the config is invalid");
        };
        assert!(config.is_some());
        assert!(problems.len() >= 2, "{problems:?}");
        let machine = problems
            .iter()
            .find(|p| p.document == "MachineConfig")
            .unwrap();
        assert_eq!(machine.line, 3);
        let web = problems
            .iter()
            .find(|p| p.document == "ServiceConfig/web")
            .unwrap();
        assert!(web.line >= 6, "{web:?}");
    }

    #[test]
    fn a_decoding_error_names_document_key_and_line() {
        let text =
            "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\nhostnme: b\n";
        let Verdict::Invalid { problems, .. } = check(text, &Limits::DEFAULT) else {
            panic!("the config is invalid");
        };
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].document, "MachineConfig");
        assert_eq!(problems[0].path, "hostnme");
        assert_eq!(problems[0].line, 4);
    }

    #[test]
    fn oversized_and_binary_input_is_refused_before_decoding() {
        let limits = Limits {
            max_bytes: 8,
            ..Limits::DEFAULT
        };
        let status = bounded_text(b"0123456789", &limits).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("limit of 8"),
            "{}",
            status.message()
        );
        let status = bounded_text(&[0xff, 0xfe], &Limits::DEFAULT).unwrap_err();
        assert!(status.message().contains("UTF-8"));
    }

    #[test]
    fn the_status_details_decode_to_the_problems() {
        let Verdict::Invalid { problems, .. } = check(TWO_PROBLEMS, &Limits::DEFAULT) else {
            panic!("the config is invalid");
        };
        let status = invalid(problems.clone());
        assert_eq!(status.code(), Code::InvalidArgument);
        let decoded = pb::ConfigurationProblems::decode(status.details()).unwrap();
        assert_eq!(decoded.problems, problems);
        assert!(status.message().contains("ServiceConfig/web"));
    }
}
